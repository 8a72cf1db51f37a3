"""What a page of directory results shows besides its rows, fetched for the whole page at once, and the cache
of search answers (hub.queries uses both; split from it to keep modules small).

A page names a few dozen authors and offers; fetching their names, marks and offer statuses with a few
``IN (…)`` queries instead of a few queries per result took the search's page building from most of its
time to a small part at 1M records (docs/performance.md, issue 13). The rules stay protocol's pure
functions (mark_status, offer_tally) over the same records the single-item views hand them.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar, cast

from protocol import Record, format_hub_id, mark_status
from protocol.offers import OFFER_TRANSITIONS

from .derive import load_records

T = TypeVar("T")

__all__ = ["MarksCache", "SearchCache", "hub_id_text", "in_marks", "marks_brief", "offer_statuses", "revocations_of"]


class SearchCache:
    """Answers of time-independent searches (no ``open`` or ``mark`` filter: their matches change as the
    clock moves), keyed on the query and on the last row of ``records``. Every change to the directory comes
    from a record being stored (derived state, membership flags, supersedes, revocations), which raises that
    row, and rows are never deleted; so a hit is what the query would compute from this snapshot. What a
    result shows that depends on the time (marks, an offer's status) is computed afresh for every call.

    Thread-safe; least recently used entries go first. Only pages of at most ``max_rows`` results are kept,
    so the cache holds at most ``size * max_rows`` rows (~2 MB by default).
    """

    def __init__(self, size: int = 64, max_rows: int = 50) -> None:
        self.max_rows = max_rows
        self.size = size
        self._entries: OrderedDict[Any, tuple[int, list[int], dict[int, tuple[Any, ...]]]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0
        #: The marks of the authors a page names, shared by the searches that use this cache.
        self.marks = MarksCache()

    def get(self, key: Any) -> tuple[int, list[int], dict[int, tuple[Any, ...]]] | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return found

    def put(self, key: Any, value: tuple[int, list[int], dict[int, tuple[Any, ...]]]) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


#: Hub ids as text, remembered: base32 in Python costs ~30 µs, and a page names the same few hubs again.
hub_id_text = functools.lru_cache(maxsize=4096)(format_hub_id)


def in_marks(values: list[Any]) -> str:
    return ",".join("?" * len(values))


#: Kinds whose records never change a mark or the names shown beside one (hub.derive, hub.governance: marks
#: follow attestations, revocations, the charter and the governance records and endorsements that amend it;
#: names follow profiles); MarksCache ignores their counts, so a stream of guides and offers keeps it warm.
_NOT_MARKS = ("guide", "offer", "pledge")
_NEVER = 1 << 62


class MarksCache:
    """Answers about one hub's marks (:func:`marks_brief` per hub, hub.queries' marks_view and mark_check),
    exact: an answer is kept with the counts of stored records of every kind that can change it (all but
    :data:`_NOT_MARKS`; records are never deleted, so equal counts mean the same records) and with the
    interval of time around the ``now_ms`` it was computed at in which none of the hub's attestations starts,
    ends or is revoked and no amendment takes effect (the only times those answers compare the clock with).
    Inside both, the answer is what a fresh computation gives. A directory page names ~20 authors, whose marks
    cost ~60 cold record reads at 1M records; a hub's page lists every attestation about it (docs/performance.md,
    issue 13 P7). Thread-safe; least recently used entries go first; answers are copied in and out.
    """

    def __init__(self, size: int = 4096, max_rows: int = 8192) -> None:
        self.size = size
        #: Answers are kept while their rows (a list's items, 1 for a dict) total at most this: a hub's page can
        #: list hundreds of attestations (the benchmark's generator gives each hub ~500), and a cache bounded
        #: by entries alone held 45 MiB of them at 1M records (docs/performance.md, issue 13 P8).
        self.max_rows = max_rows
        self._rows = 0
        self._entries: OrderedDict[Any, tuple[Any, int, int, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    @staticmethod
    def state(conn: sqlite3.Connection) -> Any:
        return tuple(conn.execute(f"SELECT kind, n FROM kind_counts WHERE kind NOT IN ({in_marks(list(_NOT_MARKS))}) "
                                  "ORDER BY kind", _NOT_MARKS))

    def get(self, key: Any, state: Any, now_ms: int) -> Any:
        """The answer kept for ``key`` if it holds for ``state`` at ``now_ms``, else None."""
        with self._lock:
            found = self._entries.get(key)
            if found is None or found[0] != state or not found[1] <= now_ms < found[2]:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return _copy(found[3])

    def put(self, key: Any, state: Any, since: int, until: int, value: Any) -> None:
        rows = _rows(value)
        if rows > self.max_rows // 64:
            return  # a long list of marks is recomputed each time rather than crowding out the others
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._rows -= _rows(old[3])
            self._entries[key] = (state, since, until, _copy(value))
            self._rows += rows
            while len(self._entries) > self.size or self._rows > self.max_rows:
                self._rows -= _rows(self._entries.popitem(last=False)[1][3])

    def answer(self, conn: sqlite3.Connection, key: Any, hub: bytes, now_ms: int, compute: Callable[[], T]) -> T:
        """``compute()``, or the answer kept for ``key`` (an answer about ``hub``'s marks) if it still holds."""
        state = self.state(conn)
        hit = self.get(key, state, now_ms)
        if hit is not None:
            return cast(T, hit)
        value = compute()
        since, until = _steady(conn, [hub], now_ms).get(hub, (-_NEVER, _NEVER))
        self.put(key, state, *_amended(conn, now_ms, since, until), value)
        return value


def _rows(value: Any) -> int:
    return max(1, len(value)) if isinstance(value, list) else 1


def _copy(value: Any) -> Any:
    """A copy of JSON-like answers (dicts and lists of plain values), several times faster than deepcopy."""
    if isinstance(value, dict):
        return {k: _copy(v) if isinstance(v, (dict, list)) else v for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) if isinstance(v, (dict, list)) else v for v in value]
    return value


