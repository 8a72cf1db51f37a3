"""An offer's tally and lifecycle (docs/protocol.md §6.4)."""

from __future__ import annotations

from collections.abc import Sequence

from protocol import OFFER_TRANSITIONS, HubKey, OfferTally, Record, offer_tally

from .factories import DAY, T0, A, B, C, D, E, body, charter, make, revoke

CH = charter(founders=[A, B, C, D], needed=2)
MEMBERS = frozenset({A.public, B.public, C.public, D.public})
DEADLINE = T0 + 30 * DAY
# tiers: 1 → 900, 100 → 800, 500 → 700; min_total 100
OFFER = make(A, "offer", body("offer", deadline=DEADLINE), T0, CH.id)


def pledge(key: HubKey, quantity: int, t: int = T0 + 1, offer: Record = OFFER) -> Record:
    return make(key, "pledge", {"offer": offer.id, "quantity": quantity}, t, CH.id)


def close(outcome: str, pledges: list[Record], t: int = T0 + 40 * DAY, key: HubKey = A) -> Record:
    b = {"offer": OFFER.id, "outcome": outcome, "pledges": [p.id for p in pledges]}
    return make(key, "offer-close", b, t, CH.id)


def tally(pledges: list[Record], closes: Sequence[Record] = (), revocations: Sequence[Record] = (),
          now_ms: int = T0 + DAY, members: frozenset[bytes] = MEMBERS) -> OfferTally:
    return offer_tally(OFFER, pledges, closes, revocations, members, now_ms)


def test_no_pledges() -> None:
    t = tally([])
    summary = (t.status, t.total, t.pledges, t.tier, t.proceeds, t.close_id)
    assert summary == ("open", 0, (), None, False, None)


def test_open_counts_the_newest_pledge_per_member() -> None:
    old, new = pledge(B, 70, T0 + 1), pledge(B, 30, T0 + 2)
    t = tally([new, old, pledge(C, 5)])
    assert t.total == 35
    assert [(line.hub, line.quantity) for line in t.pledges] == [(B.public, 30), (C.public, 5)]
    assert t.pledges[0].pledge_id == new.id and t.pledges[0].created_ms == T0 + 2


def test_tie_between_a_members_pledges_goes_to_the_lower_id() -> None:
    one, two = pledge(B, 10, T0 + 1), pledge(B, 20, T0 + 1)
    low = min(one, two, key=lambda r: r.id)
    assert tally([one, two]).total == low.body["quantity"]


def test_non_member_pledges_are_ignored() -> None:
    t = tally([pledge(B, 10), pledge(E, 1000)])
    assert t.total == 10
    assert tally([pledge(E, 1000)], members=MEMBERS | {E.public}).total == 1000


def test_zero_quantity_withdraws() -> None:
    t = tally([pledge(B, 50, T0 + 1), pledge(B, 0, T0 + 2), pledge(C, 7)])
    assert t.total == 7
    assert [line.hub for line in t.pledges] == [C.public]


def test_pledges_after_the_deadline_are_ignored() -> None:
    on_time, late = pledge(B, 10, DEADLINE), pledge(B, 99, DEADLINE + 1)
    assert tally([on_time, late], now_ms=DEADLINE + 2).total == 10
    assert tally([late], now_ms=DEADLINE + 2).total == 0


def test_pledges_for_another_offer_are_ignored() -> None:
    other = make(A, "offer", body("offer", title="Aprons", deadline=DEADLINE), T0, CH.id)
    assert tally([pledge(B, 10, offer=other), pledge(C, 3)]).total == 3


def test_tier_reached() -> None:
    assert tally([pledge(B, 99)]).tier == (1, 900)
    assert tally([pledge(B, 60), pledge(C, 40)]).tier == (100, 800)
    assert tally([pledge(B, 499), pledge(C, 1)]).tier == (500, 700)
    assert tally([pledge(B, 10_000)]).tier == (500, 700)


def test_min_total() -> None:
    assert not tally([pledge(B, 99)]).proceeds
    assert tally([pledge(B, 100)]).proceeds


def test_past_deadline() -> None:
    assert tally([], now_ms=DEADLINE).status == "open"
    assert tally([], now_ms=DEADLINE + 1).status == "past-deadline"


def test_closed_awarded_counts_exactly_the_named_pledges() -> None:
    named_b, named_c = pledge(B, 60, T0 + 1), pledge(C, 50, T0 + 1)
    newer_b = pledge(B, 5, T0 + 2)  # newer than the named one, yet the close decides
    unnamed_d = pledge(D, 1000, T0 + 3)
    c = close("awarded", [named_b, named_c])
    t = tally([named_b, named_c, newer_b, unnamed_d], [c], now_ms=T0 + 50 * DAY)
    assert t.status == "awarded"
    assert t.total == 110
    assert {line.pledge_id for line in t.pledges} == {named_b.id, named_c.id}
    assert t.tier == (100, 800) and t.proceeds
    assert t.close_id == c.id


def test_close_counts_named_pledges_whatever_the_clock_said() -> None:
    late = pledge(B, 40, DEADLINE + 5)
    t = tally([late], [close("awarded", [late])], now_ms=DEADLINE + 10)
    assert t.total == 40


def test_close_before_the_deadline() -> None:
    p = pledge(B, 100)
    t = tally([p], [close("awarded", [p], t=T0 + 2)], now_ms=T0 + 3)
    assert t.status == "awarded" and t.total == 100


def test_cancelled() -> None:
    p = pledge(B, 100)
    t = tally([p], [close("cancelled", [])], now_ms=T0 + 50 * DAY)
    assert t.status == "cancelled"
    assert t.total == 0


def test_revoked_offer_is_cancelled() -> None:
    t = tally([pledge(B, 100)], revocations=[revoke(A, OFFER)])
    assert t.status == "cancelled"
    assert t.close_id is None


def test_revocation_by_someone_else_does_not_cancel() -> None:
    assert tally([], revocations=[revoke(B, OFFER)]).status == "open"


def test_close_by_non_author_is_ignored() -> None:
    p = pledge(B, 100)
    t = tally([p], [close("cancelled", [], key=B)], now_ms=T0 + 50 * DAY)
    assert t.status == "past-deadline"
    assert t.close_id is None
    assert t.total == 100


def test_earliest_close_wins() -> None:
    p = pledge(B, 100)
    first, second = close("cancelled", [], t=T0 + 5), close("awarded", [p], t=T0 + 6)
    for order in ([first, second], [second, first]):
        t = tally([p], order, now_ms=T0 + 7)
        assert (t.status, t.close_id, t.total) == ("cancelled", first.id, 0)


def test_close_for_another_offer_is_ignored() -> None:
    c = make(A, "offer-close", {"offer": CH.id, "outcome": "cancelled", "pledges": []}, T0 + 5, CH.id)
    assert tally([], [c]).status == "open"


def test_lines_are_sorted_by_quantity_then_hub() -> None:
    t = tally([pledge(B, 5), pledge(C, 50), pledge(D, 5)])
    assert [line.quantity for line in t.pledges] == [50, 5, 5]
    assert t.pledges[1].hub < t.pledges[2].hub


def test_lifecycle_table_final_states_have_no_exits() -> None:
    assert OFFER_TRANSITIONS["awarded"] == {} and OFFER_TRANSITIONS["cancelled"] == {}
    reachable = {target for moves in OFFER_TRANSITIONS.values() for target in moves.values()}
    assert reachable | {"open"} == set(OFFER_TRANSITIONS)
