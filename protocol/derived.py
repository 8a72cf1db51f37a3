"""Derived state as pure functions of a set of records (docs/protocol.md §6).

Every hub computes the same answers from the same records, whatever order they arrived in. Inputs are records
that already passed :func:`protocol.records.decode_record`; functions ignore records that do not bear on the
question (another kind, another association) rather than raising.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .charter import CharterTerms, base_terms
from .records import Record

__all__ = [
    "Membership",
    "current_guides",
    "current_profiles",
    "guide_chain",
    "membership",
    "newest",
    "replaceable_key",
    "revoked_ids",
]


def replaceable_key(record: Record) -> tuple[int, bytes]:
    """Sort key under which the *smallest* record is the current one: newest creation time, then lower id.

    Inverting the time keeps the tie-break a plain byte comparison on the id (PRODUCT.md §2).
    """
    return (-record.created_ms, record.id)


def newest(records: Iterable[Record]) -> Record | None:
    """The current record among versions of one replaceable thing, or None if there are none."""
    return min(records, key=replaceable_key, default=None)


def revoked_ids(revocations: Iterable[Record], targets: dict[bytes, Record]) -> dict[bytes, Record]:
    """Map each revoked record id to the revocation that revoked it.

    A revocation counts only against a record of its own author (PRODUCT.md §2: a hub revokes what it
    published); the earliest revocation of a target is the one reported.
    """
    out: dict[bytes, Record] = {}
    for rev in sorted((r for r in revocations if r.kind == "revocation"), key=lambda r: (r.created_ms, r.id)):
        target = targets.get(rev.body["target"])
        if target is not None and target.author == rev.author and target.id not in out:
            out[target.id] = rev
    return out


@dataclass(frozen=True, slots=True)
class Membership:
    """Who is a member, which members endorse each non-founder member or applicant, and each member's class
    and vote weight under the terms it was computed with."""

    founders: frozenset[bytes]
    members: frozenset[bytes]
    endorsers: dict[bytes, frozenset[bytes]]
    needed: int
    #: member -> its class (docs/protocol.md §6.1: a founder's from the charter, else its endorsers' choice)
    classes: Mapping[bytes, str] = field(default_factory=dict)
    #: member -> its vote weight (the weight of its class; 0 for a non-voting associate)
    weights: Mapping[bytes, int] = field(default_factory=dict)

    def is_member(self, hub: bytes) -> bool:
        return hub in self.members

    def class_of(self, hub: bytes) -> str | None:
        """The member's class, or None for a hub that is not a member."""
        return self.classes.get(hub)

    def weight(self, hub: bytes) -> int:
        """The member's vote weight; 0 for a non-member or a non-voting associate."""
        return self.weights.get(hub, 0)

    @property
    def voters(self) -> frozenset[bytes]:
        """Members whose vote weight is above 0: the electorate of a proposal."""
        return frozenset(h for h, w in self.weights.items() if w > 0)


def membership(charter: Record, endorsements: Iterable[Record], revocations: Iterable[Record], *,
               terms: CharterTerms | None = None, before_ms: int | None = None) -> Membership:
    """Members: the charter's founders, then every hub that distinct members' live endorsements admit; and
    each member's class.

    This is the least fixed point of "a hub is a member if it is a founder or at least ``endorsements_needed``
    distinct members endorse it", computed by iterating from the founders, so an endorsement only counts while
    its author is itself a member, and a withdrawn endorsement (a revocation by its author) never counts.

    ``terms`` are the charter terms to apply (default: the charter's own, :func:`protocol.charter.base_terms`);
    an amended admission rule or amended classes come in this way. With ``before_ms``, only endorsements and
    revocations created before that moment count: membership as it stood then (a proposal's electorate).
    """
    terms = base_terms(charter) if terms is None else terms

    def in_time(r: Record) -> bool:
        return before_ms is None or r.created_ms < before_ms

    # Records of another association do not bear on this one (module docstring).
    endorsement_list = [e for e in endorsements if e.kind == "endorsement" and e.association == charter.id
                        and in_time(e)]
    revoked = revoked_ids((r for r in revocations if r.association == charter.id and in_time(r)),
                          {e.id: e for e in endorsement_list})
    vouches: dict[bytes, set[bytes]] = defaultdict(set)  # subject -> endorsers (any hub, for now)
    live: list[Record] = []
    for e in endorsement_list:
        if e.id not in revoked and e.body["subject"] != e.author:
            vouches[e.body["subject"]].add(e.author)
            live.append(e)
    founders = terms.founders
    needed = terms.endorsements_needed
    members = set(founders)
    changed = True
    while changed:
        changed = False
        for subject, by in vouches.items():
            if subject not in members and len(by & members) >= needed:
                members.add(subject)
                changed = True
    endorsers = {subject: frozenset(by & members) for subject, by in vouches.items()}
    classes = _classes(terms, frozenset(members), endorsers, live)
    weights = {hub: terms.weight(cls) for hub, cls in classes.items()}
    return Membership(founders, frozenset(members), endorsers, needed, classes, weights)


