"""Derived governance state, kept up to date inside the writer's transaction (docs/protocol.md §6.9–§6.11).

The rules are protocol's pure functions (adopted_amendments, terms_at, membership, review_state); this module
decides which stored records to hand them and writes the answers down:

    proposals            one row per proposal: closing time, whether it carries an amendment, its close
    ballots              each hub's newest ballot per proposal among those that can count
    amendments           the amendments in force (protocol.adopted_amendments), oldest first
    reviewed_guides      guide versions that are association-reviewed now

What changes them: a proposal or its close; an endorsement or a revocation (the electorate, classes and
reviewers); a review or its revocation. When the amendments in force change, everything that depends on the
terms follows at once: membership and classes, attestations' authorised flags, reviewed guides.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from typing import Any

import msgpack

from protocol import Amendment, CharterTerms, Record, review_state, terms_at
from protocol.amendments import decide_amendments

__all__ = [
    "APPLY",
    "after",
    "amendment_records",
    "amendments_in_force",
    "current_terms",
    "member_class",
    "refresh_amendments",
    "refresh_reviews",
]

#: The newest terms: every amendment in force is effective by then (closes are never more than the allowed
#: clock skew ahead, so in practice this is "now").
_NEWEST = 2**62


def _load(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...] = ()) -> list[Record]:
    from .derive import load_records  # hub.derive imports this module; import at call time

    return load_records(conn, sql, params)


def _charter(conn: sqlite3.Connection) -> Record | None:
    from .derive import load_charter

    return load_charter(conn)


# -- reading the stored answers ----------------------------------------------------------------------------


def amendments_in_force(conn: sqlite3.Connection) -> list[Amendment]:
    """The adopted amendments, as protocol.charter.terms_at takes them."""
    return [Amendment(effective, proposal, msgpack.unpackb(changes, raw=False))
            for proposal, effective, changes in
            conn.execute("SELECT proposal, effective_ms, changes FROM amendments ORDER BY effective_ms, proposal")]


def current_terms(conn: sqlite3.Connection, charter: Record | None = None,
                  at_ms: int = _NEWEST) -> CharterTerms | None:
    """The charter's terms in force at ``at_ms`` (default: the newest), or None before the charter."""
    charter = charter or _charter(conn)
    if charter is None:
        return None
    return terms_at(charter, amendments_in_force(conn), at_ms)


def _closed_related(conn: sqlite3.Connection, proposal_id: bytes) -> list[Record]:
    """A closed proposal's closes and the ballots they name: all its result depends on (§6.9)."""
    closes = _load(conn, "SELECT raw, id FROM records INDEXED BY records_ref WHERE ref = ? "
                         "AND kind = 'proposal-close'", (proposal_id,))
    named = sorted({b for c in closes for b in c.body["ballots"]})
    ballots: list[Record] = []
    for start in range(0, len(named), 500):
        chunk = named[start:start + 500]
        ballots += _load(conn, f"SELECT raw, id FROM records WHERE id IN ({','.join('?' * len(chunk))}) "
                               "AND kind = 'ballot'", tuple(chunk))
    return [*closes, *ballots]


def amendment_records(conn: sqlite3.Connection) -> list[Record]:
    """The records protocol.adopted_amendments needs beyond membership's: closed amendment proposals, their
    ballots and closes, and every delegation (for exports that recompute derived state from records)."""
    closed = _load(conn, "SELECT r.raw, r.id FROM proposals p JOIN records r ON r.id = p.id "
                         "WHERE p.amendment = 1 AND p.close_id IS NOT NULL")
    if not closed:
        return []
    related = [r for p in closed for r in _closed_related(conn, p.id)]
    return [*closed, *related, *_load(conn, "SELECT raw, id FROM records WHERE kind = 'delegation'")]


def member_class(conn: sqlite3.Connection, hub: bytes) -> tuple[str, int] | None:
    """(class, vote weight) of a current member under the newest terms, or None for a non-member."""
    from .queries import get_membership

    m = get_membership(conn)
    if m is None or not m.is_member(hub):
        return None
    return m.classes[hub], m.weights[hub]


# -- per kind ----------------------------------------------------------------------------------------------


