"""The time-credit ledger a hub keeps (hub/derive.py, migration 5) against protocol.credit's pure rule, on real
SQLite files: any arrival order, any batching, late bookings that replay the tail, and two machines of one payer
overspending at once."""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.store import Store
from protocol import Record
from protocol.credit import ledger, limit_from_charter

from .factory import Association, raws

HOUR = 60
LIMIT = 40 * HOUR  # the charter's default credit limit


def stored_ledger(store: Store) -> tuple[dict[str, str], dict[bytes, int], set[bytes]]:
    """(payment hex id -> status, hub -> balance, flagged hubs) as the store's derived tables hold them."""
    with store._readers.reading() as conn:
        statuses = {bytes(i).hex(): s for i, s in conn.execute("SELECT id, status FROM credit_payments")}
        accounts = {bytes(h): b for h, b in conn.execute("SELECT hub, balance FROM credit_accounts")}
        flagged = {bytes(h) for (h,) in conn.execute("SELECT hub FROM credit_accounts WHERE over_limit > 0")}
    return statuses, {h: b for h, b in accounts.items() if b}, flagged


def expected_ledger(a: Association, records: list[Record]) -> tuple[dict[str, str], dict[bytes, int], set[bytes]]:
    payments = [r for r in records if r.kind == "credit-payment"]
    led = ledger(payments, [r for r in records if r.kind == "credit-receipt"], limit_from_charter(a.charter))
    statuses = {e.booking.payment.hex(): e.status for e in led.entries}
    statuses |= {p.id_hex: "pending" for p in led.pending}
    return statuses, {h: p.balance for h, p in led.positions.items() if p.balance}, set(led.flagged)


def ingest_in(store: Store, a: Association, records: list[Record], rng: random.Random) -> None:
    """Ingest in random order and random batches; receipts before their payment are deferred and retried."""
    order = records[:]
    rng.shuffle(order)
    while order:
        n = rng.randint(1, 6)
        batch, order = order[:n], order[n:]
        results = store.ingest(raws(batch), now_ms=a.now)
        retry = [r for r, res in zip(batch, results, strict=True) if res.status == "refused"]
        assert all(res.reason == "missing-reference" for res in results if res.status == "refused"), results
        order += retry  # what it waits for is in a later batch


def test_a_booked_payment_moves_the_balances(store: Store) -> None:
    a = Association.create(founders=3)
    f0, f1, _ = a.founders
    p = a.pay(f0, f1, 90)
    store.ingest(raws([a.charter, p]), now_ms=a.now)
    assert stored_ledger(store) == ({p.id_hex: "pending"}, {}, set())
    r = a.book(f1, p)
    assert store.ingest(raws([r]), now_ms=a.now)[0].status == "accepted"
    assert stored_ledger(store) == ({p.id_hex: "stands"}, {f0.public: -90, f1.public: 90}, set())


def test_a_receipt_by_anyone_but_the_payee_is_stored_and_changes_nothing(store: Store) -> None:
    a = Association.create(founders=3)
    f0, f1, f2 = a.founders
    p = a.pay(f0, f1, 90)
    results = store.ingest(raws([a.charter, p, a.book(f2, p)]), now_ms=a.now)
    assert [r.status for r in results] == ["accepted"] * 3
    assert stored_ledger(store)[0] == {p.id_hex: "pending"}


def test_ingest_refuses_a_payment_to_oneself_and_a_receipt_naming_another_kind(store: Store) -> None:
    a = Association.create(founders=2)
    f0, f1 = a.founders
    guide = a.guide(f0, "Rotas")
    results = store.ingest(raws([a.charter, guide, a.pay(f0, f0, 30), a.book(f1, guide)]), now_ms=a.now)
    assert [(r.status, r.reason) for r in results[2:]] == [("refused", "invalid"), ("refused", "invalid")]
    assert "pay itself" in (results[2].detail or "") and "not a credit-payment" in (results[3].detail or "")


def test_a_late_booking_dated_earlier_replays_the_tail(store: Store) -> None:
    a = Association.create(founders=3)
    f0, f1, f2 = a.founders
    t = a.now
    big = a.pay(f0, f1, LIMIT - HOUR, at=t + 10)
    small = a.pay(f0, f2, 2 * HOUR, at=t + 20)
    store.ingest(raws([a.charter, big, small, a.book(f1, big, at=t + 30)]), now_ms=t + 10_000)
    # f2 books its payment with an earlier booking time than f1's: it comes first and f1's falls over the limit.
    store.ingest(raws([a.book(f2, small, at=t + 25)]), now_ms=t + 10_000)
    statuses, balances, flagged = stored_ledger(store)
    assert statuses == {big.id_hex: "over-limit", small.id_hex: "stands"}
    assert balances == {f0.public: -2 * HOUR, f2.public: 2 * HOUR} and flagged == {f0.public}


