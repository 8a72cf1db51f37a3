"""Solidarity funds: pooled risk with no custodian (docs/protocol.md §6.7; anchor: Broodfonds).

A ``fund`` record sets the terms: a monthly contribution per member, its currency, how many approvals a claim
needs, and a notice period. Money never passes through coophub (members pay each other by bank transfer);
coophub keeps the signed record of who is in, who claimed what and why, who approved, who paid, and what is
still owed by whom — a pure function of the records, so every hub shows the same.

Fund membership, per hub, is a state machine over its ``fund-join`` and ``fund-leave`` records in
(created_ms, id) order; the fund's author is a member from the fund's creation:

    out ──join──▶ member ──leave──▶ leaving ──notice ends──▶ out
                    ▲                   │
                    └──────join─────────┘            (a join during the notice withdraws it)

A member who leaves stays in for ``notice_days``, so no one leaves the moment a claim comes in.

Claims: the claimant must be a member when it claims; a claim may ask at most one monthly contribution from each
other member at that time (otherwise ``over-capacity``). It is **approved** when ``approvals`` distinct members
other than the claimant — each a member when it approved — have approved it; the approval time is the
creation time of the approval that reached the number, in (created_ms, id) order. The amount is then shared
equally among the members at the approval time other than the claimant; the remainder of the division goes one
minor unit each to the lowest hub ids. Each member owes its share less what it recorded paying toward the claim.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .records import Record

__all__ = [
    "CLAIM_STATUSES",
    "DAY_MS",
    "MEMBERSHIP_TRANSITIONS",
    "Approval",
    "ClaimState",
    "FundMember",
    "FundState",
    "Share",
    "claim_state",
    "fund_state",
    "member_intervals",
    "members_at",
    "split",
]

DAY_MS = 86_400_000

#: state -> {event: next state}; "notice-ends" happens by itself, notice_days after the leave.
MEMBERSHIP_TRANSITIONS: dict[str, dict[str, str]] = {
    "out": {"join": "member"},
    "member": {"leave": "leaving"},
    "leaving": {"join": "member", "notice-ends": "out"},
}

#: status -> meaning, in the order the rules are tried.
CLAIM_STATUSES: dict[str, str] = {
    "not-member": "the claimant was not a member of the fund when it claimed: ignored",
    "over-capacity": "more than one monthly contribution from each other member: ignored",
    "open": "waiting for approvals",
    "approved": "approved; shared among the members, some still owe",
    "paid": "approved, and every share is paid",
}

Interval = tuple[int, int | None]  # [start, end) in ms; end None: still a member


@dataclass(frozen=True, slots=True)
class FundMember:
    hub: bytes
    state: str  # "member" or "leaving" (at the time asked about)
    since_ms: int
    leaving_ms: int | None  # when its notice ends, if it gave notice


@dataclass(frozen=True, slots=True)
class Approval:
    hub: bytes
    record: bytes
    created_ms: int


@dataclass(frozen=True, slots=True)
class Share:
    hub: bytes
    share: int
    paid: int
    owed: int


@dataclass(frozen=True, slots=True)
class ClaimState:
    claim: Record
    status: str
    approvals: tuple[Approval, ...]  # counting approvals, in (created_ms, id) order
    approved_ms: int | None
    shares: tuple[Share, ...]  # by hub id; empty until approved
    paid: int  # everything recorded toward the claim once approved, shares and gifts
    owed: int  # the sum of what shareholders still owe
    gifts: Mapping[bytes, int]  # payments by hubs that hold no share (not counted as owed)


@dataclass(frozen=True, slots=True)
class FundState:
    fund: Record
    members: tuple[FundMember, ...]  # at the time asked about, by hub id
    claims: tuple[ClaimState, ...]  # newest first


def _key(record: Record) -> tuple[int, bytes]:
    return (record.created_ms, record.id)


def member_intervals(fund: Record, joins: Iterable[Record], leaves: Iterable[Record]) -> dict[bytes, list[Interval]]:
    """Each hub's membership of ``fund`` as [start, end) intervals, by the table above."""
    notice = fund.body["notice_days"] * DAY_MS
    events: dict[bytes, list[tuple[int, bytes, str]]] = defaultdict(list)
    events[fund.author].append((fund.created_ms, fund.id, "join"))
    for record in [*joins, *leaves]:
        if record.kind in ("fund-join", "fund-leave") and record.body["fund"] == fund.id:
            events[record.author].append((*_key(record), "join" if record.kind == "fund-join" else "leave"))
    out: dict[bytes, list[Interval]] = {}
    for hub, items in events.items():
        state, start, end = "out", 0, 0
        spans: list[Interval] = []
        for at, _, event in sorted(items):
            if state == "leaving" and end <= at:
                state = MEMBERSHIP_TRANSITIONS[state]["notice-ends"]
                spans.append((start, end))
            nxt = MEMBERSHIP_TRANSITIONS[state].get(event)
            if nxt is None:
                continue  # joining twice, leaving twice or while out: no effect
            if state == "out":
                start = at
            if nxt == "leaving":
                end = at + notice
            state = nxt
        if state != "out":
            spans.append((start, end if state == "leaving" else None))
        if spans:
            out[hub] = spans
    return out


