"""Time credits between member co-ops: mutual credit with no central ledger (docs/protocol.md §6.6).

A payment moves minutes from its payer to its payee, and two signatures make it count — double-entry
book-keeping with "two to sign": the payer signs a ``credit-payment`` (it authorises the debit) and the payee
signs a ``credit-receipt`` naming it (it **books** the payment). Booked payments are put in one order that every
hub computes alike — by **booking time** (the receipt's creation time, never earlier than the payment's), then
payment id — and the ledger is replayed in that order from zero balances:

    a booked payment **stands** if the payer's balance after it is at least minus the credit limit in force at
    its booking time, counting only payments that stand. Otherwise it does not count: it is **over-limit**
    (flagged on the payer) or, when the payer is over its limit only because a payment it was paid does not
    stand, **unfunded** (not the payer's fault).

Every standing payment is −m for its payer and +m for its payee, so balances always sum to zero, and no hub's
standing debt ever passes its limit, whatever anyone signs. Why the payee's booking time and not the payer's own
date, and what a payee may treat as final, is argued in docs/protocol.md §6.6: in short, a payer cannot date a
payment before one that an honest payee has already booked, so neither a backdated payment, a second machine
that was offline, nor a restored backup can push out a payment that is booked and settled.

The statuses, as a table (h11 style): status -> (counts in balances, meaning).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from .charter import Amendment, terms_at
from .records import Record

__all__ = [
    "PAYMENT_STATUSES",
    "Booking",
    "Entry",
    "Ledger",
    "LimitAt",
    "Position",
    "bookings",
    "hours_text",
    "is_final",
    "ledger",
    "limit_from_charter",
    "minutes_from_hours",
    "replay",
]

#: status -> (counts in balances, meaning). "final" is not a status: a standing payment is final once its
#: booking is older than the settle delay (:func:`is_final`).
PAYMENT_STATUSES: dict[str, tuple[bool, str]] = {
    "pending": (False, "signed by the payer; the payee has not booked it yet"),
    "stands": (True, "booked, within the payer's limit: counted in both balances"),
    "over-limit": (False, "booked, but it would take the payer below its credit limit: flagged, not counted"),
    "unfunded": (False, "booked, over the payer's limit only because a payment it received does not stand"),
}

#: The credit limit (minutes) in force at a time (ms): from the charter's terms at that time.
LimitAt = Callable[[int], int]


@dataclass(frozen=True, slots=True)
class Booking:
    """A payment and the receipt that books it."""

    payment: bytes
    payer: bytes
    payee: bytes
    minutes: int
    created_ms: int
    receipt: bytes
    booked_ms: int

    @property
    def key(self) -> tuple[int, bytes]:
        """The ledger's order: booking time, then payment id (bytewise)."""
        return (self.booked_ms, self.payment)


@dataclass(frozen=True, slots=True)
class Position:
    """A hub's position at a point of the replay: ``balance`` counts standing payments only; ``unstood_in`` is
    the minutes of booked payments to it that do not stand (what tells unfunded from over-limit)."""

    balance: int = 0
    unstood_in: int = 0


@dataclass(frozen=True, slots=True)
class Entry:
    """One booked payment's place in the ledger."""

    booking: Booking
    status: str
    limit_minutes: int
    payer_balance: int  # the payer's balance after this entry (unchanged when it does not stand)


@dataclass(frozen=True, slots=True)
class Ledger:
    """Booked payments in ledger order, the payments not booked yet, and every hub's final position."""

    entries: tuple[Entry, ...]
    pending: tuple[Record, ...]
    positions: Mapping[bytes, Position] = field(default_factory=dict)

    def balance(self, hub: bytes) -> int:
        return self.positions.get(hub, Position()).balance

    @property
    def flagged(self) -> frozenset[bytes]:
        """Payers with at least one over-limit payment: they signed more than their limit allows."""
        return frozenset(e.booking.payer for e in self.entries if e.status == "over-limit")


def limit_from_charter(charter: Record, amendments: Iterable[Amendment] = ()) -> LimitAt:
    """The credit limit in force at each time, from the charter and its amendments (protocol.charter)."""
    fixed = list(amendments)
    return lambda at_ms: terms_at(charter, fixed, at_ms).credit_limit_minutes


