"""The storage rule (docs/protocol.md §2.3): which records a hub stores, as pure functions.

Whether a record is stored depends only on the record and on records every hub will hold, never on arrival
order, so every hub converges on the same set (PRODUCT.md §3.2):

    eligible_authors  the monotone set of authors whose records are stored: the charter's founders and
                      assessors, closed under "the subject of an endorsement by an eligible author is eligible"
                      (revocations ignored: withdrawing an endorsement changes membership, not storage)
    REFERENCES        per kind, the body fields that name other records and the kinds those must be
    classify          the verdict for one verified record, given what is held: store, defer (and what it waits
                      for), quarantine, or refuse (objective faults only)
    stored_set        the stored set of a collection of records: the least fixed point of classify, which an
                      incremental store must reach whatever the order and batching of its input

Derived state (docs/protocol.md §6) then ignores what has no effect: a revocation of another author's record,
a close by someone other than the offer's author, a close's pledges of another offer, a supersede across
authors. Those are *stored* here; only a reference to a record of the wrong *kind* is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from .kinds import AID_REFERENCES, REVOCABLE_KINDS
from .limits import DEFAULT_LIMITS, Limits
from .records import Record

__all__ = ["ACTIONS", "REFERENCES", "Reference", "Verdict", "amendment_assessors", "classify", "eligible_authors",
           "references", "stored_set"]

#: What a hub does with a verified record.
ACTIONS = ("store", "defer", "quarantine", "refuse")


@dataclass(frozen=True, slots=True)
class Reference:
    """A body field naming another record (or a list of them) and the kinds the named records may have."""

    field: str
    kinds: frozenset[str]
    many: bool = False


#: kind -> the references its body makes. Endorsement and attestation subjects, and a credit payment's payee,
#: are hub ids, not records. The mutual-aid kinds name one record each (protocol.kinds.AID_REFERENCES).
REFERENCES: Mapping[str, tuple[Reference, ...]] = {
    "pledge": (Reference("offer", frozenset({"offer"})),),
    "offer-close": (Reference("offer", frozenset({"offer"})), Reference("pledges", frozenset({"pledge"}), True)),
    "guide": (Reference("supersedes", frozenset({"guide"})),),
    "revocation": (Reference("target", REVOCABLE_KINDS),),
    **{kind: (Reference(name, frozenset({want})),) for kind, (name, want) in AID_REFERENCES.items()},
    # Governance (docs/protocol.md §6.9–§6.11): who may vote, proxy, close or review is derived state's
    # business; a close naming another proposal's ballots, or a ballot of a non-member, is stored and ignored.
    "ballot": (Reference("proposal", frozenset({"proposal"})),),
    "delegation": (Reference("proposal", frozenset({"proposal"})),),
    "proposal-close": (Reference("proposal", frozenset({"proposal"})),
                       Reference("ballots", frozenset({"ballot"}), True),
                       Reference("delegations", frozenset({"delegation"}), True)),
    "review": (Reference("guide", frozenset({"guide"})),),
}


def references(record: Record) -> list[tuple[str, bytes, frozenset[str]]]:
    """(field path, record id, allowed kinds) for every record ``record`` names, in body order."""
    out: list[tuple[str, bytes, frozenset[str]]] = []
    for ref in REFERENCES.get(record.kind, ()):
        value = record.body.get(ref.field)
        if value is None:
            continue
        ids = value if ref.many else [value]
        out += [(f"body.{ref.field}", rid, ref.kinds) for rid in ids]
    return out


def amendment_assessors(proposal: Record) -> list[bytes]:
    """The assessor hubs a proposal's charter amendment names (none for a proposal without one)."""
    schemes = proposal.body.get("amendment", {}).get("schemes", []) if proposal.kind == "proposal" else []
    return [hub for scheme in schemes for hub in scheme["assessors"]]


