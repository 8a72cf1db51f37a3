"""`coophub check` and `coophub check --repair`: is the database what its records say it is?

:func:`check` reads the database and changes nothing:

    integrity    PRAGMA integrity_check (pages, indexes against their tables)
    records      every stored record decoded again with protocol.decode_record (canonical encoding, schema,
                 signature, time bounds, under this hub's limits), its id the SHA-256 of its bytes, and the
                 columns ingest wrote beside it (kind, author, created_ms, ref) matching the record
    eligibility  the author of every stored record (but the charter) in protocol.storage.eligible_authors of
                 what is stored: a database written under an older rule may hold records today's hubs would
                 not store
    derived      every derived table (:data:`DERIVED`) recomputed from the records alone — replayed in their
                 stored order through hub.derive, exactly as ingest applied them, into a scratch database —
                 and compared row for row with what is stored
    index        the full-text index (its own file, hub/search_index.py) first brought up to date with its
                 queue as a running hub's indexer would, then checked against its content (FTS5
                 'integrity-check') and the content against one rebuilt from the recomputed directory

:func:`repair` rebuilds, in one write transaction, everything derived: it takes out records that fail the
record checks (they should never have been stored, and peers would refuse them from us), writes the other
records back in their order with their columns recomputed, replays them through hub.derive, rebuilds the
full-text index's file from the directory and refills the eligible set. What is not derived
(:data:`NOT_DERIVED`: the deferred and quarantined records, peers, refusal counters, meta) is kept. Both
decode every record once, as an import does: bench/check_bench.py measured check at 1,400 and repair at
1,800 records/s (20,000 records, 2 shared cores), so about 12 and 9 minutes per million records.
"""

from __future__ import annotations

import hashlib
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from protocol import Limits, ProtocolError, Record, decode_record, eligible_authors

from . import derive, held
from .db import connect, open_database, transaction
from .derive import record_from_raw
from .ingest import _ref_column
from .search_index import index_step, open_search, search_path

__all__ = ["DERIVED", "NOT_DERIVED", "CheckReport", "Finding", "TableResult", "check", "repair"]

#: Tables recomputed from the records (hub.derive, hub.governance, hub.held's eligible set, ingest's counts).
DERIVED = (
    "kind_counts", "members", "profiles", "guides", "offers", "pledges", "attestations", "directory",
    "directory_region", "directory_counts", "eligible", "proposals", "ballots", "amendments", "reviewed_guides",
    "credit_payments", "credit_accounts",
)
#: Tables that hold what the records cannot give back. A new migration's tables go in one list or the other
#: (tests/hub/test_check.py fails on a table in neither).
NOT_DERIVED = ("records", "meta", "peers", "refused", "refused_examples", "deferred", "quarantine", "migrations",
               "fts_queue")  # fts_queue: work for the full-text indexer, emptied as it is applied
_FTS = "directory_fts"
_FTS_COLUMNS = "rowid, title, summary, body, extra, regions"
_PAGE = 1000
#: A progress callback: (stage, done, total).
Progress = Callable[[str, int, int], None]
_MAX_FINDINGS = 1000  # the report keeps the first ones; the counts are always complete


@dataclass(frozen=True)
class Finding:
    """One problem: ``area`` is integrity, record, eligibility, derived or index."""

    area: str
    what: str
    detail: str


@dataclass(frozen=True)
class TableResult:
    table: str
    stored: int
    recomputed: int
    missing: int  # rows the records imply that are not stored
    extra: int  # stored rows the records do not imply

    @property
    def ok(self) -> bool:
        return self.missing == 0 and self.extra == 0 and self.stored == self.recomputed


@dataclass
class CheckReport:
    records: int = 0
    invalid: int = 0
    ineligible: int = 0
    integrity: list[str] = field(default_factory=list)
    index_ok: bool = True
    tables: list[TableResult] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # repair: ids of records taken out
    stopped: list[str] = field(default_factory=list)  # stages a damaged file stopped part way

    @property
    def ok(self) -> bool:
        """No problem found. Records of authors no longer eligible are a warning, not a problem: they were
        stored under an older rule, are valid, and a repair would not change them."""
        return not self.integrity and not self.invalid and self.index_ok and all(t.ok for t in self.tables)

    def add(self, finding: Finding) -> None:
        if len(self.findings) < _MAX_FINDINGS:
            self.findings.append(finding)


def _quiet(stage: str, done: int, total: int) -> None:
    """No progress shown."""


