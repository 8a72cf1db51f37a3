"""SQLite connections, schema and migrations, the single writer thread and the read-connection pool.

Durability (PRODUCT.md §5): WAL mode with ``synchronous=FULL``, so a transaction that returned from COMMIT
survives a power cut; that is the moment a record is acknowledged. Several processes may open one database
(the CLI publishing while ``serve`` runs): every write is ``BEGIN IMMEDIATE … COMMIT`` and a busy timeout
makes a second writer wait for the first instead of failing (datasette's one-writer pattern, per process).

SQL lives in ``hub/`` storage modules only (STYLE.md "One writer").
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["BUSY_TIMEOUT_MS", "MIGRATIONS", "DatabaseUnusable", "ReadPool", "Writer", "connect", "migrate",
           "open_database", "transaction"]

log = logging.getLogger(__name__)
T = TypeVar("T")

# How long a writer waits for another process's write transaction before giving up. A batch of 500 records
# commits in well under a second; 30 s covers a slow disk and a large import in another process.
BUSY_TIMEOUT_MS = 30_000

# Each migration is (version, name, SQL script). Never edit a released one: add the next version.
MIGRATIONS: list[tuple[int, str, str]] = [
    (1, "records, derived state, directory, meta", """
CREATE TABLE records (
    id BLOB NOT NULL UNIQUE,        -- SHA-256 of raw
    kind TEXT NOT NULL,
    author BLOB NOT NULL,
    created_ms INTEGER NOT NULL,
    ref BLOB,                       -- the record or hub the body points at (offer, target, subject…)
    received_ms INTEGER NOT NULL,
    raw BLOB NOT NULL               -- canonical bytes, exactly as signed
);
CREATE INDEX records_sync ON records(created_ms, id);
CREATE INDEX records_kind_author ON records(kind, author);
CREATE INDEX records_ref ON records(ref, kind);
CREATE TABLE kind_counts (kind TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE peers (url TEXT PRIMARY KEY, data TEXT NOT NULL, updated_ms INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE refused (
    source TEXT NOT NULL, reason TEXT NOT NULL, count INTEGER NOT NULL,
    last_detail TEXT, last_at INTEGER NOT NULL, PRIMARY KEY (source, reason)
) WITHOUT ROWID;
CREATE TABLE members (hub BLOB PRIMARY KEY, founder INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE profiles (
    hub BLOB PRIMARY KEY, id BLOB NOT NULL, created_ms INTEGER NOT NULL, name TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE guides (
    id BLOB PRIMARY KEY, author BLOB NOT NULL, created_ms INTEGER NOT NULL, supersedes BLOB,
    superseded INTEGER NOT NULL DEFAULT 0, revoked INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX guides_author ON guides(author);
CREATE TABLE offers (
    id BLOB PRIMARY KEY, author BLOB NOT NULL, created_ms INTEGER NOT NULL, deadline INTEGER NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0,
    close_id BLOB, close_created_ms INTEGER, close_outcome TEXT  -- the earliest close by the offer's author
) WITHOUT ROWID;
CREATE INDEX offers_author ON offers(author);
CREATE INDEX offers_open ON offers(deadline) WHERE close_id IS NULL AND revoked = 0;
CREATE TABLE pledges (                -- the newest pledge per (offer, hub) created by the offer's deadline
    offer BLOB NOT NULL, hub BLOB NOT NULL, id BLOB NOT NULL, created_ms INTEGER NOT NULL,
    quantity INTEGER NOT NULL, PRIMARY KEY (offer, hub)
) WITHOUT ROWID;
CREATE TABLE attestations (
    id BLOB PRIMARY KEY, author BLOB NOT NULL, subject BLOB NOT NULL, scheme TEXT NOT NULL,
    created_ms INTEGER NOT NULL, valid_from INTEGER NOT NULL, valid_until INTEGER NOT NULL,
    authorised INTEGER NOT NULL,
    revoked_ms INTEGER               -- creation time of the earliest revocation by its author
) WITHOUT ROWID;
CREATE INDEX attestations_subject ON attestations(subject, scheme, created_ms);
-- Covers the mark filter (hubs holding a valid mark of a scheme now) without reading the table.
CREATE INDEX attestations_valid ON attestations(scheme, valid_until, valid_from, revoked_ms, subject)
    WHERE authorised = 1;
-- One row per listed directory entry (a hub's current profile, a current guide, a non-revoked offer);
-- rid is the rowid of the entry's record in records and of its row in directory_fts.
CREATE TABLE directory (
    rid INTEGER PRIMARY KEY, kind TEXT NOT NULL, key BLOB NOT NULL, author BLOB NOT NULL,
    title TEXT NOT NULL, summary TEXT NOT NULL, regions TEXT NOT NULL, services TEXT NOT NULL,
    match TEXT NOT NULL,            -- lowercased service names and categories (or tags), one per line
    created_ms INTEGER NOT NULL, member INTEGER NOT NULL
);
CREATE INDEX directory_author ON directory(author);
CREATE INDEX directory_kind_created ON directory(kind, created_ms);
CREATE INDEX directory_created ON directory(created_ms);
CREATE TABLE directory_region (region TEXT NOT NULL, rid INTEGER NOT NULL, PRIMARY KEY (region, rid))
    WITHOUT ROWID;
CREATE INDEX directory_region_rid ON directory_region(rid);
CREATE TABLE directory_counts (kind TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
CREATE VIRTUAL TABLE directory_fts USING fts5(
    title, summary, body, extra, regions, tokenize = 'porter unicode61 remove_diacritics 2'
);
"""),
    # Measured at 1M records (docs/performance.md, bench/hub_bench.py): SQLite 3.40 still reads the table to
    # test a partial index's own WHERE terms unless their columns are in the index, so counting open offers
    # took 180 ms and the mark filter 40 ms; with the columns added both read the index only (4 and 6 ms).
    # A hub's page lists and counts the hub's current guides and offers newest first: indexes in that order
    # let it stop after the page instead of joining and sorting all of them (55 ms -> 2 ms for 4,000 guides).
    (2, "covering indexes for open offers, the mark filter and a hub's page", """
DROP INDEX attestations_valid;
CREATE INDEX attestations_valid ON attestations(scheme, valid_until, valid_from, revoked_ms, subject, authorised)
    WHERE authorised = 1;
DROP INDEX offers_open;
CREATE INDEX offers_open ON offers(deadline, close_id, revoked) WHERE close_id IS NULL AND revoked = 0;
DROP INDEX guides_author;
CREATE INDEX guides_author ON guides(author, superseded, revoked, created_ms);
DROP INDEX offers_author;
CREATE INDEX offers_author ON offers(author, revoked, created_ms);
"""),
    # The storage rule (docs/protocol.md §2.3, hub/ingest.py). ``eligible`` is the monotone set of authors
    # whose records are stored, kept incrementally (filled from the stored records by hub.ingest after this
    # migration on an existing hub). ``deferred`` holds verified records that wait for one thing — a record id,
    # an author, or a time — under caps (Limits.max_deferred_*); ``seq`` orders eviction, oldest first.
    # ``quarantine`` holds applicants' own profiles, newest per author, never in ``records`` or sync.
    # ``refused_examples`` is the ring of the last refusals; ``refused`` keeps its counters (sources capped).
    (3, "storage rule: eligible authors, deferred records, quarantine, refusal examples", """
CREATE TABLE eligible (hub BLOB PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE deferred (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id BLOB NOT NULL UNIQUE,
    raw BLOB NOT NULL,
    size INTEGER NOT NULL,          -- length(raw), for the byte cap
    source TEXT NOT NULL,
    origin BLOB,                    -- the authenticated hub it came from, if any (ingest's origin)
    reason TEXT NOT NULL,           -- missing-reference | not-a-member | future
    detail TEXT NOT NULL,
    wait_id BLOB,                   -- missing-reference: the record id it needs
    wait_author BLOB,               -- not-a-member: the author that must become eligible
    wait_ms INTEGER,                -- future: retry once now_ms >= wait_ms
    created_ms INTEGER NOT NULL,
    received_ms INTEGER NOT NULL
);
CREATE INDEX deferred_wait_id ON deferred(wait_id) WHERE wait_id IS NOT NULL;
CREATE INDEX deferred_wait_author ON deferred(wait_author) WHERE wait_author IS NOT NULL;
CREATE INDEX deferred_wait_ms ON deferred(wait_ms) WHERE wait_ms IS NOT NULL;
CREATE INDEX deferred_source ON deferred(source, seq);
CREATE TABLE quarantine (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    author BLOB NOT NULL UNIQUE,
    id BLOB NOT NULL UNIQUE,
    raw BLOB NOT NULL,
    size INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    origin BLOB NOT NULL,
    source TEXT NOT NULL,
    received_ms INTEGER NOT NULL
);
CREATE TABLE refused_examples (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id BLOB, source TEXT NOT NULL, reason TEXT NOT NULL, detail TEXT NOT NULL, at_ms INTEGER NOT NULL
);
"""),
    # Governance (docs/protocol.md §6.9–§6.11, hub/governance.py). New tables only, so that other branches'
    # migrations of the round-1 tables merge cleanly.
    (4, "proposals, newest ballots, amendments in force, reviewed guides", """
CREATE TABLE proposals (
    id BLOB PRIMARY KEY, author BLOB NOT NULL, created_ms INTEGER NOT NULL, closes INTEGER NOT NULL,
    amendment INTEGER NOT NULL,      -- 1 if it carries a charter amendment
    close_id BLOB, close_created_ms INTEGER  -- the earliest close by its author at or after the closing time
) WITHOUT ROWID;
CREATE INDEX proposals_closes ON proposals(closes);
-- Each hub's newest ballot per proposal among those that can count (an option of the proposal, created from
-- the proposal's creation to before its closing time): a live tally reads one ballot per voter, not every
-- ballot ever cast (as pledges does for offers). Whether its author is a voter is decided when it is read.
CREATE TABLE ballots (
    proposal BLOB NOT NULL, hub BLOB NOT NULL, id BLOB NOT NULL, created_ms INTEGER NOT NULL,
    PRIMARY KEY (proposal, hub)
) WITHOUT ROWID;
CREATE TABLE amendments (             -- protocol.adopted_amendments, recomputed when it may change
    proposal BLOB PRIMARY KEY, effective_ms INTEGER NOT NULL,
    changes BLOB NOT NULL             -- the proposal's amendment map, msgpack
) WITHOUT ROWID;
CREATE TABLE reviewed_guides (        -- guide versions association-reviewed now, with their approvals
    guide BLOB PRIMARY KEY, approvals INTEGER NOT NULL
) WITHOUT ROWID;
"""),
    # Mutual aid (docs/protocol.md §6.6): every time-credit payment with its booking and its place in the ledger,
    # and each hub's position after the whole ledger. Kept by hub.derive as receipts arrive; a late booking
    # replays only the ledger after it. Funds are computed when read (a fund has tens of records, not millions).
    (5, "time-credit ledger", """
CREATE TABLE credit_payments (
    id BLOB PRIMARY KEY,            -- the credit-payment record
    payer BLOB NOT NULL,
    payee BLOB NOT NULL,
    minutes INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    receipt BLOB,                   -- the payee's earliest receipt: it books the payment (NULL: pending)
    booked_ms INTEGER,              -- max(payment created_ms, receipt created_ms)
    status TEXT NOT NULL,           -- pending | stands | over-limit | unfunded (protocol.credit)
    limit_minutes INTEGER,          -- the credit limit in force at booked_ms
    payer_balance INTEGER           -- the payer's balance after it, in the ledger
) WITHOUT ROWID;
CREATE INDEX credit_payer ON credit_payments(payer, created_ms);
CREATE INDEX credit_payee ON credit_payments(payee, created_ms);
CREATE INDEX credit_pending ON credit_payments(payee, receipt);
CREATE INDEX credit_ledger ON credit_payments(booked_ms, id) WHERE booked_ms IS NOT NULL;
CREATE TABLE credit_accounts (
    hub BLOB PRIMARY KEY,
    balance INTEGER NOT NULL,       -- minutes, standing payments only
    unstood_in INTEGER NOT NULL,    -- minutes of booked payments to it that do not stand
    over_limit INTEGER NOT NULL     -- how many of its own payments are over-limit (flagged when > 0)
) WITHOUT ROWID;
"""),
    # The directory's service filter tests a substring of each hub's and offer's service names (``match``); this
    # index holds that column by kind, so the test reads the index instead of every wide directory row: 10-30x
    # faster at 100k records, and the slowest request of issue 13's mix at 1M (p99 284 ms).
    (6, "covering index for the directory's service filter", """
CREATE INDEX directory_kind_match ON directory(kind, match);
"""),
    # The full-text index leaves the acknowledging transaction (issue 13 P1: half of the writer's time) for its
    # own file, filled by an indexer thread from this queue of listings (op 1) and unlistings (op 0), in order,
    # with its high-water mark committed beside the index (hub/search_index.py); a crash between an ack and its
    # indexing re-indexes on start. An upgraded hub rebuilds the index from its directory in the background.
    (7, "full-text index out of the acknowledging transaction: a queue for the indexer", """
DROP TABLE directory_fts;
CREATE TABLE fts_queue (seq INTEGER PRIMARY KEY AUTOINCREMENT, rid INTEGER NOT NULL, op INTEGER NOT NULL);
"""),
    # The times at which a hub's marks can change, read from the index alone (hub.pagedata.MarksCache).
    (8, "attestation times by subject", """
CREATE INDEX attestations_times ON attestations(subject, valid_from, valid_until, revoked_ms);
"""),
]



class DatabaseUnusable(sqlite3.DatabaseError):
    """The file is not a coophub database it is safe to open: empty, not SQLite, another program's, damaged.
    The message is one line that says what to do (the CLI prints it as it is)."""


_SQLITE_MAGIC = b"SQLite format 3\x00"
_FIX = "restore it from a backup or a peer (`coophub restore`, docs/operations.md) or move it aside"


def open_database(path: Path | str) -> tuple[sqlite3.Connection, list[int]]:
    """Open (or create, when no file is there) a hub's database and bring it to the current schema; returns the
    connection (the caller's to close) and the migrations applied.

    A file that exists must be a database this program made: a zero-length file (a truncated copy, a full disk
    at creation) would otherwise open as a new, empty hub without a word, and another program's database would
    be migrated under it. Damage deeper in the file is found by ``coophub check`` (PRAGMA integrity_check).

    Raises:
        DatabaseUnusable: empty, not SQLite, not coophub's, or damaged where opening reads it.
        sqlite3.Error: a migration failed.
    """
    path = Path(path)
    _check_header(path)
    conn = connect(path)
    try:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables and "migrations" not in tables:
            raise DatabaseUnusable(f"{path} is an SQLite database but not a coophub one (no migrations table); "
                                   f"{_FIX}")
        applied = migrate(conn)
    except DatabaseUnusable:
        conn.close()
        raise
    except sqlite3.DatabaseError as exc:
        conn.close()
        if _damaged(exc):
            raise DatabaseUnusable(f"{path} is damaged ({exc}); {_FIX}") from None
        raise
    return conn, applied


def _check_header(path: Path) -> None:
    """Raises:
    DatabaseUnusable: the file exists and is empty or does not start with SQLite's header.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(len(_SQLITE_MAGIC))
    except FileNotFoundError:
        return  # a new hub: SQLite creates the file
    except OSError as exc:
        raise DatabaseUnusable(f"cannot read {path}: {exc.strerror}; check its permissions") from None
    if not head:
        raise DatabaseUnusable(f"{path} is empty (0 bytes), not a database; {_FIX}")
    if head != _SQLITE_MAGIC:
        raise DatabaseUnusable(f"{path} is not an SQLite database (it does not start with SQLite's header); {_FIX}")


def _damaged(exc: sqlite3.Error) -> bool:
    """SQLITE_CORRUPT or SQLITE_NOTADB (and their extended codes)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


def connect(path: Path | str, *, readonly: bool = False) -> sqlite3.Connection:
    """Open a connection with coophub's settings; autocommit mode, so transactions are explicit.

    Raises:
        sqlite3.Error: the file cannot be opened or is not a database.
    """
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                           check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if not readonly:
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        if readonly:
            conn.execute("PRAGMA query_only = ON")
    except sqlite3.Error:
        conn.close()
        raise
    return conn


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection, mode: str = "IMMEDIATE") -> Iterator[sqlite3.Connection]:
    """``BEGIN mode … COMMIT``, rolled back on any exception (sqlite-utils' ``atomic()`` in spirit)."""
    conn.execute(f"BEGIN {mode}")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def migrate(conn: sqlite3.Connection) -> list[int]:
    """Apply the migrations this database lacks, each in its own write transaction; return those applied.

    Safe when several processes open a new database at once: the version check runs inside BEGIN IMMEDIATE.

    Raises:
        sqlite3.Error: a migration failed (it is rolled back; the database stays at the previous version).
    """
    applied: list[int] = []
    for version, name, script in MIGRATIONS:
        with transaction(conn):
            conn.execute("CREATE TABLE IF NOT EXISTS migrations "
                         "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_ms INTEGER NOT NULL)")
            if conn.execute("SELECT 1 FROM migrations WHERE version = ?", (version,)).fetchone():
                continue
            # executescript would COMMIT our transaction; run the statements one by one instead.
            for statement in _statements(script):
                conn.execute(statement)
            conn.execute("INSERT INTO migrations VALUES (?, ?, ?)", (version, name, int(time.time() * 1000)))
            applied.append(version)
    return applied


def _statements(script: str) -> list[str]:
    out: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            out.append(current.strip())
            current = ""
    return [s for s in out if s]


#: Group commit (Writer): jobs already queued when one finishes join its transaction, up to this many records
#: (a job's ``write_weight``, 1 for most) or this long since BEGIN. One COMMIT — the WAL fsync and FTS5's flush of
#: the pending terms into a segment — then serves them all: a third of the writer's time per record went to
#: COMMIT with transactions of 500 records (docs/performance.md, issue 13). Every job's future still resolves
#: only after the COMMIT that made its writes durable.
GROUP_MAX_WEIGHT = 2_000
GROUP_MAX_S = 0.25


def _weight(args: tuple[Any, ...]) -> int:
    return max(1, int(getattr(args[0], "write_weight", 1))) if args else 1


class Writer:
    """The one write thread of a process: jobs run in order, each inside ``BEGIN IMMEDIATE … COMMIT``.

    A job is ``fn(conn, *args)``; its future resolves only after COMMIT returned, so a caller that sees the
    result knows the write is durable. Jobs queued behind one another share a transaction (group commit, up to
    :data:`GROUP_MAX_WEIGHT` / :data:`GROUP_MAX_S`), each inside its own savepoint: a job that raises is rolled
    back alone and the others commit. If the database aborts the whole transaction, every job of the group that
    had not failed is rerun alone, so one failure never fails a job that would have succeeded by itself.
    """

    def __init__(self, path: Path | str) -> None:
        self._conn = connect(path)
        self._queue: queue.SimpleQueue[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]] | None] = (
            queue.SimpleQueue())
        self._thread = threading.Thread(target=self._run, name="coophub-writer", daemon=True)
        self._closed = False
        #: Transactions committed and jobs run, for tests and benchmarks (group commit's effect).
        self.commits = 0
        self.jobs = 0
        self._thread.start()

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Queue ``fn(conn, *args)``; its future holds the result after COMMIT or the error after ROLLBACK.

        Raises:
            RuntimeError: the writer is closed.
        """
        if self._closed:
            raise RuntimeError("the store is closed")
        future: Future[T] = Future()
        self._queue.put((future, fn, args))
        return future

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` in the writer's transaction and wait for it.

        Raises:
            Exception: whatever ``fn`` raised, or sqlite3.Error from BEGIN/COMMIT.
        """
        return self.submit(fn, *args).result()

    def _run(self) -> None:
        job = self._queue.get()
        while job is not None:
            job = self._group(job)
        self._conn.close()

    def _group(self, first: tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]) -> Any:
        """Run ``first`` and the jobs queued behind it in one transaction; return the next job not run
        (None: the writer was closed, or nothing is queued and the caller should wait)."""
        conn = self._conn
        done: list[tuple[Future[Any], Callable[..., Any], tuple[Any, ...], bool, Any]] = []
        job: Any = first
        weight, started = 0, time.monotonic()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except BaseException as exc:
            if first[0].set_running_or_notify_cancel():
                first[0].set_exception(exc)
            return self._queue.get()
        aborted: BaseException | None = None
        while job is not None:
            future, fn, args = job
            if future.set_running_or_notify_cancel():
                ok, value = self._savepointed(fn, args)
                if ok is None:  # the database rolled the whole transaction back
                    aborted = value
                    done.append((future, fn, args, False, value))
                    job = _EMPTY  # the jobs behind it wait for the next transaction
                    break
                done.append((future, fn, args, ok, value))
                weight += _weight(args)
            if weight >= GROUP_MAX_WEIGHT or time.monotonic() - started >= GROUP_MAX_S:
                job = self._next(block=False)
                break
            job = self._next(block=False)
            if job is _EMPTY:
                break
        else:
            job = None  # closed
        if aborted is None:
            try:
                conn.execute("COMMIT")
            except BaseException as exc:  # nothing of the group is durable
                self._rollback()
                for future, _, _, _, _ in done:
                    future.set_exception(exc)
                return self._after(job)
            self.commits += 1
            for future, _, _, ok, value in done:
                self.jobs += 1
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)
            return self._after(job)
        self._rollback()
        for future, fn, args, ok, value in done:
            if future is done[-1][0]:
                future.set_exception(value)  # the job the database failed on
            elif not ok:
                future.set_exception(value)  # it had failed (and been rolled back) anyway
            else:
                self._alone(future, fn, args)
        return self._after(job)

    def _after(self, job: Any) -> Any:
        return self._queue.get() if job is _EMPTY else job

    def _next(self, *, block: bool) -> Any:
        try:
            return self._queue.get(block=block)
        except queue.Empty:
            return _EMPTY

    def _savepointed(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[bool | None, Any]:
        """(True, result) or (False, exception) with the job's writes rolled back; (None, exception) when the
        database ended the transaction itself (a full disk, I/O error)."""
        conn = self._conn
        conn.execute("SAVEPOINT job")
        try:
            result = fn(conn, *args)
        except BaseException as exc:  # handed to the caller, who decides; the thread must survive
            if not conn.in_transaction:
                return None, exc
            try:
                conn.execute("ROLLBACK TO job")
                conn.execute("RELEASE job")
            except sqlite3.Error:
                return None, exc
            return False, exc
        conn.execute("RELEASE job")
        return True, result

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")

    def _alone(self, future: Future[Any], fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            with transaction(self._conn):
                result = fn(self._conn, *args)
        except BaseException as exc:
            future.set_exception(exc)
        else:
            self.commits += 1
            self.jobs += 1
            future.set_result(result)

    def close(self) -> None:
        """Finish queued jobs, then stop the thread and close its connection."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join()


_EMPTY = object()  # Writer._next: nothing queued


class ReadPool:
    """Read-only connections handed out one caller at a time, from any thread, and closed together."""

    def __init__(self, path: Path | str, *, attach: dict[str, Path] | None = None) -> None:
        self._path = path
        self._attach = dict(attach or {})  # schema name -> file, attached to every connection (read only)
        self._idle: list[sqlite3.Connection] = []
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    @contextlib.contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """A connection inside one read transaction, so that every query of a view sees one snapshot.

        Raises:
            RuntimeError: the pool is closed.
        """
        conn = self._acquire()
        try:
            with transaction(conn, "DEFERRED"):
                yield conn
        finally:
            self._release(conn)

    def _acquire(self) -> sqlite3.Connection:
        with self._lock:
            if self._closed:
                raise RuntimeError("the store is closed")
            if self._idle:
                return self._idle.pop()
        conn = connect(self._path, readonly=True)
        try:
            for name, file in self._attach.items():  # with 1 MiB of page cache each (the main file keeps 2)
                conn.execute(f"ATTACH DATABASE ? AS {name}", (str(file),))
                conn.execute(f"PRAGMA {name}.cache_size = -1024")
        except sqlite3.Error:
            conn.close()
            raise
        with self._lock:
            self._all.append(conn)
        return conn

    def _release(self, conn: sqlite3.Connection) -> None:
        with self._lock:
            if self._closed:
                conn.close()
            else:
                self._idle.append(conn)

    def close(self) -> None:
        """Close idle connections now; connections in use are closed when released."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