def _proposal(conn: sqlite3.Connection, record: Record, rid: int) -> None:
    body = record.body
    conn.execute("INSERT OR IGNORE INTO proposals (id, author, created_ms, closes, amendment) "
                 "VALUES (?, ?, ?, ?, ?)",
                 (record.id, record.author, record.created_ms, body["closes"], int("amendment" in body)))


def _close(conn: sqlite3.Connection, record: Record, rid: int) -> None:
    row = conn.execute("SELECT author, closes, amendment FROM proposals WHERE id = ?",
                       (record.body["proposal"],)).fetchone()
    if row is None or row[0] != record.author or record.created_ms < row[1]:
        return  # a close by anyone but the proposer, or before the closing time, has no effect (§6.9)
    conn.execute("UPDATE proposals SET close_id = ?, close_created_ms = ? WHERE id = ? AND (close_id IS NULL "
                 "OR close_created_ms > ? OR (close_created_ms = ? AND close_id > ?))",
                 (record.id, record.created_ms, record.body["proposal"], record.created_ms, record.created_ms,
                  record.id))
    if row[2]:
        refresh_amendments(conn)


def _ballot(conn: sqlite3.Connection, record: Record, rid: int) -> None:
    from .derive import load_record

    proposal = load_record(conn, record.body["proposal"])
    if proposal is None or proposal.kind != "proposal":
        return  # ingest defers a ballot until its proposal is held, and refuses one naming another kind
    body = proposal.body
    if record.body["option"] not in body["options"] or not proposal.created_ms <= record.created_ms < body["closes"]:
        return  # it can never count (§6.9); stored, and ignored here as by protocol.proposal_result
    row = conn.execute("SELECT id, created_ms FROM ballots WHERE proposal = ? AND hub = ?",
                       (proposal.id, record.author)).fetchone()
    if row is None or (-record.created_ms, record.id) < (-row[1], row[0]):  # the replaceable rule, §6.2
        conn.execute("INSERT OR REPLACE INTO ballots VALUES (?, ?, ?, ?)",
                     (proposal.id, record.author, record.id, record.created_ms))


def _review(conn: sqlite3.Connection, record: Record, rid: int) -> None:
    refresh_reviews(conn, [record.body["guide"]])


def _nothing(conn: sqlite3.Connection, record: Record, rid: int) -> None:
    """Delegations are read when a result is asked for (hub.proposals); nothing to keep."""


#: kind -> derived update, merged into hub.derive's table.
APPLY = {"proposal": _proposal, "proposal-close": _close, "review": _review, "ballot": _ballot,
         "delegation": _nothing}


def after(conn: sqlite3.Connection, record: Record) -> None:
    """Follow-up for records of other kinds that bear on governance (called by hub.derive.apply, after
    hub.derive's own update, which already refreshed membership for an endorsement or its revocation)."""
    if record.kind == "endorsement":
        _electorate_changed(conn, record.created_ms)
    elif record.kind == "revocation":
        row = conn.execute("SELECT kind, ref FROM records WHERE id = ?", (record.body["target"],)).fetchone()
        if row is not None and row[0] == "endorsement":
            _electorate_changed(conn, record.created_ms)
        elif row is not None and row[0] == "review":
            refresh_reviews(conn, [row[1]])


def _electorate_changed(conn: sqlite3.Connection, created_ms: int) -> None:
    """An endorsement or its revocation created at ``created_ms`` changes the electorate of the proposals
    closing after it (§6.9): recompute the amendments only if a closed amendment proposal is among them — an
    endorsement made today does not reach back into a vote that closed last year."""
    if conn.execute("SELECT 1 FROM proposals WHERE amendment = 1 AND close_id IS NOT NULL AND closes > ? LIMIT 1",
                    (created_ms,)).fetchone() is not None:
        refresh_amendments(conn)


# -- recomputing -------------------------------------------------------------------------------------------