def _earliest_receipts(payments: Mapping[bytes, Record], receipts: Iterable[Record]) -> dict[bytes, Record]:
    best: dict[bytes, Record] = {}
    for receipt in receipts:
        if receipt.kind != "credit-receipt":
            continue
        payment = payments.get(receipt.body["payment"])
        # Only the payee books a payment; a receipt by anyone else has no effect.
        if payment is None or receipt.author != payment.body["payee"]:
            continue
        held = best.get(payment.id)
        if held is None or (receipt.created_ms, receipt.id) < (held.created_ms, held.id):
            best[payment.id] = receipt
    return best


def bookings(payments: Iterable[Record], receipts: Iterable[Record]) -> tuple[list[Booking], list[Record]]:
    """Pair each payment with the receipt that books it: the earliest (created_ms, id) receipt by its payee.

    Returns the bookings in ledger order and the payments no receipt books yet, by (created_ms, id). Payments
    to their own author and receipts by anyone but the payee are ignored.
    """
    held = {p.id: p for p in payments if p.kind == "credit-payment" and p.body["payee"] != p.author}
    receipt_of = _earliest_receipts(held, receipts)
    booked = [Booking(p.id, p.author, p.body["payee"], p.body["minutes"], p.created_ms, r.id,
                      max(p.created_ms, r.created_ms))
              for p in held.values() if (r := receipt_of.get(p.id)) is not None]
    pending = [p for p in held.values() if p.id not in receipt_of]
    return sorted(booked, key=lambda b: b.key), sorted(pending, key=lambda p: (p.created_ms, p.id))


def replay(booked: Iterable[Booking], limit_at: LimitAt,
           start: Mapping[bytes, Position] | None = None) -> tuple[list[Entry], dict[bytes, Position]]:
    """Replay bookings in ledger order from ``start`` (every hub at zero when None).

    A hub's storage replays only the tail after a late booking, from the positions just before it; the result
    is the same as replaying everything (tests/hub/test_credit_derive.py checks this).
    """
    positions = dict(start or {})
    entries: list[Entry] = []
    for b in sorted(booked, key=lambda b: b.key):
        limit = limit_at(b.booked_ms)
        payer = positions.get(b.payer, Position())
        payee = positions.get(b.payee, Position())
        after = payer.balance - b.minutes
        if after >= -limit:
            status = "stands"
            payer = Position(after, payer.unstood_in)
            payee = Position(payee.balance + b.minutes, payee.unstood_in)
        else:
            funded = payer.balance + payer.unstood_in - b.minutes >= -limit
            status = "unfunded" if funded else "over-limit"
            payee = Position(payee.balance, payee.unstood_in + b.minutes)
        positions[b.payer], positions[b.payee] = payer, payee
        entries.append(Entry(b, status, limit, payer.balance))
    return entries, positions


def ledger(payments: Iterable[Record], receipts: Iterable[Record], limit_at: LimitAt) -> Ledger:
    """The whole time-credit ledger of a set of records (any order, any duplicates of kind)."""
    booked, pending = bookings(payments, receipts)
    entries, positions = replay(booked, limit_at)
    return Ledger(tuple(entries), tuple(pending), positions)


def is_final(entry: Entry, now_ms: int, settle_ms: int) -> bool:
    """A standing payment whose booking is at least ``settle_ms`` old (docs/protocol.md §6.6, "Finality")."""
    return entry.status == "stands" and now_ms >= entry.booking.booked_ms + settle_ms


_HOURS = re.compile(r"\d{1,7}(\.\d{1,6})?")


def minutes_from_hours(text: str) -> int:
    """Hours as people write them (``2``, ``1.5``, ``0.25``) in whole minutes.

    Raises:
        ValueError: not a non-negative decimal number, or a fraction of a minute (``0.01`` hours is 36 s).
    """
    text = text.strip()
    if not _HOURS.fullmatch(text):
        raise ValueError(f"{text!r} is not a number of hours")
    try:
        minutes = Decimal(text) * 60
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
        raise ValueError(f"{text!r} is not a number of hours") from None
    if minutes != minutes.to_integral_value():
        raise ValueError(f"{text} hours is {minutes.normalize()} minutes; time credits count whole minutes")
    return int(minutes)


def hours_text(minutes: int) -> str:
    """Minutes as hours for people: ``90`` -> ``1.5``, ``-20`` -> ``-0.33``, ``120`` -> ``2``."""
    sign = "-" if minutes < 0 else ""
    whole, rest = divmod(abs(minutes), 60)
    if rest == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole + rest / 60:.2f}".rstrip("0").rstrip(".")
