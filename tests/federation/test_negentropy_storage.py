"""The compact Negentropy storage (federation/negentropy_storage.py) against a plain model of the same set.

The model is what the storage stands for: a sorted list of unique (timestamp, id) items and the spec's
fingerprint over any index range (sum of ids as 256-bit little-endian integers mod 2**256, then SHA-256 of
the sum and the count). Chunk and sub-block sizes are shrunk so that a few dozen items already span many
chunks, splits and partial sub-blocks; the wire-level vectors in test_negentropy.py run at the real sizes.
"""

from __future__ import annotations

import hashlib
import random
from bisect import bisect_left
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from federation import negentropy_storage
from federation.negentropy import Negentropy, Storage
from federation.negentropy_wire import Bound, encode_varint, item_key

Item = tuple[int, bytes]


def _fingerprint(items: list[Item], lower: int, upper: int) -> bytes:
    total = sum(int.from_bytes(id_, "little") for _, id_ in items[lower:upper]) % 2**256
    return hashlib.sha256(total.to_bytes(32, "little") + encode_varint(upper - lower)).digest()[:16]


def _minimal_bound(items: list[Item], index: int) -> Bound:
    (t0, a), (t1, b) = items[index - 1], items[index]
    if t0 != t1:
        return Bound(t1)
    shared = next(i for i in range(32) if a[i] != b[i])
    return Bound(t1, b[: shared + 1])


def _check(storage: Storage, model: list[Item], rng: random.Random) -> None:
    n = len(model)
    assert len(storage) == n
    assert [storage.item(i) for i in range(n)] == model
    assert storage.ids() == [id_ for _, id_ in model]
    keys = [item_key(*item) for item in model]
    for _ in range(40):
        lower = rng.randrange(n + 1)
        upper = rng.randrange(lower, n + 1)
        assert storage.fingerprint(lower, upper) == _fingerprint(model, lower, upper), (lower, upper)
        assert storage.ids(lower, upper) == [id_ for _, id_ in model[lower:upper]]
        probe = rng.choice(model) if model and rng.random() < 0.5 else (rng.randrange(2_000), rng.randbytes(32))
        key = item_key(probe[0], probe[1][: rng.randrange(33)])
        assert storage.find_lower_bound(lower, upper, key) == bisect_left(keys, key, lower, upper)
        if 0 < lower < n:
            assert storage.minimal_bound(lower) == _minimal_bound(model, lower)
    if n:
        assert storage.item(-1) == model[-1]
    with pytest.raises(IndexError):
        storage.item(n)


def _items(rng: random.Random, count: int, t0: int, spread: int) -> list[Item]:
    out = []
    for _ in range(count):
        zeros = rng.randrange(31) if rng.random() < 0.2 else 0  # shared prefixes: long minimal bounds
        id_ = bytes(zeros) + rng.randbytes(32 - zeros)
        out.append((t0 + rng.randrange(spread), id_))
    return out


@pytest.fixture(params=[(2, 1), (3, 2), (4, 3), (8, 8)], ids=lambda p: f"chunk{p[0]}-sub{p[1]}")
def small_chunks(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    chunk, sub = request.param
    monkeypatch.setattr(negentropy_storage, "CHUNK", chunk)
    monkeypatch.setattr(negentropy_storage, "SUB_BLOCK", sub)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32), steps=st.lists(st.sampled_from(["newer", "older", "mixed", "repeat", "one"]),
                                                   max_size=8))
@pytest.mark.usefixtures("small_chunks")
def test_storage_equals_the_plain_model(seed: int, steps: list[str]) -> None:
    """Built from sorted or shuffled items and grown by any sequence of adds, the storage answers every
    query exactly as the sorted list of unique items does."""
    print(f"seed={seed} steps={steps}")
    rng = random.Random(seed)
    start = _items(rng, rng.randrange(60), 1_000, 300)
    if rng.random() < 0.5:
        start.sort()  # the hub's path: ascending input packed as it comes
    model = sorted(set(start))
    storage = Storage(start)
    _check(storage, model, rng)
    for step in steps:
        top = model[-1][0] if model else 1_000
        if step == "newer":
            new = sorted(_items(rng, rng.randrange(1, 30), top + 1, 50))
        elif step == "older":
            new = _items(rng, rng.randrange(1, 30), 900, 400)
        elif step == "mixed":
            new = _items(rng, rng.randrange(1, 50), 900, 600) + rng.sample(model, min(len(model), 5))
        elif step == "repeat":
            new = rng.sample(model, min(len(model), 10))
        else:
            new = _items(rng, 1, 900, 600)
        added = storage.add(new)
        grown = sorted(set(model) | set(new))
        assert added == len(grown) - len(model)
        model = grown
        _check(storage, model, rng)


@pytest.mark.usefixtures("small_chunks")
def test_grown_storage_answers_messages_like_a_fresh_one() -> None:
    rng = random.Random(11)
    print("seed=11")
    old = _items(rng, 200, 1_000, 500)
    grown = Storage(old)
    for _ in range(5):
        grown.add(_items(rng, 20, 900, 800))
    fresh = Storage([grown.item(i) for i in range(len(grown))])
    other = Storage(_items(rng, 150, 1_000, 500))
    for limit in (0, 4096):
        msg: bytes | None = Negentropy(other, limit).initiate()
        responder_a, responder_b = Negentropy(grown, limit), Negentropy(fresh, limit)
        assert msg is not None
        assert responder_a.reconcile(msg) == responder_b.reconcile(msg)


def test_storage_of_many_items_spans_chunks_at_real_sizes() -> None:
    """At the real chunk size: a few thousand items, appended one by one and merged, match the model."""
    rng = random.Random(5)
    print("seed=5")
    base = sorted(_items(rng, 3 * negentropy_storage.CHUNK + 17, 10_000, 10**6))
    storage = Storage(iter(base))
    model = sorted(set(base))
    for i in range(50):
        item = (model[-1][0] + 1 + i, rng.randbytes(32))
        assert storage.add([item]) == 1
        model.append(item)
    older = _items(rng, 2 * negentropy_storage.CHUNK + 40, 10_000, 10**6)
    storage.add(older)
    model = sorted(set(model) | set(older))
    _check(storage, model, rng)


def test_storage_refuses_bad_items_before_changing_anything() -> None:
    storage = Storage([(5, bytes(32)), (7, b"\x01" * 32)])
    for bad in [(-1, bytes(32)), (2**64 - 1, bytes(32)), (1, bytes(31)), ("1", bytes(32)), (1, "x" * 32)]:
        with pytest.raises(ValueError):
            storage.add([(9, b"\x02" * 32), bad])  # type: ignore[list-item]
        with pytest.raises(ValueError):
            Storage([bad])  # type: ignore[list-item]
    assert [storage.item(i) for i in range(len(storage))] == [(5, bytes(32)), (7, b"\x01" * 32)]
    mixed: list[tuple[int, Any]] = [(1, bytearray(32)), (1, memoryview(bytes(32)))]
    assert Storage(mixed).ids() == [bytes(32)]
