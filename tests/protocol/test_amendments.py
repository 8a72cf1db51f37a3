"""protocol/amendments.py and the terms-aware rules: classes, marks authorised at their creation, reviews."""

from __future__ import annotations

from typing import Any

from protocol import Record, attestation_status, membership, review_state, terms_at
from protocol.amendments import adopted_amendments, amendment_state
from protocol.charter import base_terms

from .governance_factory import DAY, MIN, T0, Assoc, key

W1, W2, U1, COUNCIL, ASSESSOR, NEWCOMER = (key(i) for i in range(10, 16))
CLOSES = T0 + DAY
USER_LED = {"id": "user-led-standard", "name": "User-Led Support Standard", "assessors": [ASSESSOR.public]}


def assoc(**extra: Any) -> Assoc:
    return Assoc.create([(W1, "worker-coop"), (W2, "worker-coop"), (U1, "user-led"), (COUNCIL, "council")],
                        **extra)


def schemes(a: Assoc) -> list[dict[str, Any]]:
    return [*a.charter.body["schemes"], USER_LED]


def adopt(a: Assoc, amendment: dict[str, Any], *, votes: dict[Any, str] | None = None,
          closes: int = CLOSES, **kw: Any) -> Record:
    """Propose ``amendment`` (by W1), vote, and close honestly; returns the proposal."""
    p = a.propose(W1, closes=closes, amendment=amendment, rule=kw.pop("rule", "two-thirds"),
                  quorum=kw.pop("quorum", 50), **kw)
    for k, option in (votes if votes is not None else {W1: "yes", W2: "yes", U1: "yes"}).items():
        a.vote(k, p, option)
    a.close_honestly(W1, p, at=closes + MIN)
    return p


# --- classes ------------------------------------------------------------------------------------------------


def test_an_admitted_hub_takes_the_class_most_endorsers_named_ties_by_lowest_name() -> None:
    a = assoc(needed=2)
    a.endorse(W1, NEWCOMER, "worker-coop")
    a.endorse(W2, NEWCOMER, "user-led")
    m = membership(a.charter, a.records, [])
    assert m.class_of(NEWCOMER.public) == "user-led" and m.weight(NEWCOMER.public) == 2  # tie: lowest name
    a.endorse(U1, NEWCOMER, "worker-coop")
    m = membership(a.charter, a.records, [])
    assert m.class_of(NEWCOMER.public) == "worker-coop" and m.weight(NEWCOMER.public) == 1


def test_unknown_classes_are_not_counted_and_the_default_is_the_first_listed() -> None:
    a = assoc(needed=1)
    a.endorse(W1, NEWCOMER, "investor")  # not a class of this charter
    m = membership(a.charter, a.records, [])
    assert m.class_of(NEWCOMER.public) == "worker-coop"  # the first class the charter lists
    assert m.voters == {W1.public, W2.public, U1.public, NEWCOMER.public}  # the council has weight 0


def test_an_endorsers_newest_live_endorsement_names_the_class() -> None:
    a = assoc(needed=1)
    a.endorse(W1, NEWCOMER, "worker-coop", at=T0 + MIN)
    newer = a.endorse(W1, NEWCOMER, "council", at=T0 + 2 * MIN)
    assert membership(a.charter, a.records, []).class_of(NEWCOMER.public) == "council"
    revocation = a.revoke(W1, newer, at=T0 + 3 * MIN)
    assert membership(a.charter, a.records, [revocation]).class_of(NEWCOMER.public) == "worker-coop"


# --- amendments ---------------------------------------------------------------------------------------------


def test_a_passed_amendment_takes_effect_from_the_closing_time() -> None:
    a = assoc()
    p = adopt(a, {"schemes": schemes(a), "reviews_needed": 3})
    [amendment] = adopted_amendments(a.charter, [a.charter, *a.records])
    assert (amendment.effective_ms, amendment.record_id) == (CLOSES, p.id)
    assert "user-led-standard" not in terms_at(a.charter, [amendment], CLOSES - 1).schemes
    after = terms_at(a.charter, [amendment], CLOSES)
    assert after.assessors("user-led-standard") == {ASSESSOR.public} and after.reviews_needed == 3


