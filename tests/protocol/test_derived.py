"""Derived state: membership, replaceable rule, current profiles, guide versions (docs/protocol.md §6)."""

from __future__ import annotations

import itertools

from protocol import (
    Record,
    current_guides,
    current_profiles,
    guide_chain,
    membership,
    newest,
    replaceable_key,
    revoked_ids,
)

from .factories import ID_Y, T0, A, B, C, D, E, F, body, charter, endorse, make, revoke

# --- membership ----------------------------------------------------------------------------------------


def test_founders_are_members() -> None:
    ch = charter(founders=[A, B], needed=2)
    m = membership(ch, [], [])
    assert m.founders == {A.public, B.public}
    assert m.members == {A.public, B.public}
    assert m.is_member(A.public) and not m.is_member(C.public)
    assert m.needed == 2


def test_admission_exactly_at_the_threshold_and_not_below() -> None:
    ch = charter(founders=[A, B, C], needed=2)
    one = [endorse(A, D, ch)]
    assert not membership(ch, one, []).is_member(D.public)
    two = [*one, endorse(B, D, ch)]
    m = membership(ch, two, [])
    assert m.is_member(D.public)
    assert m.endorsers[D.public] == {A.public, B.public}


def test_repeated_endorsements_by_one_member_count_once() -> None:
    ch = charter(founders=[A, B], needed=2)
    same = [endorse(A, D, ch, T0 + i) for i in range(3)]
    assert not membership(ch, same, []).is_member(D.public)


def test_endorsements_from_non_members_do_not_count() -> None:
    ch = charter(founders=[A, B], needed=2)
    m = membership(ch, [endorse(A, D, ch), endorse(E, D, ch), endorse(F, D, ch)], [])
    assert not m.is_member(D.public)
    assert m.endorsers[D.public] == {A.public}


def test_chain_admission() -> None:
    # needed=1: A admits D, then D's endorsement admits E, then E's admits F.
    ch = charter(founders=[A, B], needed=1)
    ends = [endorse(E, F, ch), endorse(D, E, ch), endorse(A, D, ch)]
    assert membership(ch, ends, []).members == {A.public, B.public, D.public, E.public, F.public}
    assert membership(ch, ends[:2], []).members == {A.public, B.public}


def test_chain_admission_with_threshold_two() -> None:
    ch = charter(founders=[A, B], needed=2)
    ends = [endorse(A, D, ch), endorse(B, D, ch), endorse(A, E, ch), endorse(D, E, ch)]
    assert membership(ch, ends, []).is_member(E.public)
    assert not membership(ch, [e for e in ends if e.author != D.public], []).is_member(E.public)


def test_membership_is_order_independent() -> None:
    ch = charter(founders=[A], needed=1)
    ends = [endorse(A, B, ch), endorse(B, C, ch), endorse(C, D, ch), endorse(E, F, ch)]
    results = {membership(ch, list(p), []).members for p in itertools.permutations(ends)}
    assert results == {frozenset({A.public, B.public, C.public, D.public})}


def test_withdrawal_by_revocation_drops_below_the_rule() -> None:
    ch = charter(founders=[A, B], needed=2)
    ea, eb = endorse(A, D, ch), endorse(B, D, ch)
    assert membership(ch, [ea, eb], []).is_member(D.public)
    assert not membership(ch, [ea, eb], [revoke(A, ea)]).is_member(D.public)


def test_withdrawal_cascades_to_those_only_admitted_through_the_withdrawn_member() -> None:
    ch = charter(founders=[A], needed=1)
    ab, bc = endorse(A, B, ch), endorse(B, C, ch)
    assert membership(ch, [ab, bc], [revoke(A, ab)]).members == {A.public}


def test_revocation_by_someone_else_is_ignored() -> None:
    ch = charter(founders=[A, B, C], needed=2)
    ea, eb = endorse(A, D, ch), endorse(B, D, ch)
    assert membership(ch, [ea, eb], [revoke(C, ea), revoke(B, ea)]).is_member(D.public)


def test_self_endorsement_is_ignored() -> None:
    ch = charter(founders=[A], needed=1)
    assert not membership(ch, [endorse(D, D, ch)], []).is_member(D.public)
    ch2 = charter(founders=[A, B], needed=2)
    # a founder endorsing itself does not add to anyone's count either
    assert not membership(ch2, [endorse(A, D, ch2), endorse(D, D, ch2)], []).is_member(D.public)


