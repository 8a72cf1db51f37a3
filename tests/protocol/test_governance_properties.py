"""Property tests of the governance rules on random electorates (hypothesis, derandomized: reproducible).

- the result does not depend on the order records arrive in, and replaying records changes nothing;
- weights, turnout, quorum and the outcome match a plain reference count written here, loop by loop, from
  docs/protocol.md §6.9;
- an honest close (naming what the live tally counts) gives the live tally's outcome;
- adopted amendments do not depend on the order either.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import Record, adopted_amendments
from protocol.governance import Result

from .governance_factory import DAY, MIN, T0, Assoc, key

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])
CLOSES = T0 + DAY
OPTIONS = ["yes", "no", "abstain"]


@dataclass
class Case:
    assoc: Assoc
    proposal: Record
    weights: dict[str, int]
    classes: dict[bytes, str]  # founder -> class
    outsiders: list[bytes]


@st.composite
def cases(draw: st.DrawFn) -> Case:
    weights = {f"c{i}": draw(st.integers(0, 3)) for i in range(draw(st.integers(1, 3)))}
    n = draw(st.integers(1, 8))
    members = [key(100 + i) for i in range(n)]
    outsiders = [key(200), key(201)]
    founders = [(k, draw(st.sampled_from(sorted(weights)))) for k in members]
    a = Assoc.create(founders, classes=weights)
    rule = draw(st.sampled_from(["majority", "two-thirds", "consent"]))
    extra: dict[str, Any] = {"abstain": "abstain"} if draw(st.booleans()) else {}
    if rule == "consent":
        extra["objection"] = "no"
        extra.pop("abstain", None) if draw(st.booleans()) else None
    p = a.propose(members[0], options=OPTIONS, rule=rule, quorum=draw(st.integers(0, 100)),
                  quorum_of=draw(st.sampled_from(["members", "weight"])), closes=CLOSES, **extra)
    everyone = members + outsiders
    times = st.integers(p.created_ms - MIN, CLOSES + MIN)
    for _ in range(draw(st.integers(0, 25))):
        a.vote(draw(st.sampled_from(everyone)), p, draw(st.sampled_from([*OPTIONS, "bogus"])), at=draw(times))
    delegations = []
    for _ in range(draw(st.integers(0, 8))):
        scope = p if draw(st.booleans()) else None
        delegations.append(a.delegate(draw(st.sampled_from(members)), draw(st.sampled_from(everyone)), scope,
                                      at=draw(times)))
    for d in delegations:
        if draw(st.integers(0, 3)) == 0:
            a.revoke(key_of(everyone, d.author), d, at=draw(times))
    return Case(a, p, weights, {k.public: c for k, c in founders}, [k.public for k in outsiders])


def key_of(keys: list[Any], public: bytes) -> Any:
    return next(k for k in keys if k.public == public)


def newest(records: list[Record]) -> Record | None:
    best = None
    for r in records:
        if best is None or r.created_ms > best.created_ms or (r.created_ms == best.created_ms and r.id < best.id):
            best = r
    return best


def reference(case: Case) -> dict[str, Any]:
    """docs/protocol.md §6.9, counted the slow and obvious way."""
    p, records = case.proposal, case.assoc.records
    weight = {h: case.weights[c] for h, c in case.classes.items()}
    voters = [h for h, w in weight.items() if w > 0]
    revoked = {r.body["target"] for r in records if r.kind == "revocation" and r.created_ms < CLOSES}
    own: dict[bytes, Record] = {}
    for h in voters:
        mine = [b for b in records if b.kind == "ballot" and b.author == h and b.body["option"] in OPTIONS
                and p.created_ms <= b.created_ms < CLOSES]
        if (b := newest(mine)) is not None:
            own[h] = b
    chosen: dict[bytes, str] = {}
    for h in voters:
        if h in own:
            chosen[h] = own[h].body["option"]
            continue
        for scoped in (True, False):
            mine = [d for d in records if d.kind == "delegation" and d.author == h and d.created_ms < CLOSES
                    and ("proposal" in d.body) == scoped]
            d = newest(mine)
            if d is not None and d.id not in revoked and d.body["to"] != h and d.body["to"] in voters:
                if d.body["to"] in own:
                    chosen[h] = own[d.body["to"]].body["option"]
                break  # a delegation that applies decides, voted or not
    per_option = {o: sum(weight[h] for h, c in chosen.items() if c == o) for o in OPTIONS}
    counts = {o: sum(1 for c in chosen.values() if c == o) for o in OPTIONS}
    body = p.body
    abstained = per_option["abstain"] if body.get("abstain") == "abstain" else 0
    decisive = sum(per_option.values()) - abstained
    if body["quorum_of"] == "members":
        met = len(chosen) * 100 >= body["quorum"] * len(voters)
    else:
        met = sum(weight[h] for h in chosen) * 100 >= body["quorum"] * sum(weight[h] for h in voters)
    if body["rule"] == "majority":
        carried = per_option["yes"] * 2 > decisive
    elif body["rule"] == "two-thirds":
        carried = decisive > 0 and per_option["yes"] * 3 >= decisive * 2
    else:
        carried = counts[body.get("objection", OPTIONS[-1])] == 0
    return {"votes": chosen, "weights": per_option, "counts": counts, "quorum_met": met,
            "outcome": "passed" if met and carried else "failed" if met else "no-quorum"}


def summary(r: Result) -> dict[str, Any]:
    return {"votes": {v.hub: v.option for v in r.votes}, "weights": {t.option: t.weight for t in r.options},
            "counts": {t.option: t.votes for t in r.options}, "quorum_met": r.quorum_met, "outcome": r.outcome}


def full(r: Result) -> tuple[Any, ...]:
    return (r.status, r.outcome, r.options, r.votes, r.quorum_met, r.turnout_weight, r.close)


@SETTINGS
@given(cases())
def test_the_result_matches_a_plain_reference_count(case: Case) -> None:
    assert summary(case.assoc.result(case.proposal, CLOSES)) == reference(case)


@SETTINGS
@given(cases(), st.randoms(use_true_random=False))
def test_the_result_does_not_depend_on_arrival_order_and_replays_change_nothing(case: Case,
                                                                              rnd: random.Random) -> None:
    a, p = case.assoc, case.proposal
    expected = full(a.result(p, CLOSES))
    shuffled = list(a.records)
    rnd.shuffle(shuffled)
    replayed = shuffled + rnd.choices(shuffled, k=min(5, len(shuffled)))
    assert full(a.result(p, CLOSES, records=shuffled)) == expected
    assert full(a.result(p, CLOSES, records=replayed)) == expected


@SETTINGS
@given(cases())
def test_an_honest_close_confirms_the_live_tally(case: Case) -> None:
    a, p = case.assoc, case.proposal
    live = a.result(p, CLOSES)
    a.close_honestly(p.author and key_of([key(100 + i) for i in range(8)], p.author), p, at=CLOSES + MIN)
    # Ballots dated before the closing time that turn up after the close do not change it.
    a.vote(key_of([key(100 + i) for i in range(8)], p.author), p, "no", at=CLOSES - 1)
    closed = a.result(p, CLOSES + 2 * MIN)
    assert closed.status == live.outcome
    assert (closed.options, closed.votes) == (live.options, live.votes)


@SETTINGS
@given(cases(), st.randoms(use_true_random=False))
def test_adopted_amendments_do_not_depend_on_order(case: Case, rnd: random.Random) -> None:
    a, members = case.assoc, [key(100 + i) for i in range(8)]
    proposer = key_of(members, case.proposal.author)
    for i in range(3):
        p = a.propose(proposer, options=OPTIONS, rule=rnd.choice(["majority", "two-thirds"]), quorum=30,
                      closes=CLOSES + (i + 1) * DAY, at=CLOSES + i * DAY,
                      amendment={"amendment_rule": "majority"} if i == 0 else {"reviews_needed": i + 2})
        for k in members:
            if k.public in case.classes and rnd.random() < 0.7:
                a.vote(k, p, rnd.choice(OPTIONS), at=p.created_ms + MIN)
        a.close_honestly(proposer, p, at=p.body["closes"])
    records = list(a.records)
    expected = adopted_amendments(a.charter, records)
    rnd.shuffle(records)
    assert adopted_amendments(a.charter, records) == expected