def test_a_mark_is_authorised_only_under_the_terms_at_its_creation() -> None:
    a = assoc()
    adopt(a, {"schemes": schemes(a)})
    amendments = adopted_amendments(a.charter, a.records)

    def mark(at: int) -> Record:
        return a.rec(ASSESSOR, "attestation", {"subject": W1.public, "scheme": "user-led-standard",
                                               "level": "full", "valid_from": T0, "valid_until": T0 + 400 * DAY},
                     at)

    early, late = mark(CLOSES - 1), mark(CLOSES)
    assert attestation_status(early, a.charter, [], CLOSES + DAY, amendments).status == "unauthorised"
    assert attestation_status(late, a.charter, [], CLOSES + DAY, amendments).status == "valid"
    assert attestation_status(late, a.charter, [], CLOSES + DAY).status == "unauthorised"  # no amendments


def test_an_amendment_needs_the_charters_amendment_rule_too() -> None:
    a = assoc()  # amendments need two thirds by default
    p = adopt(a, {"reviews_needed": 5}, rule="majority", votes={W1: "yes", U1: "yes", W2: "no"})
    result = a.result(p, CLOSES + MIN)
    assert result.status == "passed"  # 3 of 4 is a majority of the proposal's own rule...
    state = amendment_state(result, a.charter, [], a.records, [])
    assert state is not None and state.state == "adopted"  # ...and 3/4 ≥ 2/3 too
    b = assoc(amendment_rule="consent")
    q = adopt(b, {"reviews_needed": 5}, rule="majority", votes={W1: "yes", U1: "yes", W2: "no"})
    state = amendment_state(b.result(q, CLOSES + MIN), b.charter, [], b.records, [])
    assert state is not None and state.state == "not-adopted" and "consent" in state.reason
    assert adopted_amendments(b.charter, b.records) == []


def test_an_amendment_that_would_leave_no_voting_member_is_ignored() -> None:
    a = assoc()
    p = adopt(a, {"classes": [{"name": "worker-coop", "weight": 0}, {"name": "user-led", "weight": 0},
                              {"name": "council", "weight": 0}]})
    state = amendment_state(a.result(p, CLOSES + MIN), a.charter, [], a.records, [])
    assert state is not None and (state.state, state.amendment) == ("ignored", None)
    assert adopted_amendments(a.charter, a.records) == []


def test_a_failed_or_unclosed_amendment_changes_nothing() -> None:
    a = assoc()
    adopt(a, {"reviews_needed": 9}, votes={W1: "yes", W2: "no", U1: "no"})
    p = a.propose(W1, closes=CLOSES, amendment={"reviews_needed": 8}, rule="two-thirds")
    a.vote(W1, p, "yes")
    state = amendment_state(a.result(p, CLOSES), a.charter, [], a.records, [])
    assert state is not None and state.state == "pending"
    assert adopted_amendments(a.charter, a.records) == []


def test_new_weights_apply_to_proposals_closing_after_the_amendment_not_to_itself() -> None:
    a = assoc()
    # Make the council a voting class with weight 5: the amendment is decided without the council's vote.
    p = adopt(a, {"classes": [{"name": "worker-coop", "weight": 1}, {"name": "user-led", "weight": 2},
                              {"name": "council", "weight": 5}]}, votes={W1: "yes", W2: "yes", U1: "yes",
                                                                          COUNCIL: "no"})
    assert COUNCIL.public not in {v.hub for v in a.result(p, CLOSES + MIN).votes}
    amendments = adopted_amendments(a.charter, a.records)
    later = a.propose(W1, closes=CLOSES + DAY, at=CLOSES + 2 * MIN)
    a.vote(COUNCIL, later, "no")
    a.vote(W1, later, "yes")
    a.vote(U1, later, "yes")
    r = a.result(later, CLOSES + DAY, amendments=amendments)
    assert {v.hub: v.weight for v in r.votes}[COUNCIL.public] == 5 and r.outcome == "failed"  # 5 no, 3 yes


