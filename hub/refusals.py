"""The refusals log, bounded (issue 9): counters per (source, reason) plus a ring of recent examples.

A stranger can send any number of garbage records under any number of made-up source names; the log must stay
small and readable. So:

    refused            one counter row per (source, reason), for at most ``Limits.refused_sources`` distinct
                       sources; a refusal from a further source is counted under the source "other"
    refused_examples   the last ``Limits.refused_examples`` refusals with their record id, source, reason and
                       detail, oldest overwritten first

Both are written in the caller's transaction (the ingest batch's), so counts match what was committed.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable
from typing import Any, NamedTuple

from protocol import Limits
from protocol.jsonview import iso_ms

__all__ = ["OTHER", "Refused", "examples", "record", "summary", "total"]

#: The source under which refusals from sources beyond the cap are counted.
OTHER = "other"
_MAX_SOURCE = 200  # characters of a source kept (a peer's URL is at most 500; the rest says nothing new)
_MAX_DETAIL = 500


class Refused(NamedTuple):
    """One refusal to log."""

    source: str
    reason: str
    detail: str
    id: str | None = None  # hex record id, when the bytes decoded far enough to have one


def record(conn: sqlite3.Connection, refusals: Iterable[Refused], now_ms: int, limits: Limits) -> None:
    """Count ``refusals`` and keep the newest as examples (inside the caller's transaction)."""
    items = list(refusals)
    if not items:
        return
    known = {s for (s,) in conn.execute("SELECT DISTINCT source FROM refused")}
    counts: Counter[tuple[str, str]] = Counter()
    last: dict[tuple[str, str], str] = {}
    for item in items:
        source = item.source[:_MAX_SOURCE]
        if source not in known:
            if len(known - {OTHER}) >= limits.refused_sources:
                source = OTHER
            known.add(source)
        counts[(source, item.reason)] += 1
        last[(source, item.reason)] = item.detail[:_MAX_DETAIL]
    conn.executemany(
        "INSERT INTO refused VALUES (?, ?, ?, ?, ?) ON CONFLICT (source, reason) DO UPDATE SET "
        "count = count + excluded.count, last_detail = excluded.last_detail, last_at = excluded.last_at",
        [(source, reason, n, last[(source, reason)], now_ms) for (source, reason), n in counts.items()])
    keep = limits.refused_examples
    if keep <= 0:
        return
    conn.executemany("INSERT INTO refused_examples (id, source, reason, detail, at_ms) VALUES (?, ?, ?, ?, ?)",
                     [(bytes.fromhex(i.id) if i.id else None, i.source[:_MAX_SOURCE], i.reason,
                       i.detail[:_MAX_DETAIL], now_ms) for i in items[-keep:]])
    conn.execute("DELETE FROM refused_examples WHERE seq <= (SELECT max(seq) FROM refused_examples) - ?", (keep,))


def summary(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """The counters, most recent first."""
    rows = conn.execute("SELECT source, reason, count, last_detail, last_at FROM refused "
                        "ORDER BY last_at DESC, source, reason")
    return [{"source": s, "reason": r, "count": n, "last_detail": d, "last_at": iso_ms(at)}
            for s, r, n, d, at in rows]


def examples(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """The ring of recent refusals, newest first."""
    rows = conn.execute("SELECT id, source, reason, detail, at_ms FROM refused_examples ORDER BY seq DESC")
    return [{"id": rid.hex() if rid is not None else None, "source": s, "reason": r, "detail": d,
             "at": iso_ms(at)} for rid, s, r, d, at in rows]


def total(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT coalesce(sum(count), 0) FROM refused").fetchone()[0])
