"""hub/search_index.py over real SQLite files: the search file is private like the database beside it, and an
index behind what its queue still holds (a search file copied at an older moment) is rebuilt, not left short."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
from pathlib import Path

from hub.check import check, repair
from hub.search_index import index_step, open_search, search_path
from hub.store import Store
from protocol import DEFAULT_LIMITS

from .factory import raws, sample


def _files(search: Path) -> list[Path]:
    return [search, search.with_name(search.name + "-wal"), search.with_name(search.name + "-shm")]


def _matches(db: Path, word: str) -> int:
    """Bring the index up to date as the indexer would, then count the listings matching ``word``."""
    conn = open_search(db)
    try:
        while index_step(conn)[0]:
            pass
        return int(conn.execute("SELECT count(*) FROM directory_fts WHERE directory_fts MATCH ?",
                                (word,)).fetchone()[0])
    finally:
        conn.close()


def test_a_rebuilt_search_file_keeps_the_databases_private_mode(tmp_path: Path) -> None:
    """`coophub init` makes every file 0600; the search file is derived and may be rebuilt later — by repair,
    or by any Store after it was removed — and must not come back 0644 from the umask."""
    s = sample()
    path = tmp_path / "hub.sqlite3"
    old = os.umask(0o077)
    try:
        with Store(path) as store:
            store.ingest(raws(s.records), now_ms=s.a.now)
        os.umask(0o022)
        for rebuild in (lambda: repair(path, limits=DEFAULT_LIMITS, now_ms=s.a.now), lambda: Store(path).close()):
            for file in _files(search_path(path)):
                file.unlink(missing_ok=True)
            rebuild()
            assert stat.S_IMODE(search_path(path).stat().st_mode) == 0o600, oct(search_path(path).stat().st_mode)
    finally:
        os.umask(old)
    assert check(path, limits=DEFAULT_LIMITS, now_ms=s.a.now).ok


def test_a_search_file_older_than_its_pruned_queue_is_rebuilt(tmp_path: Path) -> None:
    """A search file copied (a snapshot) before records its database holds, whose queue entries were pruned
    once indexed: the index must not resume from its old mark and skip them for good."""
    s = sample()
    a = s.a
    path = tmp_path / "hub.sqlite3"
    with Store(path) as store:
        store.ingest(raws(s.records), now_ms=a.now)
    old_copy = tmp_path / "old-search.sqlite3"
    shutil.copy(search_path(path), old_copy)
    later = a.guide(a.founders[0], "Quokkawhistle rota")
    with Store(path) as store:
        assert store.ingest([later.raw], now_ms=a.now)[0].status == "accepted"
        assert store.wait_indexed(10)
    assert _matches(path, "quokkawhistle") == 1
    with sqlite3.connect(path) as conn:  # the indexer's pruning, done: every entry is in the index
        conn.execute("DELETE FROM fts_queue")
    for file in _files(search_path(path)):
        file.unlink(missing_ok=True)
    shutil.copy(old_copy, search_path(path))
    assert _matches(path, "quokkawhistle") == 1, "the old search file resumed and skipped the pruned entries"
    assert _matches(path, "rota") >= 1
    assert check(path, limits=DEFAULT_LIMITS, now_ms=a.now).ok
