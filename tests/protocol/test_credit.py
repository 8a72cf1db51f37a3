"""Time credits (protocol/credit.py, docs/protocol.md §6.6): bookings, the ledger replay, and its properties.

Property tests take their seed from hypothesis (printed on failure; replay with ``--hypothesis-seed``).
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import HubKey, Record
from protocol.credit import (
    PAYMENT_STATUSES,
    Booking,
    Position,
    bookings,
    hours_text,
    is_final,
    ledger,
    limit_from_charter,
    minutes_from_hours,
    replay,
)

from .factories import KEYS, T0, charter, make

HOUR = 60  # minutes
MIN_MS = 60_000
LIMIT = 10 * HOUR


def flat(limit: int = LIMIT):  # type: ignore[no-untyped-def]
    return lambda at_ms: limit


def pay(payer: HubKey, payee: HubKey, minutes: int, at: int, memo: str = "help") -> Record:
    return make(payer, "credit-payment", {"payee": payee.public, "minutes": minutes, "memo": memo}, at)


def receipt(payee: HubKey, payment: Record, at: int) -> Record:
    return make(payee, "credit-receipt", {"payment": payment.id}, at)


def paid(payer: HubKey, payee: HubKey, minutes: int, at: int, booked: int | None = None,
         memo: str = "help") -> list[Record]:
    p = pay(payer, payee, minutes, at, memo)
    return [p, receipt(payee, p, at if booked is None else booked)]


def split(records: list[Record]) -> tuple[list[Record], list[Record]]:
    return ([r for r in records if r.kind == "credit-payment"], [r for r in records if r.kind == "credit-receipt"])


def ledger_of(records: list[Record], limit: int = LIMIT):  # type: ignore[no-untyped-def]
    payments, receipts = split(records)
    return ledger(payments, receipts, flat(limit))


A, B, C, D = KEYS[:4]


def test_the_status_table_names_what_counts() -> None:
    assert {s for s, (counts, _) in PAYMENT_STATUSES.items() if counts} == {"stands"}


def test_a_booked_payment_moves_minutes_and_balances_sum_to_zero() -> None:
    led = ledger_of(paid(A, B, 90, T0))
    assert [e.status for e in led.entries] == ["stands"]
    assert led.balance(A.public) == -90 and led.balance(B.public) == 90
    assert sum(p.balance for p in led.positions.values()) == 0


def test_an_unbooked_payment_is_pending_and_counts_nowhere() -> None:
    p = pay(A, B, 90, T0)
    led = ledger([p], [], flat())
    assert led.entries == () and led.pending == (p,)
    assert led.balance(A.public) == 0


def test_a_payer_may_go_down_to_its_limit_and_no_further() -> None:
    records = paid(A, B, 6 * HOUR, T0) + paid(A, C, 4 * HOUR, T0 + 1) + paid(A, D, 1, T0 + 2)
    led = ledger_of(records)
    assert [e.status for e in led.entries] == ["stands", "stands", "over-limit"]
    assert led.balance(A.public) == -LIMIT
    assert led.flagged == {A.public}


def test_credits_received_can_be_spent() -> None:
    records = paid(B, A, 5 * HOUR, T0) + paid(A, C, 15 * HOUR, T0 + 1)
    led = ledger_of(records)
    assert [e.status for e in led.entries] == ["stands", "stands"]
    assert led.balance(A.public) == -10 * HOUR


def test_over_the_limit_only_because_a_payment_received_fell_is_unfunded_not_flagged() -> None:
    # D overspends: its second payment (to A) does not stand. A had counted on it and spends it on.
    records = (paid(D, C, LIMIT, T0) + paid(D, A, 3 * HOUR, T0 + 1)
               + paid(A, B, LIMIT + 2 * HOUR, T0 + 2))
    led = ledger_of(records)
    assert [e.status for e in led.entries] == ["stands", "over-limit", "unfunded"]
    assert led.flagged == {D.public}
    assert led.balance(A.public) == 0


def test_payments_are_ordered_by_booking_time_not_the_payers_date() -> None:
    # A backdates a payment to C before the one B booked; C books it later: it comes after B's.
    to_b = paid(A, B, LIMIT, T0 + 10 * MIN_MS)
    to_c = paid(A, C, 3 * HOUR, T0, booked=T0 + 20 * MIN_MS)
    led = ledger_of(to_b + to_c)
    assert [(e.booking.payee, e.status) for e in led.entries] == [(B.public, "stands"), (C.public, "over-limit")]


def test_a_receipt_dated_before_its_payment_books_it_at_the_payments_date() -> None:
    p = pay(A, B, 30, T0 + 5000)
    (b,), _ = bookings([p], [receipt(B, p, T0)])
    assert b.booked_ms == T0 + 5000


def test_only_the_payee_books_and_its_earliest_receipt_counts() -> None:
    p = pay(A, B, 30, T0)
    by_c = receipt(C, p, T0 + 1)
    assert bookings([p], [by_c]) == ([], [p])
    late, early = receipt(B, p, T0 + 9000), receipt(B, p, T0 + 100)
    (b,), pending = bookings([p], [late, early, by_c])
    assert b.receipt == early.id and b.booked_ms == T0 + 100 and pending == []


def test_a_payment_to_oneself_is_ignored() -> None:
    p = pay(A, A, 30, T0)
    assert bookings([p], [receipt(A, p, T0 + 1)]) == ([], [])


def test_equal_booking_times_are_ordered_by_payment_id() -> None:
    first, second = pay(A, B, LIMIT, T0, "one"), pay(A, C, LIMIT, T0, "two")
    records = [first, second, receipt(B, first, T0 + 1), receipt(C, second, T0 + 1)]
    led = ledger_of(records)
    winner = min(first.id, second.id)
    assert [(e.booking.payment, e.status) for e in led.entries] == [
        (winner, "stands"), (max(first.id, second.id), "over-limit")]


def test_the_limit_in_force_at_the_booking_time_applies() -> None:
    records = paid(A, B, 8 * HOUR, T0) + paid(A, C, 4 * HOUR, T0 + 10)
    led = ledger(*split(records), lambda at: 10 * HOUR if at < T0 + 5 else 20 * HOUR)
    assert [e.status for e in led.entries] == ["stands", "stands"]
    assert [e.limit_minutes for e in led.entries] == [10 * HOUR, 20 * HOUR]


def test_the_limit_comes_from_the_charter_terms() -> None:
    ch = charter()
    assert limit_from_charter(ch)(T0 + 1) == ch.body["credit_limit_minutes"]


def test_finality_needs_the_settle_delay_after_booking() -> None:
    led = ledger_of(paid(A, B, 30, T0, booked=T0 + 1000))
    (entry,) = led.entries
    assert not is_final(entry, T0 + 1000 + 59_999, 60_000)
    assert is_final(entry, T0 + 1000 + 60_000, 60_000)
    over = ledger_of(paid(A, B, LIMIT + 1, T0)).entries[0]
    assert not is_final(over, T0 + 10**9, 60_000)


@pytest.mark.parametrize("text,minutes", [("2", 120), ("1.5", 90), ("0.25", 15), ("0.1", 6), ("10", 600),
                                          ("0.5000", 30)])
def test_hours_in_whole_minutes(text: str, minutes: int) -> None:
    assert minutes_from_hours(text) == minutes


@pytest.mark.parametrize("text", ["0.01", "1.51", "-1", "1e3", "", "one", "1,5", "12345678"])
def test_hours_refused(text: str) -> None:
    with pytest.raises(ValueError):
        minutes_from_hours(text)


def test_hours_text() -> None:
    assert [hours_text(m) for m in (0, 90, 120, -20, -600, 1)] == ["0", "1.5", "2", "-0.33", "-10", "0.02"]


# -- properties ---------------------------------------------------------------------------------------------

HUBS = KEYS[:5]


@st.composite
def histories(draw: st.DrawFn) -> list[Record]:
    """Random payments among five hubs, most booked (some twice, some by the wrong hub), some pending."""
    records: list[Record] = []
    for i in range(draw(st.integers(0, 25))):
        payer, payee = draw(st.sampled_from(HUBS)), draw(st.sampled_from(HUBS))
        if payer is payee:
            continue
        at = T0 + draw(st.integers(0, 50)) * MIN_MS
        p = pay(payer, payee, draw(st.integers(1, 8 * HOUR)), at, f"job {i}")
        records.append(p)
        for _ in range(draw(st.integers(0, 2))):
            by = payee if draw(st.integers(0, 5)) else draw(st.sampled_from(HUBS))
            records.append(receipt(by, p, at + draw(st.integers(-5, 60)) * MIN_MS))
    return records


def _summary(led) -> tuple:  # type: ignore[no-untyped-def]
    return (tuple((e.booking, e.status) for e in led.entries), tuple(p.id for p in led.pending),
            tuple(sorted(led.positions.items())), led.flagged)


@settings(max_examples=60, deadline=None)
@given(histories(), st.randoms(use_true_random=False))
def test_balances_sum_to_zero_whatever_the_arrival_order(records: list[Record], rng: random.Random) -> None:
    base = ledger_of(records, 4 * HOUR)
    assert sum(p.balance for p in base.positions.values()) == 0
    for e in base.entries:
        if e.status == "stands":
            assert e.payer_balance >= -e.limit_minutes
    for _ in range(3):
        shuffled = records[:]
        rng.shuffle(shuffled)
        assert _summary(ledger_of(shuffled + shuffled[:3], 4 * HOUR)) == _summary(base)


@settings(max_examples=60, deadline=None)
@given(histories(), st.integers(0, 30))
def test_replaying_the_tail_from_the_positions_before_it_equals_the_whole(records: list[Record], cut: int) -> None:
    booked, _ = bookings(*split(records))
    whole, final = replay(booked, flat(4 * HOUR))
    head, middle = replay(booked[:cut], flat(4 * HOUR))
    tail, end = replay(booked[cut:], flat(4 * HOUR), middle)
    assert head + tail == whole
    assert {h: p for h, p in end.items() if p != Position()} == {h: p for h, p in final.items() if p != Position()}


@settings(max_examples=60, deadline=None)
@given(histories(), st.integers(1, 8 * HOUR), st.integers(0, 60))
def test_a_new_booking_never_changes_what_was_booked_before_it(records: list[Record], minutes: int,
                                                               when: int) -> None:
    """Finality's core: a late booking changes only payments booked after it (docs/protocol.md §6.6)."""
    before = ledger_of(records, 4 * HOUR)
    late = paid(HUBS[0], HUBS[1], minutes, T0, booked=T0 + when * MIN_MS, memo="late")
    after = ledger_of(records + late, 4 * HOUR)
    key = (T0 + when * MIN_MS, late[0].id)
    assert [(e.booking, e.status) for e in before.entries if e.booking.key < key] == \
           [(e.booking, e.status) for e in after.entries if e.booking.key < key]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 6 * HOUR), st.integers(0, 30), st.integers(0, 2), st.booleans()),
                min_size=2, max_size=12), st.randoms(use_true_random=False))