def test_endorsements_of_another_association_are_ignored() -> None:
    ch = charter(founders=[A, B], needed=1)
    other = make(A, "endorsement", {"subject": D.public}, T0, ID_Y)
    assert not membership(ch, [other], []).is_member(D.public)


def test_other_kinds_are_ignored() -> None:
    ch = charter(founders=[A], needed=1)
    profile = make(D, "profile", body("profile"), T0, ch.id)
    assert membership(ch, [profile], [profile]).members == {A.public}


# --- the replaceable rule -------------------------------------------------------------------------------


def pledges_at(*times: int) -> list[Record]:
    return [make(A, "pledge", body("pledge", quantity=q), t) for q, t in enumerate(times)]


def test_newest_created_wins() -> None:
    old, new = pledges_at(T0, T0 + 1)
    assert newest([old, new]) == new
    assert newest([new, old]) == new


def test_tie_lower_id_wins() -> None:
    one, two = pledges_at(T0, T0)
    low = min(one, two, key=lambda r: r.id)
    assert newest([one, two]) == low
    assert newest([two, one]) == low
    assert replaceable_key(low) < replaceable_key(one if low is two else two)


def test_newest_of_nothing_is_none() -> None:
    assert newest([]) is None


def test_current_profiles_per_author() -> None:
    a_old = make(A, "profile", body("profile", name="Old"), T0)
    a_new = make(A, "profile", body("profile", name="New"), T0 + 5)
    b_one = make(B, "profile", body("profile", name="B"), T0 - 5)
    other = make(A, "guide", body("guide"), T0 + 10)
    assert current_profiles([a_new, b_one, a_old, other]) == {A.public: a_new, B.public: b_one}
    assert current_profiles([]) == {}


def test_revoked_ids_reports_the_earliest_own_revocation() -> None:
    target = make(A, "guide", body("guide"))
    late, early = revoke(A, target, T0 + 9), revoke(A, target, T0 + 3)
    foreign = revoke(B, target, T0 + 1)
    assert revoked_ids([late, foreign, early], {target.id: target}) == {target.id: early}
    assert revoked_ids([foreign], {target.id: target}) == {}
    assert revoked_ids([late], {}) == {}


# --- guides ---------------------------------------------------------------------------------------------


def guide(key: object, t: int, supersedes: Record | None = None, title: str = "Guide") -> Record:
    b = body("guide", title=title)
    del b["supersedes"]
    if supersedes is not None:
        b["supersedes"] = supersedes.id
    return make(key, "guide", b, t)  # type: ignore[arg-type]


def test_supersede_chain() -> None:
    v1 = guide(A, T0)
    v2 = guide(A, T0 + 1, v1)
    v3 = guide(A, T0 + 2, v2)
    assert current_guides([v1, v3, v2], []) == [v3]
    assert guide_chain(v3, [v1, v2, v3]) == [v3, v2, v1]
    assert guide_chain(v2, [v1, v2, v3]) == [v2, v1]
    assert guide_chain(v1, [v1, v2, v3]) == [v1]


def test_chain_stops_at_a_missing_version() -> None:
    v1 = guide(A, T0)
    v2 = guide(A, T0 + 1, v1)
    v3 = guide(A, T0 + 2, v2)
    assert guide_chain(v3, [v1, v3]) == [v3]


def test_supersede_by_another_author_is_ignored() -> None:
    v1 = guide(A, T0)
    hijack = guide(B, T0 + 1, v1)
    assert {g.id for g in current_guides([v1, hijack], [])} == {v1.id, hijack.id}
    assert guide_chain(hijack, [v1, hijack]) == [hijack]


def test_revoking_the_newest_version_withdraws_the_guide() -> None:
    v1 = guide(A, T0)
    v2 = guide(A, T0 + 1, v1)
    assert current_guides([v1, v2], [revoke(A, v2)]) == []


def test_revoking_an_old_version_leaves_the_newest() -> None:
    v1 = guide(A, T0)
    v2 = guide(A, T0 + 1, v1)
    assert current_guides([v1, v2], [revoke(A, v1)]) == [v2]


def test_revocation_by_another_author_is_ignored() -> None:
    v1 = guide(A, T0)
    assert current_guides([v1], [revoke(B, v1)]) == [v1]


def test_fork_leaves_both_current_newest_first() -> None:
    v1 = guide(A, T0)
    left, right = guide(A, T0 + 1, v1, "Left"), guide(A, T0 + 2, v1, "Right")
    other = guide(B, T0 + 3)
    assert current_guides([v1, left, right, other], []) == [other, right, left]
