"""The directory's full-text index, filled after the acknowledging COMMIT (docs/performance.md, issue 13 P1).

Tokenising a 1 KB guide into FTS5 was half of the writer's time per record, inside the transaction whose COMMIT
acknowledges the record. Since schema 7 the writer only queues each listing and unlisting (``fts_queue`` in
hub.sqlite3, one small row: hub/derive.py) and an :class:`Indexer` thread applies the queue, in order, to
``directory_fts`` in a file of its own, ``HOME/hub-search.sqlite3`` (:func:`search_path`). A second file has its
own write lock, so the indexer's transactions run beside the writer's, on the other core when there is one.

Restart-safe: the last queue position applied (``fts_state.seq``) is written in the same transaction as the
index rows, so after a crash between an acknowledgement and its indexing the indexer resumes from its mark on
the next start. The index is derived from the records alone (:func:`hub.derive.fts_fields`): a search file that
is missing, new, ahead of its database (a database restored from an older copy) or behind what the queue still
holds (a search file copied before entries were indexed and pruned) is rebuilt from the directory, in batches,
while the hub serves; text search answers from what is indexed meanwhile. A search file this module creates
takes the database's mode (0600), not the umask's.

What a search sees: :meth:`Indexer.wait_for` lets a text search wait (at most ``SEARCH_WAIT_S``) until the
index holds everything queued when the search began, so a record is searchable as soon as its publisher is
told it is stored, unless the indexer is more than that behind (a burst on one core); then the search answers
from the index as it is, at most a batch or two behind.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

from .db import connect, transaction
from .derive import fts_fields, record_from_raw

__all__ = ["BATCH", "SEARCH_SCHEMA", "SEARCH_WAIT_S", "Indexer", "index_step", "open_search", "search_path"]

log = logging.getLogger(__name__)

#: Queue entries (or directory rows, when rebuilding) applied per indexer transaction. FTS5 holds a
#: transaction's terms in memory until COMMIT (~6 KiB a 1 KB guide), so this bounds the indexer's heap too.
BATCH = 500
#: How long a text search waits for the index to catch up with what was queued when it began.
SEARCH_WAIT_S = 2.0
#: The indexer looks at the queue this often when not woken (records written by another process).
POLL_S = 1.0
#: How long closing a store keeps indexing what is queued (the rest is indexed on the next start).
DRAIN_S = 10.0
#: Applied queue entries are deleted (by the store's writer: a transaction, an fsync) once this many have
#: accumulated, or when the indexer is idle and the last pruning is this old: not after every published record.
PRUNE_EVERY = 10_000
PRUNE_IDLE_S = 60.0
#: The schema of the full-text index's own file; ``fts_state`` holds the indexer's marks (seq, and rebuild while
#: copying the directory into a new index).
SEARCH_SCHEMA = """
CREATE VIRTUAL TABLE IF NOT EXISTS directory_fts USING fts5(
    title, summary, body, extra, regions, tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE TABLE IF NOT EXISTS fts_state (k TEXT PRIMARY KEY, v INTEGER NOT NULL) WITHOUT ROWID;
"""
_INSERT = "INSERT OR REPLACE INTO directory_fts (rowid, title, summary, body, extra, regions) VALUES (?, ?, ?, ?, ?, ?)"


def search_path(db_path: Path) -> Path:
    """The full-text index's file beside a hub's database: ``hub.sqlite3`` → ``hub-search.sqlite3``."""
    db_path = Path(db_path)
    return db_path.with_name(f"{db_path.stem}-search{db_path.suffix}")


def _create_private(path: Path, db_path: Path) -> None:
    """Create a missing search file with the database's mode (0600 as `coophub init` makes it), as SQLite gives
    the -wal and -shm files; otherwise a search file rebuilt later (``check --repair``, a file removed by hand)
    would take the process umask (0644) in a home that is 0600 throughout (docs/operations.md)."""
    try:
        mode = stat.S_IMODE(db_path.stat().st_mode) & 0o666
    except FileNotFoundError:
        mode = 0o600
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))  # an empty file opens as a new db


def open_search(db_path: Path) -> sqlite3.Connection:
    """A write connection to the search file (created with its schema if missing) with the hub's database
    attached as ``hub`` (read from only).

    ``synchronous = NORMAL``: a power cut may lose the last index transactions, but never tears one (WAL), and
    the mark commits with the rows, so the lost ones are re-indexed from the queue on start.

    Raises:
        sqlite3.Error: a file cannot be opened.
    """
    _create_private(search_path(db_path), Path(db_path))
    conn = connect(search_path(db_path))
    try:
        conn.execute("PRAGMA synchronous = NORMAL")
        with transaction(conn):
            for statement in SEARCH_SCHEMA.split(";\n"):
                if statement.strip():
                    conn.execute(statement)
        conn.execute("ATTACH DATABASE ? AS hub", (str(db_path),))
        conn.execute("PRAGMA hub.cache_size = -512")  # it reads a batch's queue rows and records once: 512 KiB
    except sqlite3.Error:
        conn.close()
        raise
    return conn


def _state(conn: sqlite3.Connection) -> dict[str, int]:
    return {k: v for k, v in conn.execute("SELECT k, v FROM main.fts_state")}


def _pruned_past(conn: sqlite3.Connection, state: dict[str, int], queued: int) -> bool:
    """Whether queue entries after this index's mark were pruned: the queue's seq has no gaps (AUTOINCREMENT;
    only entries up to an index's mark are deleted), so a first entry beyond mark + 1, or an empty queue short
    of its end, means the index missed them (a search file copied at an older moment than hub.sqlite3)."""
    if "rebuild" in state or state["seq"] >= queued:
        return False
    first = conn.execute("SELECT min(seq) FROM hub.fts_queue").fetchone()[0]
    return first is None or int(first) > state["seq"] + 1


def index_step(conn: sqlite3.Connection, batch: int = BATCH) -> tuple[int, int]:
    """One indexer transaction on a connection from :func:`open_search`: (entries applied, mark after it).
    0 entries: the index holds everything queued.

    A new (or reset) index first records the queue's end, then copies every directory entry in rowid order,
    ``batch`` at a time; queue entries after the recorded end are applied after that, so an entry listed or
    unlisted while rebuilding ends right (a listing is written with REPLACE, so one copied and queued too is
    written twice, not duplicated).
    """
    with transaction(conn):
        state = _state(conn)
        queued = conn.execute("SELECT coalesce((SELECT seq FROM hub.sqlite_sequence WHERE name = 'fts_queue'), 0)"
                              ).fetchone()[0]
        if "seq" not in state or state["seq"] > queued or _pruned_past(conn, state, queued):
            # No index yet, one ahead of this database (restored from an older copy), or one behind what the
            # queue still holds (a search file older than its database): start again.
            conn.execute("DELETE FROM main.directory_fts")
            conn.execute("INSERT OR REPLACE INTO main.fts_state VALUES ('seq', ?), ('rebuild', 0)", (queued,))
            return 1, queued
        if "rebuild" in state:
            rows = conn.execute("SELECT d.rid, r.raw, r.id FROM hub.directory d JOIN hub.records r ON r.rowid = d.rid "
                                "WHERE d.rid > ? ORDER BY d.rid LIMIT ?", (state["rebuild"], batch)).fetchall()
            conn.executemany(_INSERT, [(rid, *fts_fields(record_from_raw(raw, record_id)))
                                       for rid, raw, record_id in rows])
            if len(rows) < batch:
                conn.execute("DELETE FROM main.fts_state WHERE k = 'rebuild'")
            else:
                conn.execute("UPDATE main.fts_state SET v = ? WHERE k = 'rebuild'", (rows[-1][0],))
            return max(1, len(rows)), state["seq"]
        seq = state["seq"]
        ops = conn.execute("SELECT q.seq, q.rid, q.op, r.raw, r.id FROM hub.fts_queue q "
                           "LEFT JOIN hub.records r ON r.rowid = q.rid AND q.op = 1 "
                           "WHERE q.seq > ? ORDER BY q.seq LIMIT ?", (seq, batch)).fetchall()
        if not ops:
            return 0, seq
        for _, rid, op, raw, record_id in ops:
            if op and raw is not None:
                conn.execute(_INSERT, (rid, *fts_fields(record_from_raw(raw, record_id))))
            else:
                conn.execute("DELETE FROM main.directory_fts WHERE rowid = ?", (rid,))
        seq = ops[-1][0]
        conn.execute("UPDATE main.fts_state SET v = ? WHERE k = 'seq'", (seq,))
        return len(ops), seq


class Indexer:
    """The indexer thread of one Store. :meth:`notify` after a write wakes it; it also polls every ``POLL_S``.

    Raises (constructor):
        sqlite3.Error: the search file cannot be opened or created.
    """

    def __init__(self, db_path: Path, prune: Callable[[int], None] | None = None) -> None:
        self._conn = open_search(db_path)
        self._prune = prune  # prune(mark): delete queue entries up to mark (they are in the index)
        self._pruned = 0
        self._pruned_at = time.monotonic()
        self._cond = threading.Condition()
        self._wake = threading.Event()
        self._closed = False
        self._caught_up = False
        self.indexed = -1  # the mark after the last transaction; -1 until the first
        self.errors = 0
        # One step now, before the store takes writes: a new (or reset) index records the queue's end here, so
        # everything stored from now on is after it and a search waits for it (wait_for), not only the copy.
        try:
            self._step()
        except sqlite3.Error as exc:  # the thread retries
            log.warning("full-text indexing failed at start, retrying: %s", exc)
        self._thread = threading.Thread(target=self._run, name="coophub-indexer", daemon=True)
        self._thread.start()

    def notify(self) -> None:
        """Something was queued: index it now."""
        self._wake.set()

    def _step(self) -> int:
        applied, mark = index_step(self._conn)
        if applied >= BATCH:
            from .store import release_free_memory  # hub.store imports this module

            release_free_memory()  # FTS5's pending terms, freed at COMMIT, back to the OS
        with self._cond:
            self.indexed = mark
            self._caught_up = applied == 0
            self._cond.notify_all()
        return applied

    def _run(self) -> None:
        while not self._closed:
            self._wake.clear()
            try:
                busy = self._step() > 0
            except sqlite3.Error as exc:  # a locked or full disk: log, wait, try again; the queue keeps it
                self.errors += 1
                log.warning("full-text indexing failed, retrying: %s", exc)
                busy = False
            if self._prune is not None and self.indexed > self._pruned and (
                    self.indexed - self._pruned >= PRUNE_EVERY
                    or (not busy and time.monotonic() - self._pruned_at >= PRUNE_IDLE_S)):
                self._pruned, self._pruned_at = self.indexed, time.monotonic()
                try:
                    self._prune(self.indexed)
                except Exception:  # the store is closing; the next start prunes
                    log.debug("pruning the full-text queue failed", exc_info=True)
            if not busy:
                self._wake.wait(POLL_S)
        deadline = time.monotonic() + DRAIN_S
        with contextlib.suppress(sqlite3.Error):
            while time.monotonic() < deadline and self._step() > 0:
                pass
        with self._cond:
            self._cond.notify_all()
        self._conn.close()

    def wait_for(self, queued: int, timeout_s: float = SEARCH_WAIT_S) -> bool:
        """Wait until the index holds queue position ``queued`` (or the timeout); True if it does."""
        with self._cond:
            return self._cond.wait_for(lambda: self._closed or self.indexed >= queued, timeout_s) and \
                self.indexed >= queued

    def close(self) -> None:
        """Index what is queued (for at most ``DRAIN_S``), then stop the thread and close its connection."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        self._thread.join()