def test_concurrent_overspending_on_two_machines_resolves_the_same_everywhere(
        spends: list[tuple[int, int, int, bool]], rng: random.Random) -> None:
    """One payer signs on two machines at once; each machine's payees book what they see. Whichever half a
    hub gets first, once it holds both it computes the same standing set and the same flag."""
    payer, payees = HUBS[0], HUBS[1:4]
    halves: tuple[list[Record], list[Record]] = ([], [])
    for i, (minutes, at, who, second) in enumerate(spends):
        halves[int(second)].extend(paid(payer, payees[who], minutes, T0 + at * MIN_MS,
                                        booked=T0 + (at + 1) * MIN_MS, memo=f"{int(second)}-{i}"))
    views = []
    for first, then in ((0, 1), (1, 0)):
        held = halves[first] + halves[then]
        rng.shuffle(held)
        views.append(ledger_of(held, 8 * HOUR))
    assert _summary(views[0]) == _summary(views[1])
    total = sum(m for m, *_ in spends)
    standing = sum(e.booking.minutes for e in views[0].entries if e.status == "stands")
    assert standing <= 8 * HOUR and views[0].balance(payer.public) == -standing
    assert (payer.public in views[0].flagged) == (standing < total)


def test_booking_keys_are_unique_per_payment() -> None:
    b = Booking(b"x" * 32, A.public, B.public, 1, T0, b"r" * 32, T0)
    assert b.key == (T0, b"x" * 32)
