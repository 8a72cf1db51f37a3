"""hub/db.py: connection settings, migrations, the writer thread and the read pool."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from hub.db import BUSY_TIMEOUT_MS, MIGRATIONS, ReadPool, Writer, connect, migrate


def test_connection_settings(tmp_path: Path) -> None:
    conn = connect(tmp_path / "x.sqlite3")
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == BUSY_TIMEOUT_MS
    finally:
        conn.close()


def test_migrations_are_recorded_and_applied_once(tmp_path: Path) -> None:
    conn = connect(tmp_path / "x.sqlite3")
    try:
        assert migrate(conn) == [v for v, _, _ in MIGRATIONS]
        assert migrate(conn) == []
        rows = conn.execute("SELECT version, name FROM migrations").fetchall()
        assert rows == [(v, n) for v, n, _ in MIGRATIONS]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"records", "directory", "fts_queue", "refused", "members"} <= tables
        assert "directory_fts" not in tables  # since schema 7 in its own file (hub/search_index.py)
    finally:
        conn.close()


def test_writer_commits_before_answering_and_rolls_back_on_error(tmp_path: Path) -> None:
    path = tmp_path / "x.sqlite3"
    setup = connect(path)
    setup.execute("CREATE TABLE t (x INTEGER)")
    setup.close()
    writer = Writer(path)
    reader = connect(path, readonly=True)
    try:
        assert writer.call(lambda c: c.execute("INSERT INTO t VALUES (1)").rowcount) == 1
        assert reader.execute("SELECT count(*) FROM t").fetchone()[0] == 1  # committed: visible elsewhere

        def half_then_fail(c: sqlite3.Connection) -> None:
            c.execute("INSERT INTO t VALUES (2)")
            raise KeyError("boom")

        with pytest.raises(KeyError):
            writer.call(half_then_fail)
        assert reader.execute("SELECT count(*) FROM t").fetchone()[0] == 1  # rolled back
        with pytest.raises(sqlite3.OperationalError):
            reader.execute("INSERT INTO t VALUES (3)")  # read connections are query-only
    finally:
        reader.close()
        writer.close()
    with pytest.raises(RuntimeError, match="closed"):
        writer.submit(lambda c: None)


def test_read_pool_reuses_and_closes(tmp_path: Path) -> None:
    path = tmp_path / "x.sqlite3"
    connect(path).close()
    pool = ReadPool(path)
    with pool.reading() as first:
        first.execute("SELECT 1")
    with pool.reading() as second:
        assert second is first
    pool.close()
    with pytest.raises(RuntimeError):
        with pool.reading():
            pass
    with pytest.raises(sqlite3.ProgrammingError):
        first.execute("SELECT 1")  # closed



def _queued_behind_a_slow_job(writer: Writer, jobs: list) -> list:
    """Submit ``jobs`` while the writer is inside a first job, so that they queue behind it; return futures."""
    import threading

    inside, release = threading.Event(), threading.Event()

    def slow(c: sqlite3.Connection) -> str:
        c.execute("INSERT INTO t VALUES (0)")
        inside.set()
        release.wait(10)
        return "first"

    futures = [writer.submit(slow)]
    assert inside.wait(10)
    futures += [writer.submit(job) for job in jobs]
    release.set()
    return futures


def test_queued_jobs_share_one_commit_and_a_failing_one_is_rolled_back_alone(tmp_path: Path) -> None:
    path = tmp_path / "x.sqlite3"
    setup = connect(path)
    setup.execute("CREATE TABLE t (x INTEGER)")
    setup.close()
    writer = Writer(path)
    try:
        def insert(x: int):
            return lambda c: c.execute("INSERT INTO t VALUES (?)", (x,)).rowcount

        def half_then_fail(c: sqlite3.Connection) -> None:
            c.execute("INSERT INTO t VALUES (99)")
            raise KeyError("boom")

        futures = _queued_behind_a_slow_job(writer, [insert(1), half_then_fail, insert(2)])
        assert [f.result() for f in (futures[0], futures[1], futures[3])] == ["first", 1, 1]
        with pytest.raises(KeyError):
            futures[2].result()
        assert (writer.commits, writer.jobs) == (1, 4)  # one transaction for the four
        reader = connect(path, readonly=True)
        assert sorted(x for (x,) in reader.execute("SELECT x FROM t")) == [0, 1, 2]  # 99 rolled back
        reader.close()
    finally:
        writer.close()


def test_when_the_database_ends_a_grouped_transaction_the_other_jobs_run_alone(tmp_path: Path) -> None:
    path = tmp_path / "x.sqlite3"
    setup = connect(path)
    setup.execute("CREATE TABLE t (x INTEGER)")
    setup.close()
    writer = Writer(path)
    try:
        def aborts(c: sqlite3.Connection) -> None:  # as a full disk would: the whole transaction is gone
            c.execute("INSERT INTO t VALUES (99)")
            c.execute("ROLLBACK")
            raise sqlite3.OperationalError("database or disk is full")

        futures = _queued_behind_a_slow_job(
            writer, [lambda c: c.execute("INSERT INTO t VALUES (1)").rowcount, aborts,
                     lambda c: c.execute("INSERT INTO t VALUES (2)").rowcount])
        assert futures[0].result() == "first" and futures[1].result() == 1 and futures[3].result() == 1
        with pytest.raises(sqlite3.OperationalError, match="full"):
            futures[2].result()
        reader = connect(path, readonly=True)
        assert sorted(x for (x,) in reader.execute("SELECT x FROM t")) == [0, 1, 2]  # rerun, then committed
        reader.close()
    finally:
        writer.close()
