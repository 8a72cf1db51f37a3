"""The decode pool (hub/decoding.py): records checked in worker processes give exactly the results of the
single-thread path — accepted records equal field for field, every refusal with the same reason and detail —
on random mixes of good and bad input; a broken pool falls back; one CPU means no pool."""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from hub import decoding, ingest
from hub.ingest import IngestResult
from hub.store import Store
from protocol import DEFAULT_LIMITS, Record

from .factory import DAY, Association


@pytest.fixture(scope="module")
def pool() -> Iterator[decoding.DecodePool]:
    p = decoding.DecodePool(2)
    yield p
    p.close()


def _mix(seed: int, n: int) -> tuple[list[Any], int]:
    """``n`` inputs: records of every common kind, and damaged ones of each way a record can be wrong."""
    rng = random.Random(seed)
    a = Association.create(founders=3, needed=2, seed=str(seed))
    good: list[Record] = [a.charter]
    offers: list[Record] = []
    for i in range(n):
        key = rng.choice(a.founders)
        roll = rng.random()
        if roll < 0.4:
            good.append(a.guide(key, f"Guide {i} {rng.random()}"))
        elif roll < 0.55 or not offers:
            offers.append(a.offer(key, f"Offer {i}", deadline=a.now + 30 * DAY))
            good.append(offers[-1])
        elif roll < 0.75:
            good.append(a.pledge(key, rng.choice(offers), rng.randrange(1, 50)))
        elif roll < 0.85:
            good.append(a.profile(key, f"Co-op {i}", regions=["Gwynedd"]))
        else:
            good.append(a.attest(rng.choice(a.founders)))
    out: list[Any] = []
    for record in good:
        raw: Any = record.raw
        roll = rng.random()
        if roll < 0.06:  # a signature that does not verify
            raw = raw[:-1] + bytes([raw[-1] ^ 1])
        elif roll < 0.10:  # a flipped byte anywhere: bad msgpack, non-canonical, schema or signature
            at = rng.randrange(len(raw))
            raw = raw[:at] + bytes([raw[at] ^ (1 << rng.randrange(8))]) + raw[at + 1:]
        elif roll < 0.12:
            raw = raw[: rng.randrange(len(raw))]  # truncated
        elif roll < 0.13:
            raw += b"\x00"  # trailing bytes
        elif roll < 0.14:
            raw = rng.randbytes(rng.randrange(200))
        elif roll < 0.15:
            raw = bytearray(raw)  # bytes-like input is accepted as bytes
        out.append(raw)
        if rng.random() < 0.02:
            out.append(raw)  # a repeat within the call
    now = a.now  # before the two below, which move the factory's clock
    out.append(a.guide(a.founders[0], "from the future", at=now + 10 * DAY).raw)  # dated far ahead: refused
    skew = DEFAULT_LIMITS.max_future_skew_ms
    out.append(a.guide(a.founders[0], "a little ahead", at=now + skew * 3 // 2).raw)  # held, not refused
    out.append(b"\xc1" * (DEFAULT_LIMITS.max_record_bytes + 1))  # over the size limit
    out.append("not bytes")  # a caller's bug: refused, never sent to a worker
    rng.shuffle(out)
    return out, now


def _decode_all(raws: list[Any], now_ms: int, *, use_pool: decoding.DecodePool | _Broken | None,
                monkeypatch: pytest.MonkeyPatch) -> tuple[list[Any], list[IngestResult | None]]:
    monkeypatch.setattr(decoding, "shared_pool", lambda: use_pool)
    monkeypatch.setattr(decoding, "POOL_MIN_RECORDS", 1)
    results: list[IngestResult | None] = [None] * len(raws)
    order = ingest._presort(raws, lambda ids: set(), results)
    size = 37  # several chunks, each split between the workers
    chunks = [order[i:i + size] for i in range(0, len(order), size)]
    return list(ingest._decoded(chunks, now_ms, DEFAULT_LIMITS, "a peer", results)), results


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_pool_decodes_exactly_as_the_single_thread_path(seed: int, pool: decoding.DecodePool,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    print(f"seed={seed}")
    raws, now = _mix(seed, 150)
    plain, plain_results = _decode_all(raws, now, use_pool=None, monkeypatch=monkeypatch)
    before = pool.submitted
    pooled, pooled_results = _decode_all(raws, now, use_pool=pool, monkeypatch=monkeypatch)
    assert pool.submitted - before >= 8  # every chunk went to the workers, in two parts
    assert pooled == plain  # records field for field (body maps included), refusals with their details
    assert pooled_results == plain_results
    refused = [r for r in plain_results if r is not None and r.status == "refused"]
    accepted = sum(len(pending) for pending, _ in plain)
    assert refused and accepted > 100  # the mix really has both
    assert {r.reason for r in refused} >= {"invalid", "too-large"}
    assert any(r.created_ms > now for pending, _ in plain for _, r in pending)  # the one a little ahead


def test_store_ingest_is_the_same_with_and_without_the_pool(tmp_path: Path, pool: decoding.DecodePool,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    raws, now = _mix(7, 300)
    print("seed=7")
    monkeypatch.setattr(decoding, "POOL_MIN_RECORDS", 1)
    outcomes = []
    before = pool.submitted
    for name, use in (("plain", None), ("pooled", pool)):
        monkeypatch.setattr(decoding, "shared_pool", lambda use=use: use)
        with Store(tmp_path / f"{name}.sqlite3") as store:
            results = store.ingest(raws, now_ms=now)
            outcomes.append((results, store.sync_items(), store.counts(), store.refused_summary()))
    plain, pooled = outcomes
    assert pool.submitted > before
    assert pooled[0] == plain[0]
    assert pooled[1] == plain[1] and len(plain[1]) > 200
    assert pooled[2] == plain[2]
    assert [(r["reason"], r["count"]) for r in pooled[3]] == [(r["reason"], r["count"]) for r in plain[3]]


class _Broken:
    """A pool whose workers have died (every future fails as a killed worker's does), or hang (no future
    is ever answered)."""

    workers = 2

    def __init__(self, hang: bool = False) -> None:
        self.submitted = self.resets = 0
        self.hang = hang

    def submit(self, raws: list[bytes], now_ms: int, limits: Any) -> Future[bytes]:
        self.submitted += 1
        future: Future[bytes] = Future()
        if not self.hang:
            future.set_exception(decoding.WorkerFailed("a worker died"))
        return future

    def reset(self) -> None:
        self.resets += 1


def test_a_broken_pool_falls_back_to_this_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    raws, now = _mix(4, 80)
    print("seed=4")
    plain, plain_results = _decode_all(raws, now, use_pool=None, monkeypatch=monkeypatch)
    broken = _Broken()
    got, got_results = _decode_all(raws, now, use_pool=broken, monkeypatch=monkeypatch)
    assert got == plain and got_results == plain_results
    assert broken.submitted >= 3


def test_workers_that_hang_are_given_up(monkeypatch: pytest.MonkeyPatch) -> None:
    raws, now = _mix(6, 70)
    print("seed=6")
    plain, plain_results = _decode_all(raws, now, use_pool=None, monkeypatch=monkeypatch)
    hung = _Broken(hang=True)
    monkeypatch.setattr(decoding, "ANSWER_TIMEOUT_S", 0.05)
    got, got_results = _decode_all(raws, now, use_pool=hung, monkeypatch=monkeypatch)
    assert got == plain and got_results == plain_results
    assert hung.resets >= 1


def test_a_real_worker_killed_mid_call_changes_no_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kill the workers of a real pool: the call still gives the single-thread results, and the next call
    starts a new pool."""
    raws, now = _mix(5, 120)
    print("seed=5")
    plain, plain_results = _decode_all(raws, now, use_pool=None, monkeypatch=monkeypatch)
    p = decoding.DecodePool(2, retry_after_s=0)
    try:
        warm = p.submit([b"x"], now, DEFAULT_LIMITS)
        assert warm is not None and warm.result() == b"\x00"
        pids = p.processes()
        assert len(pids) == 2
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        got, got_results = _decode_all(raws, now, use_pool=p, monkeypatch=monkeypatch)
        assert got == plain and got_results == plain_results
        again, _ = _decode_all(raws, now, use_pool=p, monkeypatch=monkeypatch)
        assert again == plain
        assert p.started >= 2
        p.reset()  # what a batch that never came back leads to
        assert not p.running()
        after = p.submit([b"x"], now, DEFAULT_LIMITS)
        assert after is not None and after.result() == b"\x00" and p.running()
    finally:
        p.close()
    assert p.submit([b"x"], now, DEFAULT_LIMITS) is None  # closed


def test_workers_back_off_after_failing_and_refuse_other_code(monkeypatch: pytest.MonkeyPatch) -> None:
    p = decoding.DecodePool(2, retry_after_s=60)
    monkeypatch.setattr(decoding, "_STAMP", "not this code")  # as if the code on disk changed meanwhile
    try:
        first = p.submit([b"x"], 0, DEFAULT_LIMITS)
        assert first is not None
        with pytest.raises(decoding.WorkerFailed):
            first.result(timeout=60)
        assert p.submit([b"x"], 0, DEFAULT_LIMITS) is None  # decode in the caller's thread for a while
        assert p.started == 1
    finally:
        p.close()


def test_one_cpu_means_no_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decoding, "usable_cpus", lambda: 1)
    assert decoding.shared_pool() is None
    monkeypatch.setattr(decoding, "usable_cpus", lambda: 8)
    monkeypatch.setattr(decoding, "_shared", None)  # a fresh process's: earlier tests may have used theirs
    shared = decoding.shared_pool()
    assert shared is not None and shared.workers == decoding.MAX_WORKERS
    assert not shared.running()  # started only when a large call needs it


def test_an_idle_pool_shuts_its_workers_down() -> None:
    p = decoding.DecodePool(2, idle_s=0.2)
    try:
        future = p.submit([b"x"], 0, DEFAULT_LIMITS)
        assert future is not None and future.result() == b"\x00"
        assert p.running()
        for _ in range(400):  # polled, not timed: the idle timer fires 0.2 s after the last task ended
            if not p.running():
                break
            time.sleep(0.05)
        assert not p.running()
        future = p.submit([b"x"], 0, DEFAULT_LIMITS)  # and starts again when needed
        assert future is not None and future.result() == b"\x00"
        assert p.started == 2
    finally:
        p.close()
