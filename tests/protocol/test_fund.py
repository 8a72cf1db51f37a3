"""Solidarity funds (protocol/fund.py, docs/protocol.md §6.7): membership with notice, claims, approvals,
shares and what is owed."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import HubKey, Record
from protocol.fund import DAY_MS, fund_state, member_intervals, members_at, split

from .factories import KEYS, T0, make

A, B, C, D, E = KEYS[:5]


def fund(author: HubKey = A, contribution: int = 2500, approvals: int = 2, notice_days: int = 30,
         at: int = T0) -> Record:
    return make(author, "fund", {"name": "Sick pay circle", "contribution": contribution, "currency": "GBP",
                                 "approvals": approvals, "notice_days": notice_days}, at)


def join(key: HubKey, f: Record, at: int) -> Record:
    return make(key, "fund-join", {"fund": f.id}, at)


def leave(key: HubKey, f: Record, at: int) -> Record:
    return make(key, "fund-leave", {"fund": f.id}, at)


def claim(key: HubKey, f: Record, amount: int, at: int, reason: str = "Off sick") -> Record:
    return make(key, "fund-claim", {"fund": f.id, "amount": amount, "reason": reason}, at)


def approve(key: HubKey, c: Record, at: int) -> Record:
    return make(key, "fund-approval", {"claim": c.id}, at)


def payment(key: HubKey, c: Record, amount: int, at: int) -> Record:
    return make(key, "fund-payment", {"claim": c.id, "amount": amount}, at)


def state(f: Record, records: list[Record], now: int):  # type: ignore[no-untyped-def]
    by = {k: [r for r in records if r.kind == k] for k in
          ("fund-join", "fund-leave", "fund-claim", "fund-approval", "fund-payment")}
    return fund_state(f, by["fund-join"], by["fund-leave"], by["fund-claim"], by["fund-approval"],
                      by["fund-payment"], now)


def test_the_author_is_a_member_from_creation_and_others_join() -> None:
    f = fund()
    s = state(f, [join(B, f, T0 + 10)], T0 + 20)
    assert [(m.hub, m.state) for m in s.members] == sorted([(A.public, "member"), (B.public, "member")])


def test_leaving_takes_effect_after_the_notice() -> None:
    f = fund(notice_days=30)
    records = [join(B, f, T0 + 1), leave(B, f, T0 + DAY_MS)]
    intervals = member_intervals(f, records[:1], records[1:])
    assert B.public in members_at(intervals, T0 + 30 * DAY_MS)
    assert B.public not in members_at(intervals, T0 + 31 * DAY_MS)
    (b,) = [m for m in state(f, records, T0 + 2 * DAY_MS).members if m.hub == B.public]
    assert b.state == "leaving" and b.leaving_ms == T0 + 31 * DAY_MS


def test_joining_during_the_notice_withdraws_it_and_joining_twice_changes_nothing() -> None:
    f = fund(notice_days=10)
    records = [join(B, f, T0 + 1), join(B, f, T0 + 2), leave(B, f, T0 + DAY_MS), join(B, f, T0 + 2 * DAY_MS)]
    intervals = member_intervals(f, [r for r in records if r.kind == "fund-join"],
                                 [r for r in records if r.kind == "fund-leave"])
    assert intervals[B.public] == [(T0 + 1, None)]


def test_a_leave_with_no_join_and_records_of_another_fund_are_ignored() -> None:
    f, other = fund(), fund(at=T0 + 5)
    intervals = member_intervals(f, [join(C, other, T0 + 6)], [leave(B, f, T0 + 7)])
    assert set(intervals) == {A.public}


def test_a_claim_is_approved_by_distinct_members_other_than_the_claimant() -> None:
    f = fund(approvals=2)
    c = claim(B, f, 5000, T0 + 100)
    records = [join(B, f, T0 + 1), join(C, f, T0 + 2), join(D, f, T0 + 3), c,
               approve(B, c, T0 + 200),  # the claimant: ignored
               approve(C, c, T0 + 300), approve(C, c, T0 + 301),  # twice: once
               approve(E, c, T0 + 302)]  # not a fund member: ignored
    (cs,) = state(f, records, T0 + 1000).claims
    assert cs.status == "open" and [a.hub for a in cs.approvals] == [C.public]
    (cs,) = state(f, [*records, approve(D, c, T0 + 400)], T0 + 1000).claims
    assert cs.status == "approved" and cs.approved_ms == T0 + 400


def test_shares_are_equal_among_the_members_at_approval_except_the_claimant() -> None:
    f = fund(approvals=1, contribution=5000)
    c = claim(A, f, 10_000, T0 + 100)
    records = [join(B, f, T0 + 1), join(C, f, T0 + 2), join(D, f, T0 + 3), c, approve(B, c, T0 + 200),
               join(E, f, T0 + 300)]  # joined after the approval: no share
    (cs,) = state(f, records, T0 + 1000).claims
    shares = {s.hub: s.share for s in cs.shares}
    assert set(shares) == {B.public, C.public, D.public}
    assert sum(shares.values()) == 10_000 and max(shares.values()) - min(shares.values()) <= 1
    assert cs.owed == 10_000


def test_payments_reduce_what_is_owed_and_a_paid_claim_is_paid() -> None:
    f = fund(approvals=1)
    c = claim(A, f, 3000, T0 + 100)
    base = [join(B, f, T0 + 1), join(C, f, T0 + 2), c, approve(B, c, T0 + 200)]
    (cs,) = state(f, [*base, payment(B, c, 1500, T0 + 300), payment(C, c, 1000, T0 + 301)], T0 + 400).claims
    assert {s.hub: (s.paid, s.owed) for s in cs.shares} == {B.public: (1500, 0), C.public: (1000, 500)}
    assert (cs.status, cs.paid, cs.owed) == ("approved", 2500, 500)
    (cs,) = state(f, [*base, payment(B, c, 1500, T0 + 300), payment(C, c, 1500, T0 + 301),
                      payment(D, c, 700, T0 + 302)], T0 + 400).claims
    assert cs.status == "paid" and cs.owed == 0 and cs.gifts == {D.public: 700}


def test_payments_to_a_claim_count_once_it_is_approved() -> None:
    f = fund(approvals=1)
    c = claim(A, f, 2000, T0 + 100)
    early = payment(B, c, 1000, T0 + 150)
    (cs,) = state(f, [join(B, f, T0 + 1), c, early], T0 + 400).claims
    assert cs.status == "open" and cs.paid == 0
    (cs,) = state(f, [join(B, f, T0 + 1), c, early, approve(B, c, T0 + 200)], T0 + 400).claims
    assert cs.paid == 1000


def test_a_member_who_gave_notice_still_shares_a_claim_approved_within_it() -> None:
    f = fund(approvals=1, notice_days=30)
    c = claim(A, f, 2000, T0 + DAY_MS)
    records = [join(B, f, T0 + 1), join(C, f, T0 + 2), leave(C, f, T0 + DAY_MS - 1), c,
               approve(B, c, T0 + 2 * DAY_MS)]
    (cs,) = state(f, records, T0 + 3 * DAY_MS).claims
    assert {s.hub for s in cs.shares} == {B.public, C.public}


def test_a_non_member_claim_and_an_over_capacity_claim_are_ignored() -> None:
    f = fund(contribution=1000, approvals=1)
    outsider = claim(E, f, 100, T0 + 10)
    big = claim(A, f, 2001, T0 + 11)  # two other members: at most 2 × 1000
    ok = claim(A, f, 2000, T0 + 12)
    records = [join(B, f, T0 + 1), join(C, f, T0 + 2), outsider, big, ok,
               approve(B, outsider, T0 + 20), approve(B, big, T0 + 21), approve(B, ok, T0 + 22)]
    statuses = {cs.claim.id: cs.status for cs in state(f, records, T0 + 100).claims}
    assert statuses == {outsider.id: "not-member", big.id: "over-capacity", ok.id: "approved"}


def test_split_gives_the_remainder_to_the_lowest_ids() -> None:
    hubs = [b"\x03" * 32, b"\x01" * 32, b"\x02" * 32]
    assert split(10, hubs) == {b"\x01" * 32: 4, b"\x02" * 32: 3, b"\x03" * 32: 3}
    assert split(5, []) == {}


# -- properties ---------------------------------------------------------------------------------------------

HUBS = KEYS[:6]


@st.composite
def fund_histories(draw: st.DrawFn) -> tuple[Record, list[Record]]:
    f = fund(author=HUBS[0], contribution=draw(st.integers(100, 5000)), approvals=draw(st.integers(1, 3)),
             notice_days=draw(st.integers(0, 3)))
    # Most hubs join at the start, so that many claims have members to approve and share them.
    records: list[Record] = [join(h, f, T0 + i) for i, h in enumerate(HUBS[1:]) if draw(st.integers(0, 4))]
    claims: list[Record] = []
    for i in range(draw(st.integers(0, 30))):
        who = draw(st.sampled_from(HUBS))
        at = T0 + draw(st.integers(0, 6)) * DAY_MS + i
        action = draw(st.sampled_from(["join", "join", "leave", "claim", "approve", "approve", "pay", "pay"]))
        if action == "join":
            records.append(join(who, f, at))
        elif action == "leave":
            records.append(leave(who, f, at))
        elif action == "claim":
            c = claim(who, f, draw(st.integers(1, 3 * f.body["contribution"])), at, f"need {i}")
            claims.append(c)
            records.append(c)
        elif claims and action == "approve":
            records.append(approve(who, draw(st.sampled_from(claims)), at))
        elif claims:
            records.append(payment(who, draw(st.sampled_from(claims)), draw(st.integers(1, 4000)), at))
    return f, records


@settings(max_examples=60, deadline=None)
@given(fund_histories(), st.randoms(use_true_random=False))
def test_owed_is_each_share_less_what_was_paid_in_any_arrival_order(history: tuple[Record, list[Record]],
                                                                    rng: random.Random) -> None:
    f, records = history
    now = T0 + 10 * DAY_MS
    s = state(f, records, now)
    for cs in s.claims:
        if cs.status in ("approved", "paid"):
            assert sum(line.share for line in cs.shares) == cs.claim.body["amount"]
            for line in cs.shares:
                assert line.owed == max(0, line.share - line.paid)
            assert cs.owed == cs.claim.body["amount"] - sum(min(line.paid, line.share) for line in cs.shares)
            assert cs.paid == sum(line.paid for line in cs.shares) + sum(cs.gifts.values())
            assert len(cs.approvals) >= f.body["approvals"]
            assert cs.claim.author not in {line.hub for line in cs.shares}
            assert cs.claim.author not in {a.hub for a in cs.approvals}
        else:
            assert cs.shares == () and cs.owed == 0
    shuffled = records[:]
    rng.shuffle(shuffled)
    assert state(f, shuffled, now) == s
