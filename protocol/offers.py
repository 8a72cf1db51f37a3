"""Joint procurement: an offer's tally and lifecycle as a pure function (docs/protocol.md §6.4).

The lifecycle is a table (h11 style): states and the events that move between them.

    open ──deadline passes──▶ past-deadline
      │                          │
      ├──close: awarded──────────┼──▶ awarded      (final)
      └──close: cancelled / offer revoked ─▶ cancelled (final)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .derived import newest
from .records import Record

__all__ = ["OFFER_TRANSITIONS", "OfferTally", "PledgeLine", "offer_tally"]

#: state -> {event: next state}. Final states have no way out.
OFFER_TRANSITIONS: dict[str, dict[str, str]] = {
    "open": {"deadline": "past-deadline", "awarded": "awarded", "cancelled": "cancelled", "revoked": "cancelled"},
    "past-deadline": {"awarded": "awarded", "cancelled": "cancelled", "revoked": "cancelled"},
    "awarded": {},
    "cancelled": {},
}


@dataclass(frozen=True, slots=True)
class PledgeLine:
    hub: bytes
    quantity: int
    pledge_id: bytes
    created_ms: int


@dataclass(frozen=True, slots=True)
class OfferTally:
    status: str
    total: int
    pledges: tuple[PledgeLine, ...]
    tier: tuple[int, int] | None  # (minimum quantity, unit price) of the tier reached
    proceeds: bool  # total reached min_total
    close_id: bytes | None


def _apply(state: str, event: str) -> str:
    return OFFER_TRANSITIONS[state].get(event, state)


def offer_tally(offer: Record, pledges: Iterable[Record], closes: Iterable[Record],
                revocations: Iterable[Record], members: frozenset[bytes], now_ms: int) -> OfferTally:
    """The tally of ``offer`` at ``now_ms``.

    While not closed: the newest pledge (created by the deadline) of each *member* hub, a zero quantity
    counting as withdrawn. Once closed by the offer's author: exactly the pledges the earliest close names —
    whatever anyone's clock said — so the final tally is a pure function anyone can recheck.
    """
    pledge_list = [p for p in pledges if p.kind == "pledge" and p.body["offer"] == offer.id]
    close = min((c for c in closes if c.kind == "offer-close" and c.body["offer"] == offer.id
                 and c.author == offer.author), key=lambda c: (c.created_ms, c.id), default=None)
    revoked = any(r.kind == "revocation" and r.author == offer.author and r.body["target"] == offer.id
                  for r in revocations)
    state = "open"
    if now_ms > offer.body["deadline"]:
        state = _apply(state, "deadline")
    if close is not None:
        state = _apply(state, close.body["outcome"])
        named = set(close.body["pledges"])
        counted = [p for p in pledge_list if p.id in named]
    else:
        if revoked:
            state = _apply(state, "revoked")
        counted = _newest_per_member(pledge_list, members, offer.body["deadline"])
    lines = tuple(sorted((PledgeLine(p.author, p.body["quantity"], p.id, p.created_ms) for p in counted
                          if p.body["quantity"] > 0), key=lambda line: (-line.quantity, line.hub)))
    total = sum(line.quantity for line in lines)
    tier = None
    for min_qty, price in offer.body["tiers"]:
        if total >= min_qty:
            tier = (min_qty, price)
    return OfferTally(state, total, lines, tier, total >= offer.body["min_total"],
                      close.id if close is not None else None)


def _newest_per_member(pledges: list[Record], members: frozenset[bytes], deadline: int) -> list[Record]:
    by_hub: dict[bytes, list[Record]] = {}
    for pledge in pledges:
        if pledge.author in members and pledge.created_ms <= deadline:
            by_hub.setdefault(pledge.author, []).append(pledge)
    return [p for versions in by_hub.values() if (p := newest(versions)) is not None]


