"""The charter's terms, and the terms in force at a time once members amend them (PRODUCT.md §2.1).

A charter record fixes the association's first terms; a proposal that carries a charter amendment and passes
changes them from the moment it closes. Everything that depends on the charter — membership, classes and vote
weights, which assessors may attest which scheme, how many reviews make a guide "association-reviewed", the
time-credit limit — asks :func:`terms_at` for the terms in force at the relevant time, never the charter body
directly, so an amendment takes effect everywhere at once and identically on every hub.

Which amendments exist (proposals that passed, and when they closed) is decided by the governance rules
(``protocol.governance``); this module only applies a list of them, in order, as a pure function.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .records import Record

__all__ = [
    "DEFAULT_AMENDMENT_QUORUM",
    "DEFAULT_AMENDMENT_QUORUM_OF",
    "DEFAULT_AMENDMENT_RULE",
    "DEFAULT_CLASS",
    "DEFAULT_CREDIT_LIMIT_MINUTES",
    "DEFAULT_REVIEWS_NEEDED",
    "Amendment",
    "CharterTerms",
    "base_terms",
    "terms_at",
    "terms_before",
]

#: The class of a member when the charter names none (a charter of round 1 has no classes): one vote each.
DEFAULT_CLASS = "member"
#: How many distinct members must approve one guide version before it is "association-reviewed".
DEFAULT_REVIEWS_NEEDED = 2
#: How far below zero a co-op's time-credit balance may go: 40 hours, about one worker-week of cover.
DEFAULT_CREDIT_LIMIT_MINUTES = 40 * 60
#: How an amendment of the charter is decided unless the charter says otherwise: two thirds of the decisive
#: vote weight with half the voting members taking part — the special resolution of most co-operative rules
#: (Co-operatives UK model rules ask for two thirds of the votes cast at a quorate meeting).
DEFAULT_AMENDMENT_RULE = "two-thirds"
DEFAULT_AMENDMENT_QUORUM = 50
DEFAULT_AMENDMENT_QUORUM_OF = "members"


@dataclass(frozen=True, slots=True)
class CharterTerms:
    """The association's terms at one moment. ``since_ms`` is when they took effect (the charter's creation
    time, or the close of the amendment that set them); ``amended_by`` the record ids of the amendments applied,
    oldest first."""

    name: str
    founders: frozenset[bytes]
    endorsements_needed: int
    #: scheme id -> authorised assessor hubs
    schemes: Mapping[str, frozenset[bytes]]
    #: scheme id -> human name
    scheme_names: Mapping[str, str]
    #: class name -> vote weight (0: a non-voting associate)
    classes: Mapping[str, int]
    #: founder hub -> its class
    founder_classes: Mapping[bytes, str]
    reviews_needed: int
    credit_limit_minutes: int
    since_ms: int
    amended_by: tuple[bytes, ...] = ()
    #: fields of a later protocol revision this version does not interpret, kept so nothing is lost
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: the rule and quorum (percent, of "members" or "weight") an amendment must also meet
    amendment_rule: str = DEFAULT_AMENDMENT_RULE
    amendment_quorum: int = DEFAULT_AMENDMENT_QUORUM
    amendment_quorum_of: str = DEFAULT_AMENDMENT_QUORUM_OF
    #: the class of a founder the charter names no class for, and of a hub whose endorsers name none
    default_class: str = DEFAULT_CLASS

    def assessors(self, scheme: str) -> frozenset[bytes]:
        """The hubs authorised to attest ``scheme`` under these terms (empty for an unknown scheme)."""
        return self.schemes.get(scheme, frozenset())

    def weight(self, cls: str) -> int:
        """The vote weight of class ``cls`` (0 for a class these terms do not name)."""
        return self.classes.get(cls, 0)


@dataclass(frozen=True, slots=True)
class Amendment:
    """New charter terms that take effect at ``effective_ms`` (the close of the proposal that adopted them).

    ``changes`` holds charter body fields with their new values, in the charter's own schema (e.g.
    ``{"endorsements_needed": 3}`` or a whole new ``schemes`` list); fields not named keep their value.
    """

    effective_ms: int
    record_id: bytes
    changes: Mapping[str, Any]


def _terms_from_body(body: Mapping[str, Any], since_ms: int, amended_by: tuple[bytes, ...]) -> CharterTerms:
    schemes = {s["id"]: frozenset(s["assessors"]) for s in body.get("schemes", [])}
    names = {s["id"]: s.get("name") or s["id"] for s in body.get("schemes", [])}
    listed = [c["name"] for c in body.get("classes", [])]
    classes = {c["name"]: int(c["weight"]) for c in body.get("classes", [])} or {DEFAULT_CLASS: 1}
    # The default class is "member" if the charter has one, else the first class it lists: the order of a
    # list is part of the signed record, so every hub picks the same one.
    default = DEFAULT_CLASS if DEFAULT_CLASS in classes or not listed else listed[0]
    named = {fc["hub"]: fc["class"] for fc in body.get("founder_classes", [])}
    founders = frozenset(body["founders"])
    known = {"name", "description", "founders", "endorsements_needed", "schemes", "classes", "founder_classes",
             "reviews_needed", "credit_limit_minutes", "amendment_rule", "amendment_quorum",
             "amendment_quorum_of"}
    return CharterTerms(
        name=body["name"],
        founders=founders,
        endorsements_needed=int(body["endorsements_needed"]),
        schemes=schemes,
        scheme_names=names,
        classes=classes,
        founder_classes={hub: named.get(hub, default) for hub in sorted(founders)},
        reviews_needed=int(body.get("reviews_needed", DEFAULT_REVIEWS_NEEDED)),
        credit_limit_minutes=int(body.get("credit_limit_minutes", DEFAULT_CREDIT_LIMIT_MINUTES)),
        since_ms=since_ms,
        amended_by=amended_by,
        extra={k: v for k, v in body.items() if k not in known},
        amendment_rule=str(body.get("amendment_rule", DEFAULT_AMENDMENT_RULE)),
        amendment_quorum=int(body.get("amendment_quorum", DEFAULT_AMENDMENT_QUORUM)),
        amendment_quorum_of=str(body.get("amendment_quorum_of", DEFAULT_AMENDMENT_QUORUM_OF)),
        default_class=default,
    )


def base_terms(charter: Record) -> CharterTerms:
    """The terms the charter record itself sets, in force from its creation time."""
    return _terms_from_body(charter.body, charter.created_ms, ())


def terms_at(charter: Record, amendments: Iterable[Amendment], at_ms: int) -> CharterTerms:
    """The terms in force at ``at_ms``: the charter's, then every amendment with ``effective_ms <= at_ms``
    applied in (effective_ms, record id) order. Order-independent in its input, like every derived rule."""
    since, applied = charter.created_ms, []
    for amendment in sorted(amendments, key=lambda a: (a.effective_ms, a.record_id)):
        if amendment.effective_ms > at_ms:
            break
        since = amendment.effective_ms
        applied.append(amendment)
    # The same terms are asked for again and again (each mark on a directory page asks for the terms at its
    # creation: ~60 times a page, 3 ms of a 4 ms page at 100k records): keyed by the charter's id (its bytes'
    # hash) and each applied amendment's id and canonical changes, a hit is the same computation's answer.
    key = (charter.id, since, tuple((a.record_id, _packed(a.changes)) for a in applied))
    terms = _TERMS.get(key)
    if terms is None:
        body: dict[str, Any] = dict(charter.body)
        for amendment in applied:
            body.update(amendment.changes)
        terms = _terms_from_body(body, since, tuple(a.record_id for a in applied))
        if len(_TERMS) >= 256:
            _TERMS.clear()
        _TERMS[key] = terms
    return terms


_TERMS: dict[tuple[Any, ...], CharterTerms] = {}


def _packed(changes: Mapping[str, Any]) -> bytes:
    import msgpack

    return msgpack.packb(changes, use_bin_type=True)  # type: ignore[no-any-return]


def terms_before(charter: Record, amendments: Iterable[Amendment], at_ms: int) -> CharterTerms:
    """The terms in force just before ``at_ms``: amendments that take effect at ``at_ms`` itself are not yet
    applied. A proposal closing at ``c`` is decided under ``terms_before(c)`` — never under terms it or a
    proposal closing at the same moment sets — so deciding proposals in closing order is well-founded."""
    return terms_at(charter, amendments, at_ms - 1)

