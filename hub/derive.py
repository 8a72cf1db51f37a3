"""Derived tables, kept up to date one accepted record at a time (docs/protocol.md §6).

Every function here runs inside the writer's transaction, right after the record's row is inserted, and reads
only the database (never a cache), so two processes writing one file stay consistent. The rules themselves are
protocol's pure functions (membership, newest, authorised_assessors); this module only decides *which* stored
records to hand them and writes down the answer:

    members          protocol.membership over the charter, endorsements and their revocations
    profiles         each hub's current profile (protocol.newest)
    guides           superseded (by a guide of the same author) / revoked flags; only current guides are listed
    offers           revoked flag and the earliest close by the offer's author (closes by others are ignored)
    pledges          the newest pledge per (offer, hub) created by the deadline
    attestations     authorised flag (from the charter) and the earliest revocation time
    directory        one searchable row per hub profile, current guide and non-revoked offer; each listing and
                     unlisting is queued in fts_queue for the full-text index (hub/search_index.py), which is
                     filled after the acknowledging COMMIT, in its own file and transactions
    credit_payments  each time-credit payment, its booking and its status in protocol.credit's ledger
    credit_accounts  each hub's position after the whole ledger (balance, unstood payments to it, flags)

What depends on the clock (an offer being open, a mark being valid) is not stored: queries filter with now_ms.

Ingest stores every record of an eligible author whose references are held and of the right kind
(docs/protocol.md §2.3), so records that have no effect arrive here too and are ignored exactly as §6 says: a
revocation of another author's record, a close by someone other than the offer's author, a supersede of another
author's guide. Records of eligible non-members (a sponsored applicant, an ex-member) are listed with
``member = 0``; their pledges and endorsements do not count (protocol.offer_tally, protocol.membership).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import msgpack

from protocol import Record, authorised_assessors, membership, newest
from protocol.credit import Booking, LimitAt, Position, limit_from_charter, replay

from . import governance

__all__ = [
    "apply", "credit_limits", "fts_fields", "load_charter", "load_record", "load_records", "membership_deferred",
    "record_from_raw", "refresh_credit",
    "refresh_membership",
]


def record_from_raw(raw: bytes, record_id: bytes) -> Record:
    """A Record from stored canonical bytes, without re-verifying: they were verified before being stored."""
    value = msgpack.unpackb(raw, raw=False, use_list=True, strict_map_key=True)
    assert isinstance(value, list) and len(value) == 7  # the envelope of protocol/records.py
    version, association, author, created_ms, kind, body, signature = value
    return Record(version, association, author, created_ms, kind, body, signature, bytes(raw), record_id)


def load_record(conn: sqlite3.Connection, record_id: bytes) -> Record | None:
    row = conn.execute("SELECT raw FROM records WHERE id = ?", (record_id,)).fetchone()
    return None if row is None else record_from_raw(row[0], record_id)


def load_records(conn: sqlite3.Connection, sql: str, params: Iterable[Any] = ()) -> list[Record]:
    """Records from a query selecting ``raw, id``."""
    return [record_from_raw(raw, rid) for raw, rid in conn.execute(sql, tuple(params))]


def load_charter(conn: sqlite3.Connection) -> Record | None:
    rows = load_records(conn, "SELECT raw, id FROM records WHERE kind = 'charter' LIMIT 1")
    return rows[0] if rows else None


# -- the directory -----------------------------------------------------------------------------------------


def _list(conn: sqlite3.Connection, rid: int, record: Record, key: bytes, *, title: str, summary: str,
          regions: list[str], services: list[str], match: Iterable[str]) -> None:
    """Add one entry to the directory and its regions index, and queue its full-text row (fts_fields)."""
    member = conn.execute("SELECT 1 FROM members WHERE hub = ?", (record.author,)).fetchone() is not None
    conn.execute("INSERT INTO directory VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                 (rid, _entry_kind(record), key, record.author, title, summary[:300], json.dumps(regions),
                  json.dumps(services), "\n".join(m.lower() for m in match), record.created_ms, int(member)))
    conn.executemany("INSERT OR IGNORE INTO directory_region VALUES (?, ?)",
                     [(r.lower(), rid) for r in regions])
    conn.execute("INSERT INTO directory_counts VALUES (?, 1) ON CONFLICT (kind) DO UPDATE SET n = n + 1",
                 (_entry_kind(record),))
    conn.execute("INSERT INTO fts_queue (rid, op) VALUES (?, 1)", (rid,))


def fts_fields(record: Record) -> tuple[str, str, str, str, str]:
    """The full-text row of a listed record: (title, summary, body, extra, regions), the columns of
    directory_fts. A pure function of the record, so the index can be rebuilt from the records alone."""
    body = record.body
    if record.kind == "profile":
        services = body["services"]
        extra = [body.get("legal_form", "")] + [f"{s['name']} ({s['category']}) {s.get('description', '')}"
                                               for s in services]
        return (body["name"], body.get("description", ""), "", "; ".join(e for e in extra if e),
                " ".join(body["regions"]))
    if record.kind == "guide":
        return body["title"], body["summary"], body["body"], " ".join(body["tags"]), ""
    if record.kind == "offer":
        return (body["title"], body["description"], "", f"{body['category']} {body['unit']}",
                " ".join(body["regions"]))
    raise ValueError(f"a {record.kind} is not listed in the directory")


def _entry_kind(record: Record) -> str:
    return "hub" if record.kind == "profile" else record.kind


def _unlist(conn: sqlite3.Connection, record_id: bytes) -> None:
    row = conn.execute("SELECT rowid FROM records WHERE id = ?", (record_id,)).fetchone()
    if row is None:
        return
    rid = row[0]
    conn.execute("UPDATE directory_counts SET n = n - 1 "
                 "WHERE kind = (SELECT kind FROM directory WHERE rid = ?)", (rid,))
    conn.execute("DELETE FROM directory WHERE rid = ?", (rid,))
    conn.execute("DELETE FROM directory_region WHERE rid = ?", (rid,))
    conn.execute("INSERT INTO fts_queue (rid, op) VALUES (?, 0)", (rid,))


# -- per kind ----------------------------------------------------------------------------------------------


def _charter(conn: sqlite3.Connection, record: Record, rid: int) -> None:
    conn.execute("INSERT OR REPLACE INTO meta VALUES ('association_id', ?)", (record.id.hex(),))
    refresh_membership(conn, record)


def _profile(conn: sqlite3.Connection, record: Record, rid: int) -> None:
    row = conn.execute("SELECT id FROM profiles WHERE hub = ?", (record.author,)).fetchone()
    current = load_record(conn, row[0]) if row else None
    if current is not None and newest([record, current]) is not record:
        return  # an older version arrived late: the stored one stays current
    body = record.body
    conn.execute("INSERT OR REPLACE INTO profiles VALUES (?, ?, ?, ?)",
                 (record.author, record.id, record.created_ms, body["name"]))
    if current is not None:
        _unlist(conn, current.id)
    services = body["services"]
    _list(conn, rid, record, record.author, title=body["name"], summary=body.get("description", ""),
          regions=body["regions"], services=[s["name"] for s in services],
          match=[s["name"] for s in services] + [s["category"] for s in services])


def _guide(conn: sqlite3.Connection, record: Record, rid: int) -> None:
    body = record.body
    earlier = body.get("supersedes")
    conn.execute("INSERT INTO guides (id, author, created_ms, supersedes) VALUES (?, ?, ?, ?)",
                 (record.id, record.author, record.created_ms, earlier))
    # Ingest checked that it names a guide; only a guide of the same author is superseded
    # (protocol.current_guides' rule): a link to another author's guide is stored and ignored.
    if earlier is not None and conn.execute("UPDATE guides SET superseded = 1 WHERE id = ? AND author = ? "
                                            "AND superseded = 0", (earlier, record.author)).rowcount:
        _unlist(conn, earlier)
    _list(conn, rid, record, record.id, title=body["title"], summary=body["summary"], regions=[],
          services=[], match=[])


def _offer(conn: sqlite3.Connection, record: Record, rid: int) -> None:
    body = record.body
    conn.execute("INSERT INTO offers (id, author, created_ms, deadline) VALUES (?, ?, ?, ?)",
                 (record.id, record.author, record.created_ms, body["deadline"]))
    _list(conn, rid, record, record.id, title=body["title"], summary=body["description"],
          regions=body["regions"], services=[body["category"]], match=[body["category"]])


def _pledge(conn: sqlite3.Connection, record: Record, rid: int) -> None:
    offer_id = record.body["offer"]
    offer = conn.execute("SELECT deadline FROM offers WHERE id = ?", (offer_id,)).fetchone()
    if offer is None or record.created_ms > offer[0]:
        return  # a pledge after the deadline never counts (protocol.offer_tally)
    row = conn.execute("SELECT id FROM pledges WHERE offer = ? AND hub = ?",
                       (offer_id, record.author)).fetchone()
    current = load_record(conn, row[0]) if row else None
    if current is None or newest([record, current]) is record:
        conn.execute("INSERT OR REPLACE INTO pledges VALUES (?, ?, ?, ?, ?)",
                     (offer_id, record.author, record.id, record.created_ms, record.body["quantity"]))


def _close(conn: sqlite3.Connection, record: Record, rid: int) -> None:
    # The earliest close by the offer's author decides (protocol.offer_tally); a close by anyone else is stored
    # and ignored.
    conn.execute("UPDATE offers SET close_id = ?, close_created_ms = ?, close_outcome = ? WHERE id = ? AND "
                 "author = ? AND (close_id IS NULL OR close_created_ms > ? OR "
                 "(close_created_ms = ? AND close_id > ?))",
                 (record.id, record.created_ms, record.body["outcome"], record.body["offer"], record.author,
                  record.created_ms, record.created_ms, record.id))


def _attestation(conn: sqlite3.Connection, record: Record, rid: int) -> None:
    charter = load_charter(conn)
    body = record.body
    # Authorised under the terms in force when it was created (protocol.marks; amendments: hub.governance).
    authorised = charter is not None and record.author in authorised_assessors(
        charter, body["scheme"], governance.amendments_in_force(conn), record.created_ms)
    conn.execute("INSERT INTO attestations VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                 (record.id, record.author, body["subject"], body["scheme"], record.created_ms,
                  body["valid_from"], body["valid_until"], int(authorised)))


def _revocation(conn: sqlite3.Connection, record: Record, rid: int) -> None:
    target = record.body["target"]
    row = conn.execute("SELECT kind, author FROM records WHERE id = ?", (target,)).fetchone()
    if row is None or row[1] != record.author:
        return  # a revocation only ever counts against its author's own record; others are stored and ignored
    kind = row[0]
    if kind == "attestation":
        conn.execute("UPDATE attestations SET revoked_ms = ? WHERE id = ? AND "
                     "(revoked_ms IS NULL OR revoked_ms > ?)", (record.created_ms, target, record.created_ms))
    elif kind == "endorsement":
        _membership_changed(conn)
    elif kind in ("guide", "offer"):
        conn.execute(f"UPDATE {kind}s SET revoked = 1 WHERE id = ?", (target,))
        _unlist(conn, target)


def _nothing(conn: sqlite3.Connection, record: Record, rid: int) -> None:
    """Kinds whose derived state is computed when read."""


def _endorsement(conn: sqlite3.Connection, record: Record, rid: int) -> None:
    _membership_changed(conn)


# Membership is recomputed from every endorsement (protocol.membership), so recomputing it for each endorsement
# of a batch made ingesting an association's history O(members²): 178 endorsements/s at 990 members
# (docs/performance.md, governance). Inside :func:`membership_deferred` it is recomputed once, at the end.
_deferral = threading.local()


def _membership_changed(conn: sqlite3.Connection) -> None:
    if getattr(_deferral, "conn", None) is conn:
        _deferral.dirty = True
        return
    charter = load_charter(conn)
    if charter is not None:
        refresh_membership(conn, charter)


@contextlib.contextmanager
def membership_deferred(conn: sqlite3.Connection) -> Iterator[None]:
    """Within the block, endorsements and their revocations stored through ``conn`` (in this thread) mark
    membership for one recomputation when the block ends, instead of recomputing it each time.

    Same final state as recomputing each time: nothing stored in between depends on the members table except
    the directory's member flags and association reviews, which the recomputation refreshes for every hub
    whose membership changed (hub.ingest relies on this; tests/hub/test_convergence.py compares orders).
    On an exception nothing is recomputed: the caller rolls the transaction back.
    """
    if getattr(_deferral, "conn", None) is not None:  # nested: the outer block recomputes
        yield
        return
    _deferral.conn, _deferral.dirty = conn, False
    try:
        yield
        dirty = _deferral.dirty
    finally:
        _deferral.conn, _deferral.dirty = None, False
    if dirty:
        charter = load_charter(conn)
        if charter is not None:
            refresh_membership(conn, charter)


# -- time credits (docs/protocol.md §6.6) ---------------------------------------------------------------------


def _credit_payment(conn: sqlite3.Connection, record: Record, rid: int) -> None:
    body = record.body
    if body["payee"] == record.author:
        return  # ingest refuses these; protocol.credit ignores them
    conn.execute("INSERT INTO credit_payments (id, payer, payee, minutes, created_ms, status) "
                 "VALUES (?, ?, ?, ?, ?, 'pending')",
                 (record.id, record.author, body["payee"], body["minutes"], record.created_ms))


def _credit_receipt(conn: sqlite3.Connection, record: Record, rid: int) -> None:
    row = conn.execute("SELECT payee, created_ms, receipt, booked_ms FROM credit_payments WHERE id = ?",
                       (record.body["payment"],)).fetchone()
    if row is None or row[0] != record.author:
        return  # only the payee books a payment (protocol.credit.bookings)
    payee, created_ms, receipt, booked_ms = row
    if receipt is not None:
        held = conn.execute("SELECT created_ms FROM records WHERE id = ?", (receipt,)).fetchone()[0]
        if (held, receipt) <= (record.created_ms, record.id):
            return  # the payee's earliest receipt books it; this one changes nothing
    new_booked = max(created_ms, record.created_ms)
    conn.execute("UPDATE credit_payments SET receipt = ?, booked_ms = ? WHERE id = ?",
                 (record.id, new_booked, record.body["payment"]))
    key = (new_booked, record.body["payment"])
    refresh_credit(conn, key if booked_ms is None else min(key, (booked_ms, record.body["payment"])))


_TailRow = tuple[bytes, bytes, bytes, int, int, bytes, int, str]  # a credit_payments row from the replay point


def _accounts(conn: sqlite3.Connection, hubs: set[bytes]) -> dict[bytes, tuple[int, int, int]]:
    """(balance, unstood_in, over_limit) of ``hubs`` as stored."""
    out: dict[bytes, tuple[int, int, int]] = {}
    hub_list = list(hubs)
    for i in range(0, len(hub_list), 500):
        chunk = hub_list[i:i + 500]
        for hub, balance, unstood, over in conn.execute(
                f"SELECT hub, balance, unstood_in, over_limit FROM credit_accounts WHERE hub IN "
                f"({','.join('?' * len(chunk))})", chunk):
            out[hub] = (balance, unstood, over)
    return out


def _credit_start(stored: dict[bytes, tuple[int, int, int]], tail: list[_TailRow]) -> dict[bytes, Position]:
    """The positions just before the replay point, for the hubs the tail touches: their stored positions (the
    ledger's end) less what the tail's rows added. O(tail), not O(ledger): a booking at the end has a tail of
    one row, which was pending and added nothing."""
    balance = {hub: b for hub, (b, _, _) in stored.items()}
    unstood = {hub: u for hub, (_, u, _) in stored.items()}
    for _, payer, payee, minutes, _, _, _, status in tail:
        if status == "stands":
            balance[payer] = balance.get(payer, 0) + minutes
            balance[payee] = balance.get(payee, 0) - minutes
        elif status != "pending":
            unstood[payee] = unstood.get(payee, 0) - minutes
    hubs = {h for row in tail for h in (row[1], row[2])}
    return {hub: Position(balance.get(hub, 0), unstood.get(hub, 0)) for hub in hubs}


def credit_limits(conn: sqlite3.Connection) -> LimitAt:
    """The credit limit (minutes) in force at each time, from the stored charter and its amendments: the one
    place that asks protocol.charter (hub.aid_queries uses it too)."""
    charter = load_charter(conn)
    if charter is None:
        return lambda at_ms: 0
    # The limit as the members amended it (docs/protocol.md §6.10); hub.governance replays the ledger from an
    # amendment's closing time when the amendments that change the limit change.
    return limit_from_charter(charter, governance.amendments_in_force(conn))


def refresh_credit(conn: sqlite3.Connection, key: tuple[int, bytes] = (-1, b"")) -> int:
    """Replay the time-credit ledger from ``key`` (booking time, payment id) to the end with protocol.credit's
    rule, and store every status and position it changes; returns how many payments it replayed.

    Called when a receipt books (or re-books earlier) a payment; call it with the effective time of a charter
    amendment that changes the credit limit (the default replays everything). Costs O(payments booked at or
    after ``key``): a booking at the end of the ledger (the usual case) replays one payment.
    """
    tail: list[_TailRow] = conn.execute(
        "SELECT id, payer, payee, minutes, created_ms, receipt, booked_ms, status FROM credit_payments "
        "WHERE booked_ms IS NOT NULL AND (booked_ms, id) >= (?, ?) ORDER BY booked_ms, id", key).fetchall()
    stored = _accounts(conn, {h for row in tail for h in (row[1], row[2])})
    entries, positions = replay([Booking(*row[:7]) for row in tail], credit_limits(conn),
                                _credit_start(stored, tail))
    conn.executemany("UPDATE credit_payments SET status = ?, limit_minutes = ?, payer_balance = ? WHERE id = ?",
                     [(e.status, e.limit_minutes, e.payer_balance, e.booking.payment) for e in entries])
    over = {hub: o for hub, (_, _, o) in stored.items()}
    for entry, row in zip(entries, tail, strict=True):
        over[entry.booking.payer] = (over.get(entry.booking.payer, 0) + (entry.status == "over-limit")
                                     - (row[7] == "over-limit"))
    conn.executemany("INSERT INTO credit_accounts VALUES (?, ?, ?, ?) ON CONFLICT (hub) DO UPDATE SET "
                     "balance = excluded.balance, unstood_in = excluded.unstood_in, over_limit = excluded.over_limit",
                     [(hub, p.balance, p.unstood_in, over.get(hub, 0)) for hub, p in positions.items()])
    return len(entries)


_APPLY: dict[str, Callable[[sqlite3.Connection, Record, int], None]] = {
    "charter": _charter, "profile": _profile, "endorsement": _endorsement, "guide": _guide, "offer": _offer,
    "pledge": _pledge, "offer-close": _close, "attestation": _attestation, "revocation": _revocation,
    "credit-payment": _credit_payment, "credit-receipt": _credit_receipt,
    # Funds are read with protocol.fund over their few records (hub.aid_queries); nothing to keep up to date.
    "fund": _nothing, "fund-join": _nothing, "fund-leave": _nothing, "fund-claim": _nothing,
    "fund-approval": _nothing, "fund-payment": _nothing,
    **governance.APPLY,  # proposal, ballot, delegation, proposal-close, review
}


def apply(conn: sqlite3.Connection, record: Record, rid: int) -> None:
    """Update the derived tables for ``record``, just stored with rowid ``rid``.

    Raises:
        sqlite3.Error: from the database; the caller rolls the record back.
    """
    _APPLY[record.kind](conn, record, rid)
    governance.after(conn, record)


def refresh_membership(conn: sqlite3.Connection, charter: Record) -> set[bytes]:
    """Recompute membership with protocol.membership, store it, and refresh the directory's member flags.

    Returns the hubs whose membership changed.
    """
    endorsements = load_records(conn, "SELECT raw, id FROM records WHERE kind = 'endorsement'")
    revocations = load_records(conn, "SELECT raw, id FROM records WHERE kind = 'revocation' AND ref IN "
                                     "(SELECT id FROM records WHERE kind = 'endorsement')")
    # Under the newest terms: an amendment may have changed the admission rule or the classes.
    now = membership(charter, endorsements, revocations, terms=governance.current_terms(conn, charter))
    before = {hub: bool(founder) for hub, founder in conn.execute("SELECT hub, founder FROM members")}
    changed = set(before) ^ set(now.members)
    conn.executemany("DELETE FROM members WHERE hub = ?", [(h,) for h in changed if h in before])
    conn.executemany("INSERT INTO members VALUES (?, ?)",
                     [(h, int(h in now.founders)) for h in changed if h not in before])
    conn.executemany("UPDATE directory SET member = ? WHERE author = ?",
                     [(int(h in now.members), h) for h in changed])
    if changed:
        governance.refresh_reviews(conn)  # reviews by hubs that left stop counting
    return changed