def test_amendments_chain_in_closing_order_whatever_the_input_order() -> None:
    a = assoc()
    # The first amendment lets a simple majority amend the charter; the second passes by majority only.
    adopt(a, {"amendment_rule": "majority"}, closes=CLOSES)
    second = adopt(a, {"reviews_needed": 7}, rule="majority", closes=CLOSES + DAY,
                   votes={W1: "yes", U1: "yes", W2: "no"})  # weight 3 of 4: also two thirds...
    third = adopt(a, {"reviews_needed": 4}, rule="majority", closes=CLOSES + 2 * DAY,
                  votes={U1: "yes", W2: "no"})  # 2 of 3: majority yes, and two thirds exactly
    forward = adopted_amendments(a.charter, a.records)
    backward = adopted_amendments(a.charter, list(reversed(a.records)))
    assert forward == backward
    assert [x.record_id for x in forward][1:] == [second.id, third.id]
    assert terms_at(a.charter, forward, CLOSES + 2 * DAY).reviews_needed == 4


def test_an_amendment_raising_the_admission_rule_applies_to_everyone_admitted_before() -> None:
    a = assoc(needed=1)
    a.endorse(W1, NEWCOMER, "worker-coop")
    adopt(a, {"endorsements_needed": 2})
    amendments = adopted_amendments(a.charter, a.records)
    now = terms_at(a.charter, amendments, CLOSES)
    assert not membership(a.charter, a.records, a.records, terms=now).is_member(NEWCOMER.public)
    assert membership(a.charter, a.records, a.records, terms=base_terms(a.charter)).is_member(NEWCOMER.public)


# --- reviews ------------------------------------------------------------------------------------------------


def test_a_guide_version_is_reviewed_by_k_distinct_members_other_than_its_author() -> None:
    a = assoc()
    guide = a.rec(W1, "guide", {"title": "Rotas", "summary": "s", "body": "b", "license": "CC0-1.0",
                                "tags": [], "language": "en"}, T0 + MIN)
    members = membership(a.charter, a.records, []).members
    own = a.rec(W1, "review", {"guide": guide.id}, T0 + 2 * MIN)  # the author's own: does not count
    first = a.rec(W2, "review", {"guide": guide.id}, T0 + 3 * MIN)
    a.rec(W2, "review", {"guide": guide.id}, T0 + 4 * MIN)  # twice by one member: counts once
    a.rec(key(40), "review", {"guide": guide.id}, T0 + 4 * MIN)  # not a member
    state = review_state(guide, a.records, [], members, 2)
    assert (state.approvals, state.reviewed) == ((W2.public,), False)
    a.rec(U1, "review", {"guide": guide.id}, T0 + 5 * MIN)
    state = review_state(guide, a.records, [], members, 2)
    assert state.reviewed and set(state.approvals) == {W2.public, U1.public}
    assert own.id not in state.review_ids and first.id in state.review_ids
    withdrawn = a.revoke(U1, a.records[-1], T0 + 6 * MIN)
    assert not review_state(guide, a.records, [withdrawn], members, 2).reviewed


def test_assessors_named_by_amendment_proposals_of_eligible_authors_are_eligible() -> None:
    from protocol import eligible_authors

    a = assoc()
    scheme = {"id": "s2", "name": "S2", "assessors": [ASSESSOR.public]}
    stranger = key(77)
    a.propose(stranger, closes=CLOSES, amendment={"schemes": [{**scheme, "assessors": [key(78).public]}]})
    assert ASSESSOR.public not in eligible_authors(a.charter, a.records)
    a.propose(W1, closes=CLOSES, amendment={"schemes": [scheme]})  # never voted on: still eligible to store
    eligible = eligible_authors(a.charter, a.records)
    assert ASSESSOR.public in eligible and key(78).public not in eligible  # the stranger is not eligible
    a.endorse(ASSESSOR, stranger)  # and the closure continues through the named assessor's endorsements
    eligible = eligible_authors(a.charter, a.records)
    assert {stranger.public, key(78).public} <= eligible