# -- reading records -----------------------------------------------------------------------------------------


_Row = tuple[int, bytes, str, bytes, int, bytes | None, int, bytes]  # rowid, id, kind, author, created, ref, rcvd, raw


def _rows(conn: sqlite3.Connection, table: str = "main.records") -> Iterator[_Row]:
    """Every record of ``table`` in rowid order (the order ingest stored them), a page at a time."""
    after = -1
    while True:
        page: list[_Row] = conn.execute(
            f"SELECT rowid, id, kind, author, created_ms, ref, received_ms, raw FROM {table} "
            "WHERE rowid > ? ORDER BY rowid LIMIT ?", (after, _PAGE)).fetchall()
        yield from page
        if len(page) < _PAGE:
            return
        after = page[-1][0]


def _verify(row: _Row, limits: Limits, now_ms: int, association: bytes | None) -> tuple[Record | None, str | None]:
    """The record, or None and why it fails the checks every incoming record passes."""
    _rowid, record_id, kind, author, created_ms, ref, _received, raw = row
    if hashlib.sha256(raw).digest() != record_id:
        return None, "its id is not the SHA-256 of its bytes"
    try:
        record = decode_record(raw, now_ms=max(now_ms, created_ms), limits=limits)
    except ProtocolError as exc:
        return None, f"{type(exc).__name__}: {exc}"
    columns = (record.kind, record.author, record.created_ms, _ref_column(record))
    if columns != (kind, author, created_ms, ref):
        return None, "the columns stored beside it (kind, author, created_ms, ref) do not match the record"
    if record.kind != "charter" and association is not None and record.association != association:
        return None, f"it names association {record.association.hex()}, not this hub's charter"
    return record, None


def _charter_and_eligible(conn: sqlite3.Connection) -> tuple[Record | None, frozenset[bytes]]:
    charter = derive.load_charter(conn)
    if charter is None:
        return None, frozenset()
    endorsements = derive.load_records(conn, "SELECT raw, id FROM records WHERE kind IN ('endorsement', 'proposal')")
    return charter, eligible_authors(charter, endorsements)


# -- replaying -------------------------------------------------------------------------------------------------


def _replay(conn: sqlite3.Connection, rows: Iterator[tuple[_Row, Record]], total: int, progress: Progress) -> None:
    """Insert ``rows`` into an empty ``records`` with their rowids and apply each through hub.derive, as
    hub.ingest._insert did when they arrived; then the counts and the eligible set. Inside the caller's
    transaction."""
    with derive.membership_deferred(conn):  # once at the end, as ingest does per batch (same final state)
        _insert_all(conn, rows, total, progress)
    conn.execute("INSERT INTO kind_counts SELECT kind, count(*) FROM records GROUP BY kind")
    held.rebuild_eligible(conn)
    progress("recomputing", total, total)


def _insert_all(conn: sqlite3.Connection, rows: Iterator[tuple[_Row, Record]], total: int,
                progress: Progress) -> None:
    done = 0
    for row, record in rows:
        conn.execute("INSERT INTO records (rowid, id, kind, author, created_ms, ref, received_ms, raw) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                     (row[0], record.id, record.kind, record.author, record.created_ms, _ref_column(record),
                      row[6], record.raw))
        derive.apply(conn, record, row[0])
        done += 1
        if done % _PAGE == 0:
            progress("recomputing", done, total)


def _parsed(rows: Iterator[_Row]) -> Iterator[tuple[_Row, Record]]:
    for row in rows:
        try:
            yield row, record_from_raw(row[7], row[1])
        except Exception:  # noqa: BLE001 -- bytes that are not even an envelope: reported by the record check
            continue


# -- comparing -------------------------------------------------------------------------------------------------


def _compare(conn: sqlite3.Connection, table: str, columns: str = "*", stored_in: str = "main",
             fresh_in: str = "fresh") -> TableResult:
    """Stored (main) against recomputed (fresh), as sets of rows both ways, and their counts."""
    a, b = f"{stored_in}.{table}", f"{fresh_in}.{table}"
    stored = conn.execute(f"SELECT count(*) FROM {a}").fetchone()[0]
    recomputed = conn.execute(f"SELECT count(*) FROM {b}").fetchone()[0]
    missing = conn.execute(f"SELECT count(*) FROM (SELECT {columns} FROM {b} EXCEPT "
                           f"SELECT {columns} FROM {a})").fetchone()[0]
    extra = conn.execute(f"SELECT count(*) FROM (SELECT {columns} FROM {a} EXCEPT "
                         f"SELECT {columns} FROM {b})").fetchone()[0]
    return TableResult(table, stored, recomputed, missing, extra)