def members_at(intervals: Mapping[bytes, list[Interval]], at_ms: int) -> frozenset[bytes]:
    """The hubs that are members (or leaving, within their notice) at ``at_ms``."""
    return frozenset(hub for hub, spans in intervals.items()
                     if any(start <= at_ms and (end is None or at_ms < end) for start, end in spans))


def split(amount: int, hubs: Iterable[bytes]) -> dict[bytes, int]:
    """``amount`` in equal shares; the remainder one minor unit each to the lowest hub ids (bytewise)."""
    order = sorted(set(hubs))
    if not order:
        return {}
    each, rest = divmod(amount, len(order))
    return {hub: each + (1 if i < rest else 0) for i, hub in enumerate(order)}


def _approvals(claim: Record, approvals: Iterable[Record],
               intervals: Mapping[bytes, list[Interval]]) -> list[Approval]:
    """Counting approvals: by a member at the time (not the claimant), each hub's earliest only."""
    counted: dict[bytes, Approval] = {}
    for a in sorted((a for a in approvals if a.kind == "fund-approval" and a.body["claim"] == claim.id), key=_key):
        if a.author == claim.author or a.author in counted:
            continue
        if a.author in members_at(intervals, a.created_ms):
            counted[a.author] = Approval(a.author, a.id, a.created_ms)
    return sorted(counted.values(), key=lambda x: (x.created_ms, x.record))


def claim_state(fund: Record, claim: Record, intervals: Mapping[bytes, list[Interval]],
                approvals: Iterable[Record], payments: Iterable[Record]) -> ClaimState:
    """One claim's status, approvals, shares and what is owed (module docstring)."""
    members = members_at(intervals, claim.created_ms)
    amount = claim.body["amount"]
    if claim.author not in members:
        return ClaimState(claim, "not-member", (), None, (), 0, 0, {})
    if amount > fund.body["contribution"] * len(members - {claim.author}):
        return ClaimState(claim, "over-capacity", (), None, (), 0, 0, {})
    counted = _approvals(claim, approvals, intervals)
    needed = fund.body["approvals"]
    if len(counted) < needed:
        return ClaimState(claim, "open", tuple(counted), None, (), 0, 0, {})
    approved_ms = counted[needed - 1].created_ms
    shares = split(amount, members_at(intervals, approved_ms) - {claim.author})
    paid: dict[bytes, int] = defaultdict(int)
    for p in payments:
        if p.kind == "fund-payment" and p.body["claim"] == claim.id:
            paid[p.author] += p.body["amount"]
    lines = tuple(Share(hub, share, paid.get(hub, 0), max(0, share - paid.get(hub, 0)))
                  for hub, share in sorted(shares.items()))
    owed = sum(line.owed for line in lines)
    gifts = {hub: n for hub, n in sorted(paid.items()) if hub not in shares}
    return ClaimState(claim, "paid" if owed == 0 else "approved", tuple(counted), approved_ms, lines,
                      sum(paid.values()), owed, gifts)


def fund_state(fund: Record, joins: Iterable[Record], leaves: Iterable[Record], claims: Iterable[Record],
               approvals: Iterable[Record], payments: Iterable[Record], now_ms: int) -> FundState:
    """The fund at ``now_ms``: its members and every claim on it. Records about other funds are ignored."""
    intervals = member_intervals(fund, joins, leaves)
    members = []
    for hub in sorted(members_at(intervals, now_ms)):
        start, end = next(s for s in intervals[hub] if s[0] <= now_ms and (s[1] is None or now_ms < s[1]))
        members.append(FundMember(hub, "member" if end is None else "leaving", start, end))
    approval_list, payment_list = list(approvals), list(payments)
    mine = sorted((c for c in claims if c.kind == "fund-claim" and c.body["fund"] == fund.id),
                  key=lambda c: (-c.created_ms, c.id))
    states = tuple(claim_state(fund, c, intervals, approval_list, payment_list) for c in mine)
    return FundState(fund, tuple(members), states)
