"""Two processes, and many threads, writing one SQLite file at once: no lost writes, no corruption.

The processes start together on a multiprocessing Event and ingest in small calls, so their write transactions
interleave; each overlaps the other on some records, which must end up stored once. Nothing here measures
time.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
import threading
from pathlib import Path
from typing import Any

from hub.queries import DirectoryQuery
from hub.search_index import search_path
from hub.store import Store

from .factory import Association, raws

_CTX = multiprocessing.get_context("spawn")  # no fork of a process that already runs threads


def _worker(path: str, chunks: list[list[bytes]], now_ms: int, start: Any, out: Any) -> None:
    start.wait(30)
    statuses: list[str] = []
    with Store(Path(path)) as store:
        for chunk in chunks:
            statuses += [r.status for r in store.ingest(chunk, now_ms=now_ms, source="proc")]
    out.put(statuses)


def _records(n_per_side: int) -> tuple[Association, list[bytes], list[bytes], list[bytes]]:
    a = Association.create(founders=4)
    f = a.founders
    common = [a.profile(k, f"Co-op {i}") for i, k in enumerate(f)]
    left = [a.guide(f[i % 2], f"Left guide {i}", tags=["left"]) for i in range(n_per_side)]
    right = [a.guide(f[2 + i % 2], f"Right guide {i}", tags=["right"]) for i in range(n_per_side)]
    return a, raws(common), raws(left), raws(right)


def _integrity(path: Path) -> tuple[str, int, int]:
    conn = sqlite3.connect(path)
    try:
        check = conn.execute("PRAGMA integrity_check").fetchone()[0]
        conn.execute("ATTACH DATABASE ? AS search", (str(search_path(path)),))  # the full-text index's file
        fts = conn.execute("SELECT count(*) FROM search.directory_fts").fetchone()[0]
        directory = conn.execute("SELECT count(*) FROM directory").fetchone()[0]
        return check, fts, directory
    finally:
        conn.close()


def test_two_processes_ingesting_one_file(tmp_path: Path) -> None:
    a, common, left, right = _records(150)
    path = tmp_path / "hub.sqlite3"
    with Store(path) as store:
        assert store.ingest([a.charter.raw], now_ms=a.now)[0].status == "accepted"
    chunked = lambda rs: [rs[i:i + 10] for i in range(0, len(rs), 10)]  # noqa: E731
    start, out = _CTX.Event(), _CTX.Queue()
    procs = [_CTX.Process(target=_worker, args=(str(path), chunked(common + side), a.now, start, out))
             for side in (left, right)]
    for p in procs:
        p.start()
    start.set()
    statuses = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    # Every record was accepted by exactly one process, or seen as a duplicate by the other.
    combined = statuses[0][:len(common)] + statuses[1][:len(common)]
    assert sorted(combined) == ["accepted"] * len(common) + ["duplicate"] * len(common)
    assert statuses[0][len(common):] == ["accepted"] * len(left)
    assert statuses[1][len(common):] == ["accepted"] * len(right)
    with Store(path) as store:
        assert store.count() == 1 + len(common) + len(left) + len(right)
        assert a.charter.id in {r for _, r in store.sync_items()}
        counts = store.counts()
        assert counts["guide"] == len(left) + len(right) and counts["profile"] == len(common)
        _, total = store.search(DirectoryQuery(q="guide"), a.now)
        assert total == len(left) + len(right)
    listed = len(common) + len(left) + len(right)
    assert _integrity(path) == ("ok", listed, listed)


def test_threads_ingesting_and_reading_at_once(tmp_path: Path) -> None:
    a, common, left, right = _records(60)
    errors: list[BaseException] = []
    with Store(tmp_path / "hub.sqlite3") as store:
        store.ingest([a.charter.raw] + common, now_ms=a.now)
        barrier = threading.Barrier(4)

        def write(batch: list[bytes]) -> None:
            barrier.wait()
            try:
                for i in range(0, len(batch), 5):
                    assert {r.status for r in store.ingest(batch[i:i + 5], now_ms=a.now)} <= {"accepted",
                                                                                              "duplicate"}
            except BaseException as exc:  # collected: an assert in a thread would otherwise vanish
                errors.append(exc)

        def read() -> None:
            barrier.wait()
            try:
                for _ in range(30):
                    store.search(DirectoryQuery(q="guide"), a.now)
                    store.sync_items()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(b,)) for b in (left, right, left + right)]
        threads.append(threading.Thread(target=read))
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert store.count() == 1 + len(common) + len(left) + len(right)
        assert store.counts()["guide"] == len(left) + len(right)


async def test_concurrent_ingest_async(tmp_path: Path) -> None:
    a, common, left, right = _records(40)
    with Store(tmp_path / "hub.sqlite3") as store:
        await store.ingest_async([a.charter.raw] + common, now_ms=a.now)
        results = await asyncio.gather(*(store.ingest_async([raw], now_ms=a.now) for raw in left + right),
                                       store.read(store.count))
        assert all(r[0].status == "accepted" for r in results[:-1])
        assert store.count() == 1 + len(common) + len(left) + len(right)
