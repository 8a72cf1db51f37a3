"""protocol/governance.py: proposals, ballots, proxies, closes and results — known answers for every rule.

Weights in the association below: worker-coop 1, user-led 2, council 0 (a non-voting associate).
"""

from __future__ import annotations

import pytest

from protocol.governance import PROPOSAL_TRANSITIONS, decide, quorum_met

from .governance_factory import DAY, MIN, T0, Assoc, key

W1, W2, U1, U2, COUNCIL, OUTSIDER = (key(i) for i in range(6))
CLOSES = T0 + DAY


def assoc(**extra: object) -> Assoc:
    """Founders: two worker co-ops (weight 1), two user-led organisations (weight 2), a council (0)."""
    return Assoc.create([(W1, "worker-coop"), (W2, "worker-coop"), (U1, "user-led"), (U2, "user-led"),
                         (COUNCIL, "council")], **extra)  # type: ignore[arg-type]


# --- the rules, as integers -------------------------------------------------------------------------------


def test_majority_needs_more_than_half() -> None:
    assert decide("majority", 3, 5, 0) and not decide("majority", 2, 4, 0) and not decide("majority", 0, 0, 0)


def test_two_thirds_is_exact_at_the_boundary() -> None:
    assert decide("two-thirds", 2, 3, 0)  # exactly two thirds passes
    assert not decide("two-thirds", 1999, 3000, 0)  # 0.6663…
    assert decide("two-thirds", 2000, 3000, 0)
    assert not decide("two-thirds", 0, 0, 0)  # nobody decisive: nothing carries


def test_consent_fails_on_one_objection() -> None:
    assert decide("consent", 0, 0, 0) and not decide("consent", 100, 100, 1)


def test_quorum_is_a_percentage_in_integers() -> None:
    assert quorum_met(50, 2, 4) and not quorum_met(50, 1, 3) and quorum_met(0, 0, 0)
    assert quorum_met(33, 1, 3) and not quorum_met(34, 1, 3)


def test_the_lifecycle_table_has_final_states() -> None:
    finals = {s for s, moves in PROPOSAL_TRANSITIONS.items() if not moves}
    assert finals == {"passed", "failed", "no-quorum"}


# --- counting -----------------------------------------------------------------------------------------------


def test_weighted_majority_passes_and_the_roll_call_shows_classes() -> None:
    a = assoc()
    p = a.propose(W1, closes=CLOSES)
    a.vote(W1, p, "no")
    a.vote(W2, p, "no")
    a.vote(U1, p, "yes")  # weight 2: 2 yes against 2 no is not a majority
    r = a.result(p, CLOSES - 1)
    assert (r.status, r.outcome) == ("open", "failed")
    assert [(t.option, t.votes, t.weight) for t in r.options] == [("yes", 1, 2), ("no", 2, 2)]
    a.vote(U2, p, "yes")
    r = a.result(p, CLOSES - 1)
    assert r.outcome == "passed" and (r.for_weight, r.decisive_weight) == (4, 6)
    assert (r.voters, r.electorate_weight, r.turnout, r.turnout_weight) == (4, 6, 4, 6)
    lines = {v.hub: (v.cls, v.weight, v.option, v.proxy) for v in r.votes}
    assert lines[U1.public] == ("user-led", 2, "yes", None)
    assert COUNCIL.public not in lines  # weight 0: not in the electorate's voters


def test_two_thirds_at_the_boundary_with_weights() -> None:
    a = assoc()
    p = a.propose(W1, rule="two-thirds", closes=CLOSES)
    a.vote(U1, p, "yes")  # 2
    a.vote(W1, p, "no")   # 1: 2 of 3 is exactly two thirds
    assert a.result(p, CLOSES).outcome == "passed"
    a.vote(W2, p, "no")   # 2 of 4 is not
    assert a.result(p, CLOSES).outcome == "failed"


def test_consent_with_one_objection_fails_and_standing_aside_does_not_block() -> None:
    a = assoc()
    p = a.propose(W1, rule="consent", options=["agree", "stand aside", "object"], abstain="stand aside",
                  closes=CLOSES)
    a.vote(W1, p, "agree")
    a.vote(U1, p, "stand aside")
    assert a.result(p, CLOSES).outcome == "passed"
    a.vote(W2, p, "object")
    r = a.result(p, CLOSES)
    assert (r.outcome, r.objections) == ("failed", 1)


def test_consent_objection_defaults_to_the_last_option_and_may_be_named() -> None:
    a = assoc()
    p = a.propose(W1, rule="consent", options=["agree", "block", "abstain"], objection="block", closes=CLOSES)
    a.vote(W1, p, "abstain")
    assert a.result(p, CLOSES).outcome == "passed"  # "abstain" is last but not the objection here
    q = a.propose(W1, rule="consent", options=["agree", "object"], closes=CLOSES)
    a.vote(W1, q, "object")
    assert a.result(q, CLOSES).outcome == "failed"