def refresh_amendments(conn: sqlite3.Connection) -> bool:
    """Recompute the amendments in force from the stored records; when they changed, refresh everything that
    depends on the terms. Returns whether they changed. Cheap when no amendment proposal is closed."""
    charter = _charter(conn)
    if charter is None:
        return False
    closed = _load(conn, "SELECT r.raw, r.id FROM proposals p JOIN records r ON r.id = p.id "
                         "WHERE p.amendment = 1 AND p.close_id IS NOT NULL")
    adopted: list[Amendment] = []
    if closed:
        by_proposal: dict[bytes, list[Record]] = defaultdict(list)
        for p in closed:
            by_proposal[p.id] = _closed_related(conn, p.id)
        delegations = _load(conn, "SELECT raw, id FROM records WHERE kind = 'delegation'")
        endorsements = _load(conn, "SELECT raw, id FROM records WHERE kind = 'endorsement'")
        revocations = _load(conn, "SELECT raw, id FROM records WHERE kind = 'revocation' AND ref IN "
                                  "(SELECT id FROM records WHERE kind IN ('endorsement', 'delegation'))")
        adopted = decide_amendments(charter, closed, by_proposal, delegations, endorsements, revocations)
    before = amendments_in_force(conn)
    if [(a.effective_ms, a.record_id) for a in adopted] == [(a.effective_ms, a.record_id) for a in before]:
        return False
    conn.execute("DELETE FROM amendments")
    conn.executemany("INSERT INTO amendments VALUES (?, ?, ?)",
                     [(a.record_id, a.effective_ms, msgpack.packb(dict(a.changes), use_bin_type=True))
                      for a in adopted])
    from .derive import refresh_membership

    _refresh_marks(conn, charter, adopted)
    refresh_membership(conn, charter)
    refresh_reviews(conn)  # reviews_needed may have changed
    _refresh_credit(conn, before, adopted)
    return True


def _refresh_credit(conn: sqlite3.Connection, before: list[Amendment], after: list[Amendment]) -> None:
    """Replay the time-credit ledger from the earliest closing time at which the credit limit changed
    (hub.derive.refresh_credit: bookings before it keep their status)."""
    from .derive import refresh_credit

    old = {(a.effective_ms, a.record_id): a for a in before}
    new = {(a.effective_ms, a.record_id): a for a in after}
    changed = [key for key in old.keys() ^ new.keys()
               if "credit_limit_minutes" in (old.get(key) or new[key]).changes]
    if changed:
        refresh_credit(conn, (min(changed)[0], b""))


def _refresh_marks(conn: sqlite3.Connection, charter: Record, amendments: list[Amendment]) -> None:
    """Each attestation is authorised under the terms in force at its creation (protocol.marks)."""
    rows = conn.execute("SELECT id, author, scheme, created_ms, authorised FROM attestations").fetchall()
    changes = []
    for attestation_id, author, scheme, created_ms, authorised in rows:
        now = int(author in terms_at(charter, amendments, created_ms).assessors(scheme))
        if now != authorised:
            changes.append((now, attestation_id))
    conn.executemany("UPDATE attestations SET authorised = ? WHERE id = ?", changes)


def refresh_reviews(conn: sqlite3.Connection, guides: list[bytes] | None = None) -> None:
    """Recompute which of ``guides`` (default: every reviewed guide) are association-reviewed now."""
    if guides is None:
        guides = [g for (g,) in conn.execute("SELECT DISTINCT ref FROM records WHERE kind = 'review'")]
    charter = _charter(conn) if guides else None
    if charter is None:
        return
    terms = current_terms(conn, charter)
    assert terms is not None
    members = frozenset(hub for (hub,) in conn.execute("SELECT hub FROM members"))
    for guide_id in guides:
        guide = _load(conn, "SELECT raw, id FROM records WHERE id = ? AND kind = 'guide'", (guide_id,))
        if not guide:
            continue
        reviews = _load(conn, "SELECT raw, id FROM records INDEXED BY records_ref WHERE ref = ? "
                              "AND kind = 'review'", (guide_id,))
        revocations = _load(conn, "SELECT raw, id FROM records WHERE kind = 'revocation' AND ref IN "
                                  "(SELECT id FROM records INDEXED BY records_ref WHERE ref = ? "
                                  "AND kind = 'review')", (guide_id,))
        state = review_state(guide[0], reviews, revocations, members, terms.reviews_needed)
        if state.reviewed:
            conn.execute("INSERT OR REPLACE INTO reviewed_guides VALUES (?, ?)", (guide_id, len(state.approvals)))
        else:
            conn.execute("DELETE FROM reviewed_guides WHERE guide = ?", (guide_id,))