def test_a_second_earlier_receipt_by_the_payee_moves_the_booking(store: Store) -> None:
    a = Association.create(founders=3)
    f0, f1, f2 = a.founders
    t = a.now
    first = a.pay(f0, f1, LIMIT, at=t + 10)
    second = a.pay(f0, f2, LIMIT, at=t + 11)
    store.ingest(raws([a.charter, first, second, a.book(f2, second, at=t + 100),
                       a.book(f1, first, at=t + 200)]), now_ms=t + 10_000)
    assert stored_ledger(store)[0] == {first.id_hex: "over-limit", second.id_hex: "stands"}
    store.ingest(raws([a.book(f1, first, at=t + 50)]), now_ms=t + 10_000)  # the payee's earlier receipt
    assert stored_ledger(store)[0] == {first.id_hex: "stands", second.id_hex: "over-limit"}


@st.composite
def histories(draw: st.DrawFn) -> tuple[Association, list[Record]]:
    a = Association.create(founders=4)
    records = [a.charter]
    for i in range(draw(st.integers(1, 20))):
        payer, payee = draw(st.sampled_from(a.founders)), draw(st.sampled_from(a.founders))
        if payer == payee:
            continue
        at = a.now + draw(st.integers(0, 40)) * 60_000
        p = a.pay(payer, payee, draw(st.integers(1, 30 * HOUR)), f"job {i}", at=at)
        records.append(p)
        for _ in range(draw(st.integers(0, 2))):
            records.append(a.book(payee, p, at=at + draw(st.integers(-2, 60)) * 60_000))
    return a, records


@settings(max_examples=15, deadline=None)
@given(histories(), st.randoms(use_true_random=False))
def test_the_stored_ledger_is_protocols_whatever_the_arrival_order(history: tuple[Association, list[Record]],
                                                                   rng: random.Random) -> None:
    a, records = history
    want = expected_ledger(a, records)
    assert sum(want[1].values()) == 0
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(2):
            with Store(Path(tmp) / f"hub{n}.sqlite3") as store:
                ingest_in(store, a, records, rng)
                assert stored_ledger(store) == want


@settings(max_examples=15, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 20 * HOUR), st.integers(0, 20), st.integers(0, 2)), min_size=2,
                max_size=10), st.lists(st.tuples(st.integers(1, 20 * HOUR), st.integers(0, 20), st.integers(0, 2)),
                                       min_size=1, max_size=10), st.randoms(use_true_random=False))
def test_a_payer_overspending_on_two_stores_is_flagged_alike_once_both_hold_everything(
        first: list[tuple[int, int, int]], second: list[tuple[int, int, int]], rng: random.Random) -> None:
    """The payer's key signs on two machines (two stores) at once; its payees book on each side. After each
    store receives the other's records, both hold the same standing set and the same flag."""
    a = Association.create(founders=4)
    payer, payees = a.founders[0], a.founders[1:]
    sides: list[list[Record]] = [[], []]
    for side, spends in enumerate((first, second)):
        for i, (minutes, at, who) in enumerate(spends):
            when = a.now + at * 60_000
            p = a.pay(payer, payees[who], minutes, f"machine {side} job {i}", at=when)
            sides[side] += [p, a.book(payees[who], p, at=when + 60_000)]
    with tempfile.TemporaryDirectory() as tmp:
        stores = [Store(Path(tmp) / f"machine{i}.sqlite3") for i in range(2)]
        try:
            for store, mine in zip(stores, sides, strict=True):
                ingest_in(store, a, [a.charter, *mine], rng)
            for store, theirs in zip(stores, reversed(sides), strict=True):
                ingest_in(store, a, theirs, rng)
            views = [stored_ledger(s) for s in stores]
        finally:
            for store in stores:
                store.close()
    assert views[0] == views[1] == expected_ledger(a, [a.charter, *sides[0], *sides[1]])
    total = sum(m for m, _, _ in first + second)
    standing = -views[0][1].get(payer.public, 0)
    assert standing <= LIMIT
    assert (payer.public in views[0][2]) == (standing < total)