def _association_meta(conn: sqlite3.Connection) -> TableResult:
    sql = "SELECT value FROM {}.meta WHERE key = 'association_id'"
    a = conn.execute(sql.format("main")).fetchone()
    b = conn.execute(sql.format("fresh")).fetchone()
    return TableResult("meta.association_id", int(a is not None), int(b is not None), int(b is not None and a != b),
                       int(a is not None and a != b))


def _index_all(db_path: Path) -> None:
    """Apply the full-text queue of ``db_path`` to its index file (creating or rebuilding it as needed)."""
    conn = open_search(db_path)
    try:
        for _ in range(1 << 40):  # bounded by the queue and the directory: each step applies at least one entry
            if index_step(conn)[0] == 0:
                break
    finally:
        conn.close()


def _fts_consistent(path: Path) -> str | None:
    """None if the full-text index matches its content, else SQLite's message. The index is first brought up
    to date with its queue; the check is written as an INSERT, so it runs in a transaction that is rolled
    back."""
    try:
        _index_all(path)
        conn = connect(search_path(path))
        try:
            conn.execute("BEGIN")
            try:
                conn.execute(f"INSERT INTO {_FTS}({_FTS}) VALUES ('integrity-check')")
            finally:
                conn.execute("ROLLBACK")
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    return None


def _reset_search(db_path: Path) -> None:
    """Remove the full-text index's file (it is rebuilt from the directory) and build it again."""
    base = search_path(db_path)
    for file in (base, base.with_name(base.name + "-wal"), base.with_name(base.name + "-shm")):
        file.unlink(missing_ok=True)
    _index_all(db_path)


# -- the two commands ------------------------------------------------------------------------------------------


def check(db_path: Path, *, limits: Limits, now_ms: int, progress: Progress = _quiet) -> CheckReport:
    """Check the database at ``db_path`` as the module docstring says; changes nothing.

    Raises:
        hub.db.DatabaseUnusable: the file cannot be opened as a coophub database.
        sqlite3.Error: reading failed (a damaged file may fail part way; integrity_check says where).
    """
    report = CheckReport()
    open_database(db_path)[0].close()  # refuses an empty or foreign file; brings an old one to the schema
    conn = connect(db_path, readonly=True)
    try:
        _stage(report, "integrity", lambda: _integrity(conn, report, progress))
        _stage(report, "records", lambda: _check_records(conn, report, limits, now_ms, progress))
    finally:
        conn.close()
    fts = _fts_consistent(db_path)
    if fts is not None:
        report.index_ok = False
        report.add(Finding("index", _FTS, f"the full-text index does not match its content: {fts}"))
    _stage(report, "derived", lambda: _check_derived(db_path, report, progress))
    return report


def _integrity(conn: sqlite3.Connection, report: CheckReport, progress: Progress) -> None:
    progress("integrity", 0, 1)
    problems = [r for (r,) in conn.execute("PRAGMA integrity_check(100)") if r != "ok"]
    report.integrity += problems
    for line in problems:
        report.add(Finding("integrity", "database file", line))
    progress("integrity", 1, 1)


def _stage(report: CheckReport, name: str, run: Callable[[], None]) -> None:
    """Run one stage; a damaged file that stops it part way is a finding, and the other stages still run."""
    try:
        run()
    except sqlite3.DatabaseError as exc:
        report.stopped.append(name)
        report.integrity.append(f"{name}: stopped reading: {exc}")
        report.add(Finding("integrity", name, f"stopped reading: {exc}"))


def _check_records(conn: sqlite3.Connection, report: CheckReport, limits: Limits, now_ms: int,
                   progress: Progress) -> None:
    total = conn.execute("SELECT count(*) FROM records").fetchone()[0]
    charter, eligible = _charter_and_eligible(conn)
    association = charter.id if charter is not None else None
    for row in _rows(conn):
        report.records += 1
        record, problem = _verify(row, limits, now_ms, association)
        if problem is not None:
            report.invalid += 1
            report.add(Finding("record", row[1].hex(), problem))
        elif record is not None and record.kind != "charter" and record.author not in eligible:
            report.ineligible += 1
            report.add(Finding("eligibility", row[1].hex(), f"a {record.kind} by {record.author_id}, who is not "
                               "eligible under today's storage rule (docs/protocol.md §2.3)"))
        if report.records % _PAGE == 0:
            progress("records", report.records, total)
    progress("records", report.records, total)