def eligible_authors(charter: Record, endorsements: Iterable[Record]) -> frozenset[bytes]:
    """The least set holding the charter's founders and every assessor it names, closed under "the subject of
    an endorsement whose author is in the set is in the set" and "an assessor named by the charter amendment of
    a proposal whose author is in the set is in the set" (docs/protocol.md §6.10: whether or not it passed).
    Revocations are not consulted, so the set only grows as records arrive (monotone), and storing never
    depends on arrival order. ``endorsements`` may hold proposals too; other kinds are ignored.
    """
    eligible = set(charter.body["founders"])
    for scheme in charter.body["schemes"]:
        eligible.update(scheme["assessors"])
    by_author: dict[bytes, set[bytes]] = {}
    for e in endorsements:
        if e.kind == "endorsement" and e.association == charter.id:
            by_author.setdefault(e.author, set()).add(e.body["subject"])
        elif e.kind == "proposal" and e.association == charter.id:
            by_author.setdefault(e.author, set()).update(amendment_assessors(e))
    frontier = [a for a in eligible if a in by_author]
    while frontier:
        author = frontier.pop()
        for subject in by_author.pop(author, ()):
            if subject not in eligible:
                eligible.add(subject)
                frontier.append(subject)
    return frozenset(eligible)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do with one record. ``reason`` is from protocol.REASONS (None when stored). A deferred record
    waits for exactly one thing: a record id (``wait_id``), an author becoming eligible (``wait_author``), or a
    time (``wait_ms``: retry once ``now_ms`` >= it)."""

    action: str
    reason: str | None = None
    detail: str = ""
    wait_id: bytes | None = None
    wait_author: bytes | None = None
    wait_ms: int | None = None


STORE = Verdict("store")


def _foreign(detail: str) -> Verdict:
    """A record of another association: the record alone shows it, so it is an objective fault (PRODUCT.md
    §3.2) that costs the sending peer score, unlike ``blocked``."""
    return Verdict("refuse", "wrong-association", f"another association: {detail}")


def classify(record: Record, *, now_ms: int, charter: Record | None, eligible: Callable[[bytes], bool],
             kind_of: Callable[[bytes], str | None], origin: bytes | None = None,
             expected: bytes | None = None, limits: Limits = DEFAULT_LIMITS) -> Verdict:
    """The storage rule for one record that passed ``decode_record`` (or raised FutureError with it).

    ``charter``: the stored charter, if any; ``eligible(hub)``: whether a hub is in :func:`eligible_authors` of
    what is stored; ``kind_of(id)``: the kind of a stored record, None if not stored; ``origin``: the
    authenticated hub the bytes came from (None when unknown); ``expected``: the association this hub joined.
    Checks, in order: time, association, eligibility, references (docs/protocol.md §2.3). A record of
    another association is refused ``wrong-association``: the record alone shows it, so it is an objective
    fault a peer is scored for (PRODUCT.md §3.2), unlike ``blocked`` (an applicant's session).
    """
    skew = limits.max_future_skew_ms
    if record.created_ms > now_ms + skew:
        return Verdict("defer", "future", f"created {record.created_ms - now_ms} ms ahead of this hub's clock; "
                       f"held until then less {skew} ms", wait_ms=record.created_ms - skew)
    if record.kind == "charter":
        if charter is not None and charter.id != record.id:
            return _foreign(f"this hub holds charter {charter.id.hex()}")
        if expected is not None and record.id != expected:
            return _foreign(f"this hub joined {expected.hex()}")
        return STORE
    if expected is not None and record.association != expected:
        return _foreign(f"the record names {record.association.hex()}")
    if charter is None:
        return Verdict("defer", "missing-reference", f"the charter {record.association.hex()} is not held yet",
                       wait_id=record.association)
    if record.association != charter.id:
        return _foreign(f"the record names {record.association.hex()}")
    if record.kind == "credit-payment" and record.body["payee"] == record.author:
        return Verdict("refuse", "invalid", "body.payee: a co-op cannot pay itself")  # the record alone says so
    if not eligible(record.author):
        if record.kind == "profile" and origin == record.author:
            return Verdict("quarantine", "not-a-member", f"an applicant's profile: held on this hub and shown to "
                           f"its members until a member endorses {record.author_id}")
        return Verdict("defer", "not-a-member", f"{record.author_id} is not a member yet: held until a member "
                       "endorses it", wait_author=record.author)
    for path, rid, kinds in references(record):
        kind = kind_of(rid)
        if kind is None:
            return Verdict("defer", "missing-reference", f"{path}: record {rid.hex()} is not held yet", wait_id=rid)
        if kind not in kinds:
            return Verdict("refuse", "invalid", f"{path}: names a {kind} record, not a {' or '.join(sorted(kinds))}")
    return STORE


def stored_set(records: Iterable[Record], association: bytes, *, now_ms: int,
               limits: Limits = DEFAULT_LIMITS) -> dict[bytes, Record]:
    """The records a hub offered ``records`` stores, by id: the least fixed point of :func:`classify`, with
    quarantine counted as stored once the applicant is eligible. The reference an incremental store is tested
    against; quadratic, for tests and checks, not for a hub's hot path.
    """
    pool = sorted({r.id: r for r in records}.values(), key=lambda r: (r.created_ms, r.id))
    charter = next((r for r in pool if r.kind == "charter" and r.id == association), None)
    if charter is None:
        return {}
    stored: dict[bytes, Record] = {charter.id: charter}
    changed = True
    while changed:
        changed = False
        eligible = eligible_authors(charter, (r for r in stored.values() if r.kind in ("endorsement", "proposal")))
        for r in pool:
            if r.id in stored:
                continue
            verdict = classify(r, now_ms=now_ms, charter=charter, eligible=eligible.__contains__,
                               kind_of=lambda i: stored[i].kind if i in stored else None,
                               expected=association, limits=limits)
            if verdict.action == "store":
                stored[r.id] = r
                changed = True
                if r.kind == "endorsement":
                    eligible = eligible | {r.body["subject"]}
                elif r.kind == "proposal":
                    eligible = eligible | set(amendment_assessors(r))
    return stored