def test_abstentions_count_for_quorum_not_for_the_decision() -> None:
    a = assoc()
    p = a.propose(W1, options=["yes", "no", "abstain"], abstain="abstain", quorum=75, closes=CLOSES)
    a.vote(W1, p, "yes")
    a.vote(U1, p, "abstain")
    assert a.result(p, CLOSES).outcome == "no-quorum"  # 2 of 4 voters
    a.vote(U2, p, "abstain")
    r = a.result(p, CLOSES)
    assert (r.outcome, r.decisive_weight, r.quorum_needed) == ("passed", 1, 3)  # 1 of 1 decisive


def test_quorum_of_weight() -> None:
    a = assoc()
    p = a.propose(W1, quorum=50, quorum_of="weight", closes=CLOSES)
    a.vote(W1, p, "yes")
    a.vote(W2, p, "yes")  # 2 of weight 6: 33%
    assert a.result(p, CLOSES).outcome == "no-quorum"
    a.vote(U1, p, "no")  # 4 of 6
    r = a.result(p, CLOSES)
    assert (r.outcome, r.quorum_needed, r.quorum_met) == ("failed", 3, True)


def test_no_quorum_whatever_the_votes() -> None:
    a = assoc()
    p = a.propose(W1, quorum=50, closes=CLOSES)
    a.vote(U1, p, "yes")
    r = a.result(p, CLOSES)
    assert (r.outcome, r.quorum_met, r.turnout, r.quorum_needed) == ("no-quorum", False, 1, 2)


def test_ballots_that_do_not_count() -> None:
    a = assoc()
    p = a.propose(W1, closes=CLOSES)
    a.vote(COUNCIL, p, "yes")  # weight 0
    a.vote(OUTSIDER, p, "yes")  # not a member
    a.vote(W1, p, "maybe")  # not an option
    a.vote(W2, p, "yes", at=CLOSES)  # at the closing time: too late
    a.vote(U1, p, "yes", at=p.created_ms - 1)  # before the proposal existed
    other = a.propose(W2, closes=CLOSES)
    a.vote(U2, other, "yes")  # another proposal
    r = a.result(p, CLOSES)
    assert r.votes == () and r.outcome == "failed"


def test_the_newest_counting_ballot_wins_and_replays_change_nothing() -> None:
    a = assoc()
    p = a.propose(W1, closes=CLOSES)
    first = a.vote(W1, p, "no", at=T0 + 3 * MIN)
    a.vote(W1, p, "yes", at=T0 + 4 * MIN)
    a.vote(W1, p, "perhaps", at=T0 + 5 * MIN)  # not an option: the newest *counting* ballot wins
    r = a.result(p, CLOSES)
    assert [v.option for v in r.votes] == ["yes"]
    again = a.result(p, CLOSES, records=[*a.records, first, first])
    assert again.votes == r.votes


def test_a_tie_in_time_goes_to_the_lower_id() -> None:
    a = assoc()
    p = a.propose(W1, closes=CLOSES)
    x, y = a.vote(W1, p, "yes", at=T0 + 3 * MIN), a.vote(W1, p, "no", at=T0 + 3 * MIN)
    assert [v.ballot_id for v in a.result(p, CLOSES).votes] == [min(x.id, y.id)]


# --- proxies ------------------------------------------------------------------------------------------------


def test_a_proxy_votes_with_the_delegators_weight_and_own_ballot_overrides() -> None:
    a = assoc()
    p = a.propose(W1, closes=CLOSES)
    d = a.delegate(U1, W1)  # for every proposal
    b = a.vote(W1, p, "yes")
    r = a.result(p, CLOSES)
    line = next(v for v in r.votes if v.hub == U1.public)
    assert (line.option, line.weight, line.proxy, line.delegation_id, line.ballot_id) == (
        "yes", 2, W1.public, d.id, b.id)
    assert r.counted_ids() == (frozenset({b.id}), frozenset({d.id}))
    a.vote(U1, p, "no")
    r = a.result(p, CLOSES)
    assert {v.hub: (v.option, v.proxy) for v in r.votes}[U1.public] == ("no", None)


def test_one_hop_only() -> None:
    a = assoc()
    p = a.propose(W1, closes=CLOSES)
    a.delegate(U1, W2)
    a.delegate(W2, W1)
    a.vote(W1, p, "yes")
    hubs = {v.hub for v in a.result(p, CLOSES).votes}
    assert hubs == {W1.public, W2.public}  # U1's proxy W2 did not vote itself