def _check_derived(db_path: Path, report: CheckReport, progress: Progress) -> None:
    with tempfile.TemporaryDirectory(prefix=".check-", dir=db_path.parent) as scratch:
        fresh_path = Path(scratch) / "fresh.sqlite3"
        conn = open_database(fresh_path)[0]
        try:
            conn.execute("ATTACH DATABASE ? AS stored", (str(db_path),))  # only read from
            total = conn.execute("SELECT count(*) FROM stored.records").fetchone()[0]
            with transaction(conn):
                _replay(conn, _parsed(_rows(conn, "stored.records")), total, progress)
            conn.execute("DETACH DATABASE stored")
        finally:
            conn.close()
        _index_all(fresh_path)  # the full-text index the recomputed directory implies
        conn = connect(db_path, readonly=True)
        try:
            conn.execute("ATTACH DATABASE ? AS fresh", (str(fresh_path),))
            for table in DERIVED:
                report.tables.append(_compare(conn, table))
            conn.execute("ATTACH DATABASE ? AS search", (str(search_path(db_path)),))
            conn.execute("ATTACH DATABASE ? AS freshsearch", (str(search_path(fresh_path)),))
            report.tables.append(_compare(conn, _FTS, _FTS_COLUMNS, "search", "freshsearch"))
            conn.execute("DETACH DATABASE search")
            conn.execute("DETACH DATABASE freshsearch")
            report.tables.append(_association_meta(conn))
            conn.execute("DETACH DATABASE fresh")
        finally:
            conn.close()
    for result in report.tables:
        if not result.ok:
            report.add(Finding("derived", result.table, f"{result.stored} rows stored, {result.recomputed} "
                               f"recomputed from the records: {result.missing} missing, {result.extra} not implied"))


def repair(db_path: Path, *, limits: Limits, now_ms: int, progress: Progress = _quiet) -> CheckReport:
    """Rebuild everything derived from the records, taking out records that fail the record checks; one write
    transaction, so a crash part way changes nothing. Returns what it found and removed.

    Raises:
        hub.db.DatabaseUnusable: the file cannot be opened as a coophub database.
        sqlite3.Error: the database failed; nothing was changed.
    """
    report = CheckReport()
    conn = open_database(db_path)[0]
    try:
        with transaction(conn):
            # rid INTEGER PRIMARY KEY: the copy keeps each record's rowid, which the directory's rows reuse.
            conn.execute("CREATE TEMP TABLE old_records (rid INTEGER PRIMARY KEY, id BLOB, kind TEXT, author BLOB, "
                         "created_ms INTEGER, ref BLOB, received_ms INTEGER, raw BLOB)")
            conn.execute("INSERT INTO temp.old_records SELECT rowid, id, kind, author, created_ms, ref, received_ms, "
                         "raw FROM main.records")
            charter = conn.execute("SELECT raw FROM records WHERE kind = 'charter' LIMIT 1").fetchone()
            association = hashlib.sha256(charter[0]).digest() if charter else None
            total = conn.execute("SELECT count(*) FROM temp.old_records").fetchone()[0]
            conn.execute("DELETE FROM main.records")
            for table in DERIVED:
                conn.execute(f"DELETE FROM main.{table}")
            conn.execute("DELETE FROM main.meta WHERE key = 'association_id'")
            conn.execute("DELETE FROM main.fts_queue")  # the index is rebuilt from the directory below
            kept = _verified(conn, report, limits, now_ms, association)
            _replay(conn, kept, total, progress)
            conn.execute("DROP TABLE temp.old_records")
    finally:
        conn.close()
    _reset_search(db_path)  # a damaged index cannot be trusted to delete its rows: rebuild it whole
    return report


def _verified(conn: sqlite3.Connection, report: CheckReport, limits: Limits, now_ms: int,
              association: bytes | None) -> Iterator[tuple[_Row, Record]]:
    """The copied records that pass the record checks, in order; the others are counted and named."""
    for row in _rows(conn, "temp.old_records"):
        report.records += 1
        record, problem = _verify(row, limits, now_ms, association)
        if record is None:
            report.invalid += 1
            report.removed.append(row[1].hex())
            report.add(Finding("record", row[1].hex(), f"removed: {problem}"))
        else:
            yield row, record