def _amended(conn: sqlite3.Connection, now_ms: int, since: int, until: int) -> tuple[int, int]:
    """[since, until) narrowed to exclude the times amendments take effect."""
    for (t,) in conn.execute("SELECT effective_ms FROM amendments"):
        if t <= now_ms:
            since = max(since, t)
        else:
            until = min(until, t)
    return since, until


def _steady(conn: sqlite3.Connection, hubs: list[bytes], now_ms: int) -> dict[bytes, tuple[int, int]]:
    """For each hub with attestations, the interval [since, until) around ``now_ms`` in which none of its
    attestations' times (valid_from, valid_until, revoked_ms) falls: its marks cannot change inside it."""
    out: dict[bytes, tuple[int, int]] = {}
    for start in range(0, len(hubs), 300):
        chunk = hubs[start:start + 300]
        marks = in_marks(chunk)
        union = " UNION ALL ".join(f"SELECT subject, {c} AS t FROM attestations INDEXED BY attestations_times "
                                   f"WHERE subject IN ({marks}) AND {c} IS NOT NULL"
                                   for c in ("valid_from", "valid_until", "revoked_ms"))
        for hub, since, until in conn.execute(
                f"SELECT subject, max(CASE WHEN t <= ? THEN t END), min(CASE WHEN t > ? THEN t END) FROM ({union}) "
                "GROUP BY subject", [now_ms, now_ms, *chunk, *chunk, *chunk]):
            out[hub] = (-_NEVER if since is None else since, _NEVER if until is None else until)
    return out


def marks_brief(conn: sqlite3.Connection, charter: Record | None, hubs: list[bytes],
                now_ms: int, cache: MarksCache | None = None) -> dict[bytes, list[dict[str, str]]]:
    """{scheme, status} for each scheme each of ``hubs`` has attestations of, decided by protocol.mark_status;
    through ``cache`` when given (:class:`MarksCache`: the same answers)."""
    if cache is None or charter is None or not hubs:
        return _marks_brief(conn, charter, hubs, now_ms)
    state = cache.state(conn)
    out: dict[bytes, list[dict[str, str]]] = {}
    missing = []
    for hub in hubs:
        hit = cache.get(("brief", hub), state, now_ms)
        if hit is None:
            missing.append(hub)
        elif hit:
            out[hub] = hit
    if missing:
        fresh = _marks_brief(conn, charter, missing, now_ms)
        steady = _steady(conn, missing, now_ms)
        for hub in missing:
            since, until = _amended(conn, now_ms, *steady.get(hub, (-_NEVER, _NEVER)))
            cache.put(("brief", hub), state, since, until, fresh.get(hub, []))
        out.update(fresh)
    return out