def _classes(terms: CharterTerms, members: frozenset[bytes], endorsers: dict[bytes, frozenset[bytes]],
             live: list[Record]) -> dict[bytes, str]:
    """Each member's class: a founder's from the terms; an admitted hub's is the class most of its member
    endorsers named in their newest live endorsement of it (ties: the lowest class name); classes the terms do
    not define are not counted; the default class when none is named (PRODUCT.md §2.1)."""
    newest_by: dict[tuple[bytes, bytes], Record] = {}
    for e in live:
        key = (e.body["subject"], e.author)
        if key not in newest_by or replaceable_key(e) < replaceable_key(newest_by[key]):
            newest_by[key] = e
    named: dict[bytes, Counter[str]] = {}
    for (subject, author), e in newest_by.items():
        cls = e.body.get("class")
        if cls is not None and cls in terms.classes and author in endorsers.get(subject, ()):
            named.setdefault(subject, Counter())[cls] += 1
    out: dict[bytes, str] = {}
    for hub in members:
        if hub in terms.founders:
            out[hub] = terms.founder_classes.get(hub, terms.default_class)
        elif (names := named.get(hub)) is not None:
            out[hub] = min(names, key=lambda c: (-names[c], c))
        else:
            out[hub] = terms.default_class
    return out


def current_profiles(profiles: Iterable[Record]) -> dict[bytes, Record]:
    """Each author's current profile under the replaceable rule."""
    by_author: dict[bytes, list[Record]] = defaultdict(list)
    for p in profiles:
        if p.kind == "profile":
            by_author[p.author].append(p)
    return {author: newest(versions) for author, versions in by_author.items()}  # type: ignore[misc]


def current_guides(guides: Iterable[Record], revocations: Iterable[Record]) -> list[Record]:
    """Guides that are the current version: not superseded by a guide of the same author, not revoked.

    Revoking any version withdraws that version only; versions it superseded stay superseded, so revoking the
    newest version withdraws the guide. Two guides superseding one earlier guide are both current (a fork).
    Sorted newest first.
    """
    guide_list = [g for g in guides if g.kind == "guide"]
    by_id = {g.id: g for g in guide_list}
    superseded = set()
    for g in guide_list:
        earlier = by_id.get(g.body.get("supersedes", b""))
        if earlier is not None and earlier.author == g.author:
            superseded.add(earlier.id)
    revoked = revoked_ids(revocations, by_id)
    live = [g for g in guide_list if g.id not in superseded and g.id not in revoked]
    return sorted(live, key=replaceable_key)


def guide_chain(guide: Record, guides: Iterable[Record]) -> list[Record]:
    """The version history of ``guide``: itself, then what it supersedes, back to the first version.

    Only same-author links are followed, and a cycle (impossible with hash ids, but cheap to guard) stops it.
    """
    by_id = {g.id: g for g in guides if g.kind == "guide"}
    chain = [guide]
    seen = {guide.id}
    current = guide
    while (earlier := by_id.get(current.body.get("supersedes", b""))) is not None:
        if earlier.id in seen or earlier.author != guide.author:
            break
        chain.append(earlier)
        seen.add(earlier.id)
        current = earlier
    return chain
