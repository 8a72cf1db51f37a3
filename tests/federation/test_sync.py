"""federation/sync.py: sessions converge to exact have/need, are bounded, and idle exchanges are constant."""

from __future__ import annotations

import dataclasses
import hashlib
import random

import pytest

from federation.negentropy import Storage
from federation.sync import Done, Fetch, Offer, SendReconcile, SyncError, SyncResponder, SyncSession, exchange
from protocol.limits import DEFAULT_LIMITS

BASE = 1_767_225_600_000


def items(n: int, label: str = "s") -> list[tuple[int, bytes]]:
    return [(BASE + 1000 * i, hashlib.sha256(f"{label}:{i}".encode()).digest()) for i in range(n)]


def split(n: int, only_a: int, only_b: int, seed: int) -> tuple[list[tuple[int, bytes]], ...]:
    everything = items(n + only_a + only_b)
    random.Random(seed).shuffle(everything)
    common = everything[:n]
    a_only = everything[n:n + only_a]
    b_only = everything[n + only_a:]
    return common + a_only, common + b_only, a_only, b_only


@pytest.mark.parametrize(("n", "only_a", "only_b"),
                         [(0, 0, 5), (100, 3, 0), (5000, 40, 60), (20_000, 700, 900)])
def test_session_converges_to_exact_have_and_need(n: int, only_a: int, only_b: int) -> None:
    a, b, a_only, b_only = split(n, only_a, only_b, seed=n)
    session = SyncSession(Storage(a), DEFAULT_LIMITS)
    actions = exchange(session, SyncResponder(Storage(b), DEFAULT_LIMITS))
    done = actions[-1]
    assert isinstance(done, Done) and done.complete and done.reason == "ok"
    assert sorted(session.have) == sorted(i for _, i in a_only)
    assert sorted(session.need) == sorted(i for _, i in b_only)
    fetched = [i for act in actions if isinstance(act, Fetch) for i in act.record_ids]
    assert sorted(fetched) == sorted(i for _, i in b_only)
    assert all(len(act.record_ids) <= DEFAULT_LIMITS.fetch_batch for act in actions if isinstance(act, Fetch))
    offered = [i for act in actions if isinstance(act, Offer) for i in act.record_ids]
    assert sorted(offered) == (sorted(i for _, i in a_only) if only_a <= DEFAULT_LIMITS.push_batch else [])
    assert (done.have, done.need) == (only_a, only_b)


def test_fetch_relay_only_when_few_differ() -> None:
    a, b, _, _ = split(1000, 0, 5, seed=1)
    few = exchange(SyncSession(Storage(a), DEFAULT_LIMITS), SyncResponder(Storage(b), DEFAULT_LIMITS))
    assert [f.relay for f in few if isinstance(f, Fetch)] == [True]
    a, b, _, _ = split(1000, 0, 1200, seed=2)
    many = [f.relay for f in exchange(SyncSession(Storage(a), DEFAULT_LIMITS),
                                      SyncResponder(Storage(b), DEFAULT_LIMITS)) if isinstance(f, Fetch)]
    assert len(many) == 3 and not any(many)


def idle(n: int, whole_range: bool = True) -> tuple[int, int, int]:
    same = items(n, "idle")
    actions = exchange(SyncSession(Storage(same), DEFAULT_LIMITS, whole_range=whole_range),
                       SyncResponder(Storage(same), DEFAULT_LIMITS))
    assert len(actions) == 1
    done = actions[0]
    assert isinstance(done, Done) and done.complete
    return done.bytes_sent, done.bytes_received, done.rounds


def test_idle_exchange_bytes_are_constant_as_n_grows() -> None:
    assert idle(1_000) == idle(20_000) == (20, 1, 1)
    # The reference opening (16 bucket fingerprints) is constant too, just larger.
    assert idle(1_000, whole_range=False) == idle(20_000, whole_range=False)


def test_round_and_byte_bounds_end_the_session_early() -> None:
    a, b, _, _ = split(20_000, 500, 500, seed=3)
    limited = SyncSession(Storage(a), DEFAULT_LIMITS, max_rounds=1)
    done = exchange(limited, SyncResponder(Storage(b), DEFAULT_LIMITS))[-1]
    assert isinstance(done, Done) and not done.complete and done.reason == "rounds" and done.rounds == 1
    poor = SyncSession(Storage(a), DEFAULT_LIMITS, byte_budget=2_000)
    done = exchange(poor, SyncResponder(Storage(b), DEFAULT_LIMITS))[-1]
    assert isinstance(done, Done) and done.reason == "too-large"
    assert done.bytes_sent + done.bytes_received <= 2_000


def test_responder_enforces_its_bounds_and_refuses_garbage() -> None:
    storage = Storage(items(100))
    responder = SyncResponder(storage, DEFAULT_LIMITS, max_rounds=1)
    msg = SyncSession(storage, DEFAULT_LIMITS).start()[0]
    assert isinstance(msg, SendReconcile)
    responder.on_message(msg.msg)
    with pytest.raises(SyncError) as info:
        responder.on_message(msg.msg)
    assert info.value.reason == "too-large"
    with pytest.raises(SyncError) as info:
        SyncResponder(storage, DEFAULT_LIMITS).on_message(b"\x61\xff\xff")
    assert info.value.reason == "invalid"
    with pytest.raises(SyncError) as info:
        SyncResponder(storage, DEFAULT_LIMITS, byte_budget=10).on_message(msg.msg)
    assert info.value.reason == "too-large"


def test_malformed_reply_ends_the_session_without_raising() -> None:
    session = SyncSession(Storage(items(10)), DEFAULT_LIMITS)
    session.start()
    actions = session.on_reply(b"\x61\x00\x00\x07")
    assert actions == [Done(False, "invalid", 1, 20, 4, 0, 0)]
    with pytest.raises(SyncError):
        session.on_reply(b"\x61")


def test_misuse_raises() -> None:
    session = SyncSession(Storage([]), DEFAULT_LIMITS)
    with pytest.raises(SyncError):
        session.on_reply(b"\x61")
    session.start()
    with pytest.raises(SyncError):
        session.start()
    assert isinstance(session.abort()[-1], Done)
    with pytest.raises(SyncError):
        session.abort()
    with pytest.raises(ValueError):
        SyncSession(Storage([]), DEFAULT_LIMITS, max_rounds=0)
    with pytest.raises(ValueError):
        SyncSession(Storage([]), dataclasses.replace(DEFAULT_LIMITS, negentropy_frame_bytes=100))