def test_delegations_that_do_not_apply() -> None:
    a = assoc()
    p = a.propose(W1, closes=CLOSES)
    a.vote(W1, p, "yes")
    a.delegate(W2, W2)  # to itself
    a.delegate(U1, OUTSIDER)  # to a non-member
    a.delegate(U2, COUNCIL)  # to a non-voting associate
    a.delegate(COUNCIL, W1)  # from a non-voting associate: nothing to give
    assert {v.hub for v in a.result(p, CLOSES).votes} == {W1.public}
    a.delegate(W2, W1, at=CLOSES)  # at the closing time: too late
    assert {v.hub for v in a.result(p, CLOSES).votes} == {W1.public}


def test_a_scoped_delegation_wins_and_revocation_falls_back_to_the_general_one() -> None:
    a = assoc()
    p = a.propose(W1, closes=CLOSES)
    a.vote(W1, p, "yes")
    a.vote(W2, p, "no")
    a.delegate(U1, W1, at=T0 + 5 * MIN)  # general
    scoped = a.delegate(U1, W2, p, at=T0 + 3 * MIN)  # older, but for this proposal
    assert {v.hub: v.option for v in a.result(p, CLOSES).votes}[U1.public] == "no"
    a.revoke(U1, scoped, at=T0 + 6 * MIN)
    assert {v.hub: v.option for v in a.result(p, CLOSES).votes}[U1.public] == "yes"


def test_the_newest_delegation_replaces_older_ones_and_revoking_it_leaves_none() -> None:
    a = assoc()
    p = a.propose(W1, closes=CLOSES)
    a.vote(W1, p, "yes")
    a.vote(W2, p, "no")
    a.delegate(U1, W1, at=T0 + 3 * MIN)
    newer = a.delegate(U1, W2, at=T0 + 4 * MIN)
    assert {v.hub: v.option for v in a.result(p, CLOSES).votes}[U1.public] == "no"
    a.revoke(U1, newer, at=T0 + 5 * MIN)
    assert U1.public not in {v.hub for v in a.result(p, CLOSES).votes}
    late = a.revoke(U1, newer, at=CLOSES)  # a revocation after the closing time changes nothing
    assert late.created_ms == CLOSES


# --- statuses and the close ---------------------------------------------------------------------------------


def test_open_closing_then_closed_with_exactly_the_named_ballots() -> None:
    a = assoc()
    p = a.propose(W1, closes=CLOSES)
    a.vote(W1, p, "yes")
    a.vote(U1, p, "yes")
    assert a.result(p, CLOSES - 1).status == "open"
    assert a.result(p, CLOSES).status == "closing"
    close = a.close_honestly(W1, p, at=CLOSES + MIN)
    r = a.result(p, CLOSES + MIN)
    assert (r.status, r.close) == ("passed", close)
    # A ballot dated before the closing time that turns up after the close changes nothing.
    a.vote(U2, p, "no", at=CLOSES - 1)
    a.vote(W2, p, "no", at=CLOSES - 1)
    assert a.result(p, CLOSES + DAY).status == "passed"
    assert a.result(p, CLOSES + DAY, records=[r for r in a.records if r != close]).outcome == "failed"


def test_closes_by_others_or_too_early_have_no_effect_and_the_earliest_decides() -> None:
    a = assoc()
    p = a.propose(W1, closes=CLOSES)
    yes = a.vote(W1, p, "yes")
    no = a.vote(W2, p, "no")
    a.close(W2, p, [no], at=CLOSES)  # not the proposer
    a.close(W1, p, [no], at=CLOSES - 1)  # before the closing time
    assert a.result(p, CLOSES + MIN).status == "closing"
    first = a.close(W1, p, [yes], at=CLOSES + MIN)
    a.close(W1, p, [no], at=CLOSES + 2 * MIN)
    r = a.result(p, CLOSES + 3 * MIN)
    assert (r.close, r.status) == (first, "passed")


def test_a_close_cannot_count_ballots_that_do_not_count() -> None:
    a = assoc()
    p = a.propose(W1, closes=CLOSES)
    bad = [a.vote(COUNCIL, p, "yes"), a.vote(OUTSIDER, p, "yes"), a.vote(W2, p, "yes", at=CLOSES + 1)]
    a.close(W1, p, bad)
    r = a.result(p, CLOSES)
    assert (r.status, r.votes) == ("failed", ())


@pytest.mark.parametrize("members_then", [True, False])
def test_the_electorate_is_membership_at_the_closing_time(members_then: bool) -> None:
    a = assoc(needed=1)
    newcomer = key(9)
    at = CLOSES - MIN if members_then else CLOSES
    a.endorse(W1, newcomer, "worker-coop", at=at)
    p = a.propose(W1, closes=CLOSES)
    a.vote(newcomer, p, "yes")
    r = a.result(p, CLOSES)
    assert (newcomer.public in r.electorate.voters) is members_then
    assert r.turnout == (1 if members_then else 0)
