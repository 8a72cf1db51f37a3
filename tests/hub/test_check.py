"""hub.check over real SQLite files: a sound database passes every check; each kind of damage — to the file,
to a record, to derived state, to the search index — is found, and repair rebuilds what the records imply."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from hub.check import DERIVED, NOT_DERIVED, CheckReport, check, repair
from hub.db import DatabaseUnusable, connect
from hub.search_index import search_path
from hub.store import DirectoryQuery, Store
from protocol import DEFAULT_LIMITS

from .factory import Sample, hub_key, raws, sample


def _rich() -> Sample:
    """factory.sample, plus a booked time-credit payment, a revoked guide, a closed offer and a revoked
    endorsement: every derived table has rows."""
    s = sample()
    a = s.a
    f0, f1, f2 = a.founders
    s.add("pay", a.pay(f0, f1, 90))
    s.add("book", a.book(f1, s["pay"]))
    s.add("revoke_rota", a.revoke(f1, s["guide_rota"]))
    s.add("close", a.close(f1, s["offer"], [s["pledge0"], s["pledge2"]]))
    s.add("endorse2", a.endorse(f2, s.applicant))  # the applicant becomes a member (two endorsements)
    s.add("unendorse2", a.revoke(f2, s["endorse2"]))  # and stops being one
    return s


@pytest.fixture
def filled(tmp_path: Path) -> tuple[Path, Sample]:
    s = _rich()
    path = tmp_path / "hub.sqlite3"
    with Store(path) as store:
        results = store.ingest(raws(s.records), now_ms=s.a.now)
    assert {r.status for r in results} == {"accepted"}, results
    return path, s


def _check(path: Path, s: Sample) -> CheckReport:
    return check(path, limits=DEFAULT_LIMITS, now_ms=s.a.now)


def _sql(path: Path, *statements: str, params: tuple[object, ...] = ()) -> None:
    conn = connect(path)
    try:
        # The full-text index has its own file (hub/search_index.py); damage to it is done there.
        conn.execute("ATTACH DATABASE ? AS search", (str(search_path(path)),))
        for statement in statements:
            conn.execute(statement.replace("FROM directory_fts", "FROM search.directory_fts")
                         .replace("UPDATE directory_fts", "UPDATE search.directory_fts"), params)
    finally:
        conn.close()


def test_every_table_is_derived_or_not() -> None:
    """A new migration's table must be placed in hub.check's DERIVED or NOT_DERIVED."""
    conn = sqlite3.connect(":memory:")
    from hub.db import migrate

    migrate(conn)
    tables = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE "
                                         "'sqlite_%' AND name NOT LIKE 'directory_fts%'")}
    assert tables == set(DERIVED) | set(NOT_DERIVED), tables ^ (set(DERIVED) | set(NOT_DERIVED))
    assert not set(DERIVED) & set(NOT_DERIVED)


def test_a_sound_database_passes_and_every_derived_table_has_rows(filled: tuple[Path, Sample]) -> None:
    path, s = filled
    report = _check(path, s)
    assert report.ok and report.records == len(s.records) and not report.findings, report.findings
    empty = {t.table for t in report.tables if t.stored == 0}
    # nothing in the sample creates governance rows; every other table is exercised
    assert empty <= {"proposals", "ballots", "amendments", "reviewed_guides"}, empty


@pytest.mark.parametrize("damage", [
    "UPDATE directory SET title = 'Tampered' WHERE kind = 'hub'",
    "DELETE FROM members WHERE hub = (SELECT min(hub) FROM members)",
    "UPDATE offers SET close_id = NULL",
    "UPDATE credit_accounts SET balance = balance + 60",
    "DELETE FROM eligible",
    "UPDATE kind_counts SET n = n + 1",
    "DELETE FROM directory_fts WHERE rowid = (SELECT min(rid) FROM directory)",
    "UPDATE meta SET value = 'ab' WHERE key = 'association_id'",
])
def test_damaged_derived_state_is_found_and_repaired(filled: tuple[Path, Sample], damage: str) -> None:
    path, s = filled
    with Store(path) as store:
        before = store.search(DirectoryQuery(q="care"), s.a.now)
    assert before[1] > 0
    _sql(path, damage)
    report = _check(path, s)
    assert not report.ok and [f for f in report.findings if f.area == "derived"], report.findings
    fixed = repair(path, limits=DEFAULT_LIMITS, now_ms=s.a.now)
    assert fixed.removed == []
    assert _check(path, s).ok
    with Store(path) as store:
        assert store.search(DirectoryQuery(q="care"), s.a.now) == before


@pytest.mark.parametrize("damage", [
    # the index's own pages lose their leaves: searches would miss rows
    "DELETE FROM directory_fts_data WHERE id > 10",
    # the stored text changes under the index, which still holds the old words
    "UPDATE directory_fts_content SET c0 = 'unrelated words' WHERE id = (SELECT min(rid) FROM directory)",
])
def test_a_damaged_search_index_is_found_and_rebuilt(filled: tuple[Path, Sample], damage: str) -> None:
    path, s = filled
    with Store(path) as store:
        before = store.search(DirectoryQuery(q="care"), s.a.now)
    assert before[1] > 0
    _sql(path, damage)
    report = _check(path, s)
    assert not report.index_ok and not report.ok
    repair(path, limits=DEFAULT_LIMITS, now_ms=s.a.now)
    assert _check(path, s).ok
    with Store(path) as store:
        assert store.search(DirectoryQuery(q="care"), s.a.now) == before


def test_a_record_that_fails_verification_is_found_and_removed(filled: tuple[Path, Sample]) -> None:
    path, s = filled
    guide = s["guide_rota"]
    raw = bytearray(guide.raw)
    raw[-1] ^= 0x01  # the signature's last byte; the id is made to match, so only the signature is wrong
    forged = bytes(raw)
    _sql(path, "UPDATE records SET raw = ?, id = ? WHERE id = ?",
         params=(forged, hashlib.sha256(forged).digest(), guide.id))
    report = _check(path, s)
    assert report.invalid == 1 and "SignatureError" in report.findings[0].detail, report.findings
    fixed = repair(path, limits=DEFAULT_LIMITS, now_ms=s.a.now)
    assert fixed.removed == [hashlib.sha256(forged).hexdigest()]
    after = _check(path, s)
    assert after.ok and after.records == len(s.records) - 1


def test_columns_that_disagree_with_the_record_are_found(filled: tuple[Path, Sample]) -> None:
    path, s = filled
    _sql(path, "UPDATE records SET created_ms = created_ms + 1 WHERE id = ?", params=(s["offer"].id,))
    report = _check(path, s)
    assert report.invalid == 1 and "columns" in report.findings[0].detail


def test_records_of_authors_no_longer_eligible_are_reported(filled: tuple[Path, Sample]) -> None:
    """An old database stored a record under a looser rule: valid, signed, but by an author nobody endorsed."""
    path, s = filled
    stranger = hub_key("stranger")
    record = s.a.guide(stranger, "From before the storage rule")
    conn = connect(path)
    try:
        conn.execute("INSERT INTO records (id, kind, author, created_ms, ref, received_ms, raw) "
                     "VALUES (?, 'guide', ?, ?, NULL, ?, ?)",
                     (record.id, record.author, record.created_ms, s.a.now, record.raw))
    finally:
        conn.close()
    report = _check(path, s)
    assert report.ineligible == 1 and any(f.area == "eligibility" and f.what == record.id.hex()
                                          for f in report.findings)
    repair(path, limits=DEFAULT_LIMITS, now_ms=s.a.now)
    after = _check(path, s)
    assert after.ok and after.ineligible == 1  # a warning, kept: repair does not judge old records by new rules


def test_a_damaged_page_is_reported_by_integrity_check(filled: tuple[Path, Sample]) -> None:
    path, s = filled
    conn = connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'records_kind_author'").fetchone()[0]
    finally:
        conn.close()
    with open(path, "r+b") as f:
        f.seek((root - 1) * page_size + 8)
        f.write(b"\xff" * 64)  # an index page's cell pointers: the table itself still reads
    report = _check(path, s)
    assert report.integrity and not report.ok


def test_an_empty_file_is_refused_not_checked(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite3"
    path.write_bytes(b"")
    with pytest.raises(DatabaseUnusable, match="empty"):
        check(path, limits=DEFAULT_LIMITS, now_ms=0)
    assert path.stat().st_size == 0


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_any_arrival_order_checks_clean(tmp_path: Path, seed: int) -> None:
    """Records arriving one at a time in a shuffled order (many deferred, then stored when what they wait for
    lands) leave the derived state check recomputes: the replay follows the order they were stored in."""
    import random

    s = _rich()
    order = list(s.records)
    random.Random(seed).shuffle(order)
    print(f"seed {seed}")
    path = tmp_path / "hub.sqlite3"
    with Store(path) as store:
        for record in order:
            store.ingest([record.raw], now_ms=s.a.now)
        assert store.count() == len(s.records)
    report = _check(path, s)
    assert report.ok and not report.findings, report.findings
