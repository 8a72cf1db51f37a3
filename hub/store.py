"""The hub's storage facade: the public API of docs/dev/hub-contract.md.

One ``Store`` per process over ``HOME/hub.sqlite3``. Writes go to the one writer thread (hub.db.Writer), each
in ``BEGIN IMMEDIATE … COMMIT``; reads use pooled read connections, each view inside one read transaction.
Records enter only through :meth:`Store.ingest` / :meth:`Store.ingest_async` (hub.ingest); SQL lives in
hub.db, hub.ingest, hub.derive and hub.queries.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from protocol import DEFAULT_LIMITS, CharterTerms, Limits, Membership, Record, parse_hub_id

from . import aid_queries, governance, held, ingest, publishing, queries, refusals
from .blobs import BlobStore
from .db import ReadPool, Writer, open_database, transaction
from .derive import load_charter, load_record
from .ingest import IngestResult, run
from .queries import DirectoryQuery
from .search_index import Indexer, search_path

__all__ = ["DirectoryQuery", "IngestResult", "Listener", "Store"]

log = logging.getLogger(__name__)
T = TypeVar("T")
#: Called after every ingest with (results, source), in the thread that called ingest (the event loop's for
#: ingest_async). The federation driver pushes what was published locally. Records accepted on retry (a
#: deferred record whose missing piece came, a sponsored applicant's profile, a future record whose time came)
#: come in their own call, all "accepted", with the source they first arrived from.
Listener = Callable[[list[IngestResult], str], None]
_IN_CHUNK = 500  # ids per IN (...) query; SQLite's default limit on parameters is 32,766
#: After an ingest call of this many records, or a scan of every sync item, free heap goes back to the OS.
TRIM_AFTER_RECORDS = 500


def _malloc_trim() -> Callable[[], None]:
    try:
        import ctypes

        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to do
        return lambda: None

    def release() -> None:
        trim(0)

    return release


#: glibc keeps the memory a large call freed (decoded records, FTS5's pending terms, the tuples of a scan) in
#: its arenas, one per thread that allocated, so a hub's RSS only ever grows; ``malloc_trim(0)`` returns the
#: free pages (docs/performance.md, issue 13 P8: measured there). A no-op elsewhere.
release_free_memory = _malloc_trim()


class Store:
    """Records and derived state of one hub. Thread-safe; several processes may open one database.

    Raises (constructor):
        sqlite3.Error: the database cannot be opened or migrated.
    """

    def __init__(self, db_path: Path, *, limits: Limits = DEFAULT_LIMITS, blobs_dir: Path | None = None,
                 association: bytes | None = None) -> None:
        self.path = Path(db_path)
        self.limits = limits
        self.expected_association = association
        self.blobs = BlobStore(blobs_dir or self.path.parent / "blobs", limits.max_blob_bytes)
        setup, applied = open_database(self.path)  # refuses an empty, foreign or damaged file (hub.db)
        try:
            if 3 in applied:
                # Schema 3 brought the eligible set: fill it from what an older hub already stored.
                with transaction(setup):
                    held.rebuild_eligible(setup)
        finally:
            setup.close()
        self._writer = Writer(self.path)
        #: The full-text index, filled after each acknowledging COMMIT in its own file (hub/search_index.py).
        self._indexer = Indexer(self.path, prune=self._prune_queue)
        self._readers = ReadPool(self.path, attach={"search": search_path(self.path)})
        self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="coophub-read")
        self._listeners: list[Listener] = []
        self._search_cache = queries.SearchCache()  # repeated searches while nothing new is stored
        self._charter: Record | None = None  # the stored charter, once there is one (it never changes)
        self._closed = False
        #: How long ingest calls take, from decode to COMMIT (GET /metrics shows it as a histogram).
        self.ingest_timings = Timings()

    def close(self) -> None:
        """Finish queued writes, then close every connection and thread. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._executor.shutdown(wait=True)
        self._writer.close()
        self._indexer.close()
        self._readers.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(results, source)`` after every ingest (see :data:`Listener`)."""
        self._listeners.append(listener)

    def _read(self, fn: Callable[..., T], *args: Any) -> T:
        with self._readers.reading() as conn:
            return fn(conn, *args)

    # --- the one way in ---------------------------------------------------------------------------------

    def ingest(self, raws: Sequence[bytes], *, now_ms: int, source: str = "local",
               origin: bytes | None = None) -> list[IngestResult]:
        """Check and store records; results in input order, returned only after COMMIT.

        ``origin`` is the authenticated hub the bytes came from (this hub's own key for the local API and CLI,
        a peer session's hub, None for imports and anonymous pushes); it decides quarantine
        (docs/dev/hub-contract.md).

        Raises:
            RuntimeError: the store is closed.
        """
        results, retried = self._ingest(raws, now_ms, source, origin)
        self._notify(results, source)
        self._notify_retried(retried)
        return results

    async def ingest_async(self, raws: Sequence[bytes], *, now_ms: int, source: str = "local",
                           origin: bytes | None = None) -> list[IngestResult]:
        """:meth:`ingest` without blocking the event loop (decoding and waiting run in a thread).

        Raises:
            RuntimeError: the store is closed.
        """
        loop = asyncio.get_running_loop()
        results, retried = await loop.run_in_executor(self._executor, self._ingest, list(raws), now_ms, source,
                                                      origin)
        self._notify(results, source)
        self._notify_retried(retried)
        return results

    def _ingest(self, raws: Sequence[bytes], now_ms: int, source: str,
                origin: bytes | None) -> tuple[list[IngestResult], list[tuple[IngestResult, str]]]:
        started = time.perf_counter()
        try:
            return run(self._submit, raws, have=self.have, now_ms=now_ms, source=source, origin=origin,
                       limits=self.limits, expected=self.expected_association)
        finally:
            self.ingest_timings.observe(time.perf_counter() - started, len(raws))
            if len(raws) >= TRIM_AFTER_RECORDS:
                release_free_memory()

    def _submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Queue a write that may list or unlist entries; the indexer is woken once it has committed."""
        future = self._writer.submit(fn, *args)
        future.add_done_callback(lambda _: self._indexer.notify())
        return future

    def _prune_queue(self, mark: int) -> None:
        if not self._closed:
            self._writer.submit(_prune_fts_queue, mark)

    def retry_due(self, now_ms: int) -> list[IngestResult]:
        """Retry the records deferred as ``future`` whose time has come at ``now_ms`` (and what they wake);
        return their results. Listeners hear about those accepted. The federation driver calls this on its
        sync timer; every ingest call also retries due records first, so a hub that hears anything is on time.

        Raises:
            RuntimeError: the store is closed.
        """
        results: list[IngestResult] = []
        accepted: list[tuple[IngestResult, str]] = []
        while True:
            try:
                done, landed = self._submit(ingest.retry_due, now_ms, self.limits,
                                            self.expected_association).result()
            except ingest.NeedsIsolation:
                done, landed = self._submit(ingest.retry_due, now_ms, self.limits,
                                            self.expected_association, True).result()
            results += done
            accepted += landed
            if len(done) < max(1, self.limits.ingest_batch):
                break
        self._notify_retried(accepted)
        return results

    def _notify(self, results: list[IngestResult], source: str) -> None:
        for listener in list(self._listeners):
            try:
                listener(results, source)
            except Exception:  # a listener's bug must not turn a committed ingest into an error
                log.exception("ingest listener %r failed", listener)

    def _notify_retried(self, retried: list[tuple[IngestResult, str]]) -> None:
        by_source: dict[str, list[IngestResult]] = {}
        for result, source in retried:
            by_source.setdefault(source, []).append(result)
        for source, results in by_source.items():
            self._notify(results, source)

    def check_publish(self, record: Record, now_ms: int) -> None:
        """Checks on a record this hub was asked to publish (hub.publishing), before it is ingested.

        Raises:
            PublishRefused: it would be refused or have no effect; nothing is stored.
        """
        self._read(publishing.check, record, now_ms)

    # --- reads ------------------------------------------------------------------------------------------

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a synchronous read (any Store method) in the store's thread pool."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def view(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(conn, *args)`` inside one read transaction, for read-only modules with their own queries
        (hub.opendata.load); call through :meth:`read` from async code."""
        return self._read(fn, *args)

    def association_id(self) -> bytes | None:
        """The stored charter's id, else the expected association from config, else None."""
        charter = self.charter()
        return charter.id if charter is not None else self.expected_association

    def charter(self) -> Record | None:
        """The association's charter, once stored. A hub holds one charter for good (the storage rule refuses
        another association's), so after the first read it is kept: every publish asks for it."""
        if self._charter is None:
            self._charter = self._read(load_charter)
        return self._charter

    def terms(self) -> CharterTerms | None:
        """The charter's terms in force now: the charter as the members amended it (hub.governance)."""
        return self._read(governance.current_terms)

    def get_raw(self, record_id: bytes) -> bytes | None:
        with self._readers.reading() as conn:
            row = conn.execute("SELECT raw FROM records WHERE id = ?", (record_id,)).fetchone()
        return None if row is None else bytes(row[0])

    def get_record(self, record_id: bytes) -> Record | None:
        return self._read(load_record, record_id)

    def held(self, ids: Iterable[bytes]) -> set[bytes]:
        """The subset of ``ids`` held in any form — stored, deferred or quarantined — so federation never
        fetches again what it already holds."""
        return self._read(held.held_ids, list(ids))

    def is_eligible(self, hub: bytes) -> bool:
        """Whether ``hub`` is in the eligible set: its records are stored (docs/protocol.md §2.3)."""
        return self._read(held.is_eligible, hub)

    def deferred_summary(self) -> dict[str, Any]:
        """Deferred records: {"records", "bytes", "by_reason": {reason: n}, "by_source": {source: n}}."""
        return self._read(held.summary)

    def applicants(self) -> list[dict[str, Any]]:
        """Applicants' quarantined profiles, newest first (hub.held.applicants)."""
        return self._read(held.applicants)

    def applicant_raw(self, hub: bytes) -> bytes | None:
        """The canonical bytes of ``hub``'s quarantined profile, if this hub holds one."""
        return self._read(held.applicant_raw, hub)

    def have(self, ids: Iterable[bytes]) -> set[bytes]:
        """The subset of ``ids`` that is stored."""
        found: set[bytes] = set()
        with self._readers.reading() as conn:
            for chunk in _chunks(list(ids)):
                found.update(row[0] for row in conn.execute(
                    f"SELECT id FROM records WHERE id IN ({','.join('?' * len(chunk))})", chunk))
        return found

    def sync_items(self) -> list[tuple[int, bytes]]:
        """(created_ms, id) of every stored record, sorted: one scan of a covering index."""
        return self.sync_items_after(0)[0]

    def sync_items_after(self, rowid: int) -> tuple[list[tuple[int, bytes]], int]:
        """(created_ms, id) of the records stored after row ``rowid`` (0: all of them), and the last row stored.

        Records are never deleted, so rows only grow: a caller holding the items up to row r asks for the rest
        with ``sync_items_after(r)`` (federation's Negentropy snapshot grows this way).
        """
        with self._readers.reading() as conn:  # one read transaction: both statements see one snapshot
            last = conn.execute("SELECT coalesce(max(rowid), 0) FROM records").fetchone()[0]
            if rowid == 0:
                rows = conn.execute("SELECT created_ms, id FROM records ORDER BY created_ms, id").fetchall()
            else:
                rows = conn.execute("SELECT created_ms, id FROM records WHERE rowid > ?", (rowid,)).fetchall()
        return rows, int(last)

    @contextlib.contextmanager
    def sync_items_stream(self) -> Iterator[tuple[int, Iterator[tuple[int, bytes]]]]:
        """(the last row stored, an iterator over every (created_ms, id) in order) from one snapshot.

        Rows come from the covering index one at a time, so a caller packing them (federation's Negentropy
        storage) never holds a million tuples at once: ~150 MB at 1M records (docs/performance.md). Use it
        from one thread, inside the ``with``; then ``sync_items_after(last)`` gives what was stored since.
        """
        try:
            with self._readers.reading() as conn:
                last = int(conn.execute("SELECT coalesce(max(rowid), 0) FROM records").fetchone()[0])
                rows = conn.execute("SELECT created_ms, id FROM records ORDER BY created_ms, id")
                yield last, iter(rows)
        finally:
            release_free_memory()

    def raws_by_ids(self, ids: Iterable[bytes]) -> list[bytes]:
        """The stored raws among ``ids``, sorted by (created_ms, id); unknown ids are skipped."""
        rows: list[tuple[int, bytes, bytes]] = []
        with self._readers.reading() as conn:
            for chunk in _chunks(list(set(ids))):
                rows += conn.execute(f"SELECT created_ms, id, raw FROM records WHERE id IN "
                                     f"({','.join('?' * len(chunk))})", chunk).fetchall()
        return [bytes(raw) for _, _, raw in sorted(rows)]

    def iter_raws(self, after: tuple[int, bytes] | None, limit: int) -> list[tuple[int, bytes, bytes]]:
        """Up to ``limit`` (created_ms, id, raw) strictly after ``after`` in (created_ms, id) order."""
        start = after if after is not None else (-1, b"")
        with self._readers.reading() as conn:
            return conn.execute("SELECT created_ms, id, raw FROM records WHERE (created_ms, id) > (?, ?) "
                                "ORDER BY created_ms, id LIMIT ?", (*start, max(0, limit))).fetchall()

    def count(self) -> int:
        with self._readers.reading() as conn:
            return int(conn.execute("SELECT coalesce(sum(n), 0) FROM kind_counts").fetchone()[0])

    def counts(self) -> dict[str, int]:
        return self._read(queries.counts)

    def membership(self) -> Membership | None:
        return self._read(queries.get_membership)

    def member_peer_urls(self) -> list[str]:
        """Peer URLs named in current members' current profiles."""
        return self._read(queries.member_peer_urls)

    def member_peer_url_hubs(self) -> dict[str, bytes]:
        """Peer URL -> the one member whose current profile names it (hub.queries.member_peer_url_hubs)."""
        return self._read(queries.member_peer_url_hubs)

    def is_member(self, hub: bytes) -> bool:
        with self._readers.reading() as conn:
            return conn.execute("SELECT 1 FROM members WHERE hub = ?", (hub,)).fetchone() is not None

    def status(self, hub_id: str, now_ms: int) -> dict[str, Any]:
        """Raises:
        ProtocolError: ``hub_id`` is not a valid hub id.
        """
        out = self._read(queries.status, parse_hub_id(hub_id), now_ms)
        if out["association_id"] is None and self.expected_association is not None:
            out["association_id"] = self.expected_association.hex()
        return out

    def search(self, query: DirectoryQuery, now_ms: int) -> tuple[list[dict[str, Any]], int]:
        """A directory page. A text search first waits (at most hub.search_index.SEARCH_WAIT_S) for the
        full-text index to hold what was stored before it began.

        Raises:
            ValueError: an unknown kind.
        """
        if query.q.strip():
            self.wait_indexed()
        return self._read(queries.search, query, now_ms, self._search_cache)

    def wait_indexed(self, timeout_s: float | None = None) -> bool:
        """Wait until the full-text index holds every listing committed so far; True if it does in time."""
        queued = self._read(lambda conn: conn.execute("SELECT coalesce(max(seq), 0) FROM fts_queue").fetchone()[0])
        return self._indexer.wait_for(queued) if timeout_s is None else self._indexer.wait_for(queued, timeout_s)

    def hub_view(self, hub: bytes, now_ms: int) -> dict[str, Any] | None:
        return self._read(queries.hub_view, hub, now_ms, self._search_cache.marks)

    def guide_view(self, guide_id: bytes) -> dict[str, Any] | None:
        return self._read(queries.guide_view, guide_id)

    def offer_view(self, offer_id: bytes, now_ms: int) -> dict[str, Any] | None:
        return self._read(queries.offer_view, offer_id, now_ms)

    def marks_view(self, hub: bytes, now_ms: int) -> list[dict[str, Any]]:
        return self._read(queries.marks_view, hub, now_ms, self._search_cache.marks)

    def mark_check(self, hub: bytes, scheme: str, now_ms: int) -> dict[str, Any]:
        return self._read(queries.mark_check, hub, scheme, now_ms, self._search_cache.marks)

    def refused_summary(self) -> list[dict[str, Any]]:
        """Refusal counters per (source, reason), bounded (hub.refusals)."""
        return self._read(refusals.summary)

    def refused_examples(self) -> list[dict[str, Any]]:
        """The last ``limits.refused_examples`` refusals, newest first."""
        return self._read(refusals.examples)

    # --- mutual aid (hub.aid_queries) -----------------------------------------------------------------------

    def credit_account(self, hub: bytes, now_ms: int) -> dict[str, Any] | None:
        """A hub's time-credit balance, limit, flag and history; None for a hub this hub does not know."""
        return self._read(aid_queries.credit_account, hub, now_ms, self.limits.credit_settle_ms)

    def credit_accounts(self, now_ms: int) -> dict[str, Any]:
        return self._read(aid_queries.credit_accounts, now_ms)

    def unbooked_payments(self, payee: bytes, limit: int) -> list[bytes]:
        """Ids of time-credit payments to ``payee`` that no receipt of its books yet, oldest first."""
        with self._readers.reading() as conn:
            rows = conn.execute("SELECT id FROM credit_payments INDEXED BY credit_pending WHERE payee = ? AND "
                                "receipt IS NULL ORDER BY created_ms, id LIMIT ?", (payee, limit)).fetchall()
        return [bytes(r[0]) for r in rows]

    def fund_list(self, now_ms: int) -> list[dict[str, Any]]:
        return self._read(aid_queries.fund_list, now_ms)

    def fund_view(self, fund_id: bytes, now_ms: int) -> dict[str, Any] | None:
        return self._read(aid_queries.fund_view, fund_id, now_ms)

    # --- meta, peers and blobs --------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        with self._readers.reading() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self._writer.call(_set_meta, key, value)

    def list_peers(self) -> list[dict[str, Any]]:
        """Every saved peer: its stored data plus "url"."""
        with self._readers.reading() as conn:
            rows = conn.execute("SELECT url, data FROM peers ORDER BY url").fetchall()
        return [{**json.loads(data), "url": url} for url, data in rows]

    def upsert_peer(self, url: str, data: dict[str, Any]) -> None:
        """Save a peer's data (JSON-serialisable), replacing what was saved for ``url``.

        Raises:
            TypeError: ``data`` is not JSON-serialisable.
        """
        self._writer.call(_upsert_peer, url, json.dumps(data, sort_keys=True), int(time.time() * 1000))

    def upsert_peers(self, rows: Iterable[tuple[str, dict[str, Any]]]) -> None:
        """Save several peers' data (url, data) in one transaction: federation saves its whole peer table
        after every anti-entropy round, and one COMMIT per peer cost a hub of 30 peers 29 more each time.

        Raises:
            TypeError: some ``data`` is not JSON-serialisable (nothing is saved).
        """
        encoded = [(url, json.dumps(data, sort_keys=True)) for url, data in rows]
        if encoded:
            self._writer.call(_upsert_peers, encoded, int(time.time() * 1000))

    def delete_peer(self, url: str) -> bool:
        """Forget a saved peer (an operator's ``peers remove``); True when there was one."""
        return bool(self._writer.call(_delete_peer, url))

    def put_blob(self, data: bytes, expected: bytes | None = None) -> bytes:
        """Store a blob; returns its SHA-256. ``expected``: the hash it must have (a blob fetched by hash).

        Raises:
            TooLargeError: over ``limits.max_blob_bytes``.
            ValueError: ``expected`` is given and is not the data's hash.
            OSError: the disk failed.
        """
        return self.blobs.put(data, expected)

    def attachment(self, digest: bytes) -> dict[str, Any] | None:
        """The attachment of a stored guide with this hash, and the guide's author (queries.attachment)."""
        return self._read(queries.attachment, digest)

    def get_blob(self, digest: bytes) -> bytes | None:
        """A blob's bytes, re-verified; None if absent or corrupt (logged)."""
        return self.blobs.get(digest)


class Timings:
    """A thread-safe latency histogram in the Prometheus convention (cumulative buckets, sum, count), kept by
    the store itself so that it needs no metrics library; hub.metrics exposes it."""

    #: Upper bounds in seconds: a single record commits in a few ms, a batch of 500 in a fraction of a second.
    BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts = [0] * (len(self.BUCKETS) + 1)  # the last one is +Inf
        self.sum = 0.0
        self.records = 0

    def observe(self, seconds: float, records: int) -> None:
        with self._lock:
            index = next((i for i, bound in enumerate(self.BUCKETS) if seconds <= bound), len(self.BUCKETS))
            self.counts[index] += 1
            self.sum += seconds
            self.records += records

    def snapshot(self) -> tuple[list[tuple[float, int]], float, int, int]:
        """(cumulative (upper bound, count) pairs ending with +Inf, sum of seconds, calls, records)."""
        with self._lock:
            total, out = 0, []
            for bound, n in zip((*self.BUCKETS, float("inf")), self.counts, strict=True):
                total += n
                out.append((bound, total))
            return out, self.sum, total, self.records


def _chunks(ids: list[bytes]) -> Iterable[list[bytes]]:
    for start in range(0, len(ids), _IN_CHUNK):
        yield ids[start:start + _IN_CHUNK]


def _prune_fts_queue(conn: sqlite3.Connection, mark: int) -> None:
    conn.execute("DELETE FROM fts_queue WHERE seq <= ?", (mark,))


def _set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))


def _delete_peer(conn: sqlite3.Connection, url: str) -> int:
    return conn.execute("DELETE FROM peers WHERE url = ?", (url,)).rowcount


def _upsert_peer(conn: sqlite3.Connection, url: str, data: str, now_ms: int) -> None:
    conn.execute("INSERT OR REPLACE INTO peers VALUES (?, ?, ?)", (url, data, now_ms))


def _upsert_peers(conn: sqlite3.Connection, rows: list[tuple[str, str]], now_ms: int) -> None:
    conn.executemany("INSERT OR REPLACE INTO peers VALUES (?, ?, ?)", [(url, data, now_ms) for url, data in rows])
