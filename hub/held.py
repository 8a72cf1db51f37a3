"""What the storage rule holds besides ``records``: the eligible set, deferred records and quarantine.

Every function runs inside the writer's transaction (or a read transaction, for the reads at the end) and
holds only SQL; the rule itself is :func:`protocol.classify` (docs/protocol.md §2.3).

    eligible     the monotone set of authors whose records are stored; grows with the charter (founders,
                 assessors) and each stored endorsement (its subject)
    deferred     verified records waiting for one thing: a record id, an author, or a time; bounded by
                 Limits.max_deferred_records / _bytes / _per_source, oldest evicted first (a source over its
                 share loses its own oldest first)
    quarantine   applicants' own profiles (newest per author), bounded by Limits.max_quarantine_*; never in
                 records, never in sync, never relayed; taken out when the author becomes eligible

Caps are enforced once per transaction (:func:`enforce_caps`), so after every commit the tables are within them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from protocol import Limits, Record, Verdict, eligible_authors, replaceable_key
from protocol.jsonview import iso_ms, record_to_json

from .derive import load_charter, load_records, record_from_raw

__all__ = [
    "Waiting", "add_eligible", "applicant_raw", "applicants", "defer", "enforce_caps", "held_ids",
    "in_quarantine", "is_eligible", "quarantine", "rebuild_eligible", "summary", "take_due", "take_woken",
]

_CHUNK = 500  # ids per IN (...)


def _chunks(items: list[bytes]) -> Iterator[list[bytes]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start:start + _CHUNK]


# -- eligible authors --------------------------------------------------------------------------------------


def is_eligible(conn: sqlite3.Connection, hub: bytes) -> bool:
    return conn.execute("SELECT 1 FROM eligible WHERE hub = ?", (hub,)).fetchone() is not None


def add_eligible(conn: sqlite3.Connection, hubs: Iterable[bytes]) -> list[bytes]:
    """Add hubs to the eligible set; return those that were not in it (their waiting records wake up)."""
    added = []
    for hub in dict.fromkeys(hubs):
        if conn.execute("INSERT OR IGNORE INTO eligible VALUES (?)", (hub,)).rowcount:
            added.append(hub)
    return added


def rebuild_eligible(conn: sqlite3.Connection) -> int:
    """Refill the eligible set from stored records (protocol.eligible_authors); for a hub migrated to
    schema 3, whose records were stored under the older rule. Returns its size."""
    conn.execute("DELETE FROM eligible")
    charter = load_charter(conn)
    if charter is None:
        return 0
    # Endorsements, and proposals for the assessors their amendments name (docs/protocol.md §6.10).
    endorsements = load_records(conn, "SELECT raw, id FROM records WHERE kind IN ('endorsement', 'proposal')")
    return len(add_eligible(conn, sorted(eligible_authors(charter, endorsements))))


# -- deferred records --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Waiting:
    """A record taken out of ``deferred`` or ``quarantine`` to be tried again."""

    record: Record
    source: str
    origin: bytes | None


def defer(conn: sqlite3.Connection, record: Record, verdict: Verdict, source: str, origin: bytes | None,
          now_ms: int) -> None:
    """Hold ``record`` until what ``verdict`` waits for; a record already deferred keeps its place in line."""
    conn.execute(
        "INSERT INTO deferred (id, raw, size, source, origin, reason, detail, wait_id, wait_author, wait_ms, "
        "created_ms, received_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
        "reason = excluded.reason, detail = excluded.detail, wait_id = excluded.wait_id, "
        "wait_author = excluded.wait_author, wait_ms = excluded.wait_ms",
        (record.id, record.raw, len(record.raw), source[:500], origin, verdict.reason, verdict.detail[:500],
         verdict.wait_id, verdict.wait_author, verdict.wait_ms, record.created_ms, now_ms))


def _take(conn: sqlite3.Connection, where: str, params: list[Any]) -> list[Waiting]:
    rows = conn.execute(f"SELECT seq, id, raw, source, origin FROM deferred WHERE {where} ORDER BY seq",
                        params).fetchall()
    conn.executemany("DELETE FROM deferred WHERE seq = ?", [(row[0],) for row in rows])
    return [Waiting(record_from_raw(raw, rid), source, origin) for _, rid, raw, source, origin in rows]


def take_woken(conn: sqlite3.Connection, ids: list[bytes], authors: list[bytes]) -> list[Waiting]:
    """Take out every deferred record waiting for one of ``ids`` or ``authors``, and the quarantined profiles of
    ``authors``, oldest first."""
    out: list[Waiting] = []
    for chunk in _chunks(ids):
        out += _take(conn, f"wait_id IN ({','.join('?' * len(chunk))})", chunk)
    for chunk in _chunks(authors):
        marks = ",".join("?" * len(chunk))
        out += _take(conn, f"wait_author IN ({marks})", chunk)
        rows = conn.execute(f"SELECT seq, id, raw, source, origin FROM quarantine WHERE author IN ({marks}) "
                            "ORDER BY seq", chunk).fetchall()
        conn.executemany("DELETE FROM quarantine WHERE seq = ?", [(row[0],) for row in rows])
        out += [Waiting(record_from_raw(raw, rid), source, origin) for _, rid, raw, source, origin in rows]
    return out


def take_due(conn: sqlite3.Connection, now_ms: int, limit: int) -> list[Waiting]:
    """Take out up to ``limit`` records deferred as ``future`` whose time has come, earliest first."""
    seqs = [seq for (seq,) in conn.execute("SELECT seq FROM deferred WHERE wait_ms <= ? ORDER BY wait_ms, seq "
                                           "LIMIT ?", (now_ms, limit))]
    return _take(conn, f"seq IN ({','.join('?' * len(seqs))})", seqs) if seqs else []


# -- quarantine --------------------------------------------------------------------------------------------


def quarantine(conn: sqlite3.Connection, record: Record, origin: bytes, source: str,
               now_ms: int) -> tuple[bool, str | None]:
    """Hold an applicant's own profile, the newest per applicant (the replaceable rule of docs/protocol.md
    §6.2). An older version is not lost: it waits in ``deferred`` for the applicant's sponsorship like any
    record of a non-eligible author, so what lands once it is sponsored does not depend on who sent what.

    Returns (whether ``record`` is now the quarantined one — else the caller defers it, and the source of the
    older profile moved to ``deferred``, if one was).
    """
    row = conn.execute("SELECT id, raw, source, origin FROM quarantine WHERE author = ?",
                       (record.author,)).fetchone()
    moved = None
    if row is not None:
        held = record_from_raw(row[1], row[0])
        if held.id == record.id:
            return True, None
        if replaceable_key(held) < replaceable_key(record):
            return False, None
        conn.execute("DELETE FROM quarantine WHERE author = ?", (record.author,))
        defer(conn, held, _WAIT_SPONSOR(held), row[2], row[3], now_ms)
        moved = str(row[2])
    conn.execute("INSERT INTO quarantine (author, id, raw, size, created_ms, origin, source, received_ms) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (record.author, record.id, record.raw, len(record.raw),
                                                     record.created_ms, origin, source[:500], now_ms))
    return True, moved


def _WAIT_SPONSOR(record: Record) -> Verdict:  # noqa: N802 (a constant's shape, per record)
    return Verdict("defer", "not-a-member", f"an older profile of applicant {record.author_id}: held until a "
                   "member endorses it", wait_author=record.author)


def in_quarantine(conn: sqlite3.Connection, record_id: bytes) -> bool:
    return conn.execute("SELECT 1 FROM quarantine WHERE id = ?", (record_id,)).fetchone() is not None


# -- caps --------------------------------------------------------------------------------------------------


def _evict_over(conn: sqlite3.Connection, table: str, max_rows: int, max_bytes: int,
                where: str = "", params: tuple[Any, ...] = ()) -> int:
    """Delete the oldest rows of ``table`` (optionally among ``where``) until at most ``max_rows`` rows and
    ``max_bytes`` bytes are left; returns how many went."""
    clause = f" WHERE {where}" if where else ""
    n, size = conn.execute(f"SELECT count(*), coalesce(sum(size), 0) FROM {table}{clause}", params).fetchone()
    if n <= max_rows and size <= max_bytes:
        return 0
    # Newest first, keep rows while both running totals fit: one pass of a window function over <= cap rows.
    doomed = conn.execute(
        f"SELECT seq FROM (SELECT seq, row_number() OVER w AS k, sum(size) OVER w AS total FROM {table}{clause} "
        "WINDOW w AS (ORDER BY seq DESC)) WHERE k > ? OR total > ?", (*params, max_rows, max_bytes)).fetchall()
    conn.executemany(f"DELETE FROM {table} WHERE seq = ?", doomed)
    return len(doomed)


def enforce_caps(conn: sqlite3.Connection, sources: Iterable[str], limits: Limits, *,
                 quarantined: bool = False) -> int:
    """Evict down to the published caps: first each of ``sources`` (those that deferred something in this
    transaction) to its share, then the deferred table as a whole, then quarantine (when ``quarantined``: this
    transaction added to it). Only tables that grew are checked. Returns rows evicted."""
    evicted = 0
    sources = set(sources)
    for source in sources:
        evicted += _evict_over(conn, "deferred", limits.max_deferred_per_source, limits.max_deferred_bytes,
                               "source = ?", (source[:500],))
    if sources:
        evicted += _evict_over(conn, "deferred", limits.max_deferred_records, limits.max_deferred_bytes)
    if quarantined:
        evicted += _evict_over(conn, "quarantine", limits.max_quarantine_profiles, limits.max_quarantine_bytes)
    return evicted


# -- reads -------------------------------------------------------------------------------------------------


def held_ids(conn: sqlite3.Connection, ids: list[bytes]) -> set[bytes]:
    """The subset of ``ids`` held in any form: stored, deferred or quarantined."""
    found: set[bytes] = set()
    for chunk in _chunks(ids):
        marks = ",".join("?" * len(chunk))
        for table in ("records", "deferred", "quarantine"):
            found.update(row[0] for row in conn.execute(f"SELECT id FROM {table} WHERE id IN ({marks})", chunk))
    return found


def summary(conn: sqlite3.Connection) -> dict[str, Any]:
    """Deferred records by reason and by source, with totals."""
    n, size = conn.execute("SELECT count(*), coalesce(sum(size), 0) FROM deferred").fetchone()
    return {
        "records": n, "bytes": size,
        "by_reason": dict(conn.execute("SELECT reason, count(*) FROM deferred GROUP BY reason ORDER BY reason")),
        "by_source": dict(conn.execute("SELECT source, count(*) FROM deferred GROUP BY source "
                                       "ORDER BY count(*) DESC, source LIMIT 50")),
    }


def applicants(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Quarantined applicants' profiles, newest first, as members see them."""
    out = []
    for rid, raw, origin, source, received in conn.execute(
            "SELECT id, raw, origin, source, received_ms FROM quarantine ORDER BY created_ms DESC, id"):
        record = record_from_raw(raw, rid)
        body = record.body
        out.append({"hub": record.author_id, "id": record.id_hex, "name": body["name"],
                    "description": body.get("description", ""), "regions": body["regions"],
                    "services": [s["name"] for s in body["services"]], "created": iso_ms(record.created_ms),
                    "received": iso_ms(received), "source": source, "origin": origin.hex(),
                    "profile": record_to_json(record)})
    return out


def applicant_raw(conn: sqlite3.Connection, hub: bytes) -> bytes | None:
    row = conn.execute("SELECT raw FROM quarantine WHERE author = ?", (hub,)).fetchone()
    return None if row is None else bytes(row[0])