def _marks_brief(conn: sqlite3.Connection, charter: Record | None, hubs: list[bytes],
                 now_ms: int) -> dict[bytes, list[dict[str, str]]]:
    """{scheme, status} for each scheme each of ``hubs`` has attestations of, decided by protocol.mark_status.

    mark_status answers "valid" if any attestation is valid, else the newest one's status; so it is handed
    only the newest attestation per scheme plus one that the derived columns say is valid now — the same
    answer as over all of them, without loading a long history of marks for every result.
    """
    if charter is None or not hubs:
        return {}
    out: dict[bytes, list[dict[str, str]]] = {}
    for start in range(0, len(hubs), 400):
        chunk = hubs[start:start + 400]
        rows = conn.execute(
            "SELECT s.subject, (SELECT id FROM attestations WHERE subject = s.subject AND scheme = s.scheme "
            "ORDER BY created_ms DESC, id LIMIT 1), "
            "(SELECT id FROM attestations INDEXED BY attestations_subject WHERE subject = s.subject "
            "AND scheme = s.scheme AND authorised = 1 AND "
            "valid_from <= ?1 AND valid_until > ?1 AND (revoked_ms IS NULL OR revoked_ms > ?1) "
            "ORDER BY created_ms DESC LIMIT 1) "
            f"FROM (SELECT DISTINCT subject, scheme FROM attestations WHERE subject IN ({in_marks(chunk)})) s",
            [now_ms, *chunk]).fetchall()
        ids = sorted({i for _, *pair in rows for i in pair if i is not None})
        attestations = load_records(conn, f"SELECT raw, id FROM records WHERE id IN ({in_marks(ids)})", ids)
        revocations = revocations_of(conn, [a.id for a in attestations])
        amendments = _amendments(conn)
        by_hub: dict[bytes, list[Record]] = {}
        for a in attestations:
            by_hub.setdefault(a.body["subject"], []).append(a)
        for hub, mine in by_hub.items():
            out[hub] = [{"scheme": scheme, "status": mark_status(hub, scheme, mine, charter, revocations,
                                                                 now_ms, amendments).status}
                        for scheme in sorted({a.body["scheme"] for a in mine})]
    return out


def _amendments(conn: sqlite3.Connection) -> list[Any]:
    """The charter amendments in force (hub.governance): marks are authorised under the terms at their
    creation."""
    from .governance import amendments_in_force

    return amendments_in_force(conn)


def offer_statuses(conn: sqlite3.Connection, offer_ids: list[bytes], now_ms: int) -> dict[bytes, str]:
    """Each offer's status: protocol's lifecycle table (OFFER_TRANSITIONS, as offer_tally walks it) over the
    derived ``offers`` row — its deadline, the outcome of the earliest close by its author, and whether its
    author revoked it — instead of loading the offer and its closes: a page of offers costs one lookup per
    offer in a small table, not a read of each record at 1M records (docs/performance.md, issue 13)."""
    out: dict[bytes, str] = {}
    for start in range(0, len(offer_ids), 500):
        chunk = offer_ids[start:start + 500]
        for offer_id, deadline, revoked, outcome in conn.execute(
                f"SELECT id, deadline, revoked, close_outcome FROM offers WHERE id IN ({in_marks(chunk)})", chunk):
            state = "open"
            if now_ms > deadline:
                state = OFFER_TRANSITIONS[state].get("deadline", state)
            if outcome is not None:
                state = OFFER_TRANSITIONS[state].get(outcome, state)
            elif revoked:
                state = OFFER_TRANSITIONS[state].get("revoked", state)
            out[offer_id] = state
    return out


def revocations_of(conn: sqlite3.Connection, ids: list[bytes]) -> list[Record]:
    """Revocations naming any of ``ids``, 500 ids to a query."""
    out: list[Record] = []
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        out += load_records(conn, f"SELECT raw, id FROM records INDEXED BY records_ref "
                                  f"WHERE kind = 'revocation' AND ref IN "
                                  f"({','.join('?' * len(chunk))})", chunk)
    return out
