"""hub/governance.py, hub/proposals.py and hub/governance_checks.py over a real SQLite store and real records.

What peers send is stored by the convergence rules and ignored by derived state when it has no effect; what
this hub's own user asks to publish is refused first, with one line, when it would have none.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.governance import amendments_in_force, current_terms, member_class
from hub.proposals import proposal_view, proposals_list
from hub.publishing import PublishRefused
from hub.store import DirectoryQuery, Store
from protocol import Record, build_record
from tests.protocol.governance_factory import DAY, MIN, T0, Assoc, key

W1, W2, U1, COUNCIL, ASSESSOR, NEWCOMER, OUTSIDER = (key(i) for i in range(20, 27))
CLOSES = T0 + DAY
NOW = T0 + 3 * DAY  # when the tests read: after every closing time
SEED = random.SystemRandom().randrange(2**32)


def founded() -> Assoc:
    return Assoc.create([(W1, "worker-coop"), (W2, "worker-coop"), (U1, "user-led"), (COUNCIL, "council")],
                        assessors=[ASSESSOR])


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "hub.sqlite3", blobs_dir=tmp_path / "blobs")
    try:
        yield s
    finally:
        s.close()


def ingest(store: Store, *records: Record, now: int = NOW) -> list[str]:
    return [r.status for r in store.ingest([r.raw for r in records], now_ms=now)]


def one_by_one(store: Store, records: list[Record]) -> None:
    """Ingest records one at a time, retrying those that wait for a reference, as gossip would (bounded)."""
    pending = list(records)
    for _ in range(len(records) + 1):
        results = store.ingest([r.raw for r in pending[:1]], now_ms=NOW) if pending else []
        pending = pending[1:] + [r for r, res in zip(pending[:1], results, strict=True)
                                 if res.reason == "missing-reference"]
        if not pending:
            return
    for _ in range(len(records) ** 2):  # whatever still waits: retry until nothing moves
        before = len(pending)
        pending = [r for r in pending if store.ingest([r.raw], now_ms=NOW)[0].reason == "missing-reference"]
        if not pending or len(pending) == before:
            return


def scheme_amendment(a: Assoc) -> dict[str, Any]:
    return {"schemes": [*a.charter.body["schemes"],
                        {"id": "user-led-standard", "name": "User-Led Support Standard",
                         "assessors": [NEWCOMER.public]}]}


def adopt_scheme(a: Assoc) -> Record:
    p = a.propose(W1, rule="two-thirds", quorum=50, closes=CLOSES, amendment=scheme_amendment(a))
    a.vote(W1, p, "yes")
    a.vote(U1, p, "yes")
    a.delegate(W2, U1)
    a.close_honestly(W1, p, at=CLOSES + MIN)
    return p


def mark(a: Assoc, by: Any, at: int, scheme: str = "user-led-standard") -> Record:
    return a.rec(by, "attestation", {"subject": W1.public, "scheme": scheme, "level": "full",
                                     "valid_from": T0, "valid_until": T0 + 400 * DAY}, at)


def test_an_adopted_amendment_takes_effect_everywhere_from_its_closing_time(store: Store) -> None:
    a = founded()
    p = adopt_scheme(a)
    early, late = mark(a, NEWCOMER, CLOSES - 1), mark(a, NEWCOMER, CLOSES + 2 * MIN)
    # The new assessor is not a member: its marks are stored because an amendment proposal names it.
    assert set(ingest(store, a.charter, *a.records)) == {"accepted"}
    [amendment] = store.view(amendments_in_force)
    assert (amendment.record_id, amendment.effective_ms) == (p.id, CLOSES)
    terms = store.terms()
    assert terms is not None and terms.assessors("user-led-standard") == {NEWCOMER.public}
    marks = {m["id"]: m["status"] for m in store.marks_view(W1.public, NOW)}
    assert marks == {early.id_hex: "unauthorised", late.id_hex: "valid"}
    assert store.mark_check(W1.public, "user-led-standard", NOW)["status"] == "valid"
    view = store.view(proposal_view, p.id, NOW)
    assert view is not None and view["status"] == "passed"
    assert view["amendment"]["state"] == "adopted"
    assert view["recount"]["matches"] is True
    roll = {r["hub"]: (r["option"], r["proxy"], r["weight"]) for r in view["roll_call"]}
    assert roll[W2.hub_id] == ("yes", U1.hub_id, 1) and roll[U1.hub_id] == ("yes", None, 2)
    assert [(o["option"], o["votes"], o["weight"]) for o in view["options"]] == [("yes", 3, 4), ("no", 0, 0)]


def test_the_same_records_in_any_order_give_the_same_derived_state(tmp_path: Path) -> None:
    print(f"seed: {SEED}")
    a = founded()
    a.endorse(W1, NEWCOMER, "user-led")
    p = adopt_scheme(a)
    mark(a, NEWCOMER, CLOSES + 2 * MIN)
    guide = a.rec(W1, "guide", {"title": "Rotas", "summary": "s", "body": "b", "license": "CC0-1.0",
                                "tags": [], "language": "en"}, T0 + MIN)
    a.rec(W2, "review", {"guide": guide.id}, T0 + 2 * MIN)
    a.rec(U1, "review", {"guide": guide.id}, T0 + 3 * MIN)
    states = []
    for i in range(3):
        records = [a.charter, *a.records]
        random.Random(SEED + i).shuffle(records)
        with Store(tmp_path / f"hub{i}.sqlite3") as s:
            if i == 2:  # one record at a time, retrying what waits for a reference, as gossip would
                one_by_one(s, records)
            else:
                assert set(ingest(s, *records)) == {"accepted"}
            view = s.view(proposal_view, p.id, NOW)
            assert view is not None
            states.append((s.view(amendments_in_force), s.view(member_class, NEWCOMER.public),
                           s.search(DirectoryQuery(kind="guide", reviewed=True), NOW)[1],
                           {k: view[k] for k in ("status", "options", "roll_call", "amendment")},
                           {m["id"]: m["status"] for m in s.marks_view(W1.public, NOW)}))
    assert states[0] == states[1] == states[2]
    assert states[0][1] == ("user-led", 2) and states[0][2] == 1


def test_ballots_that_have_no_effect_are_stored_and_ignored(store: Store) -> None:
    a = founded()
    p = a.propose(W1, closes=CLOSES)
    ignored = [a.vote(COUNCIL, p, "yes"), a.vote(W2, p, "nonsense"), a.vote(U1, p, "yes", at=CLOSES + 1),
               a.delegate(W2, W2), a.close(W2, p, [], at=CLOSES + MIN), a.close(W1, p, [], at=CLOSES - 1)]
    assert set(ingest(store, a.charter, *a.records)) == {"accepted"}
    view = store.view(proposal_view, p.id, NOW)
    assert view is not None and (view["status"], view["roll_call"], view["close_id"]) == ("closing", [], None)
    assert len(ignored) == 6


def test_references_are_checked_for_kind_and_presence(store: Store) -> None:
    a = founded()
    guide = a.rec(W1, "guide", {"title": "Rotas", "summary": "s", "body": "b", "license": "CC0-1.0",
                                "tags": [], "language": "en"}, T0 + MIN)
    ingest(store, a.charter, guide)
    wrong = a.rec(W2, "ballot", {"proposal": guide.id, "option": "yes"}, T0 + 2 * MIN)
    missing = a.rec(W2, "ballot", {"proposal": bytes(32), "option": "yes"}, T0 + 2 * MIN)
    [r1, r2] = store.ingest([wrong.raw, missing.raw], now_ms=NOW)
    assert (r1.status, r1.reason) == ("refused", "invalid") and "not a proposal" in (r1.detail or "")
    # The assessor an amendment proposal names may publish marks without being a member (protocol §2.3).
    p = a.propose(W1, closes=CLOSES, amendment={"schemes": [{"id": "s2", "name": "S2",
                                                             "assessors": [OUTSIDER.public]}]})
    mark_by_outsider = mark(a, OUTSIDER, T0 + 3 * MIN, scheme="s2")
    assert ingest(store, mark_by_outsider) == ["deferred"]  # not eligible yet
    assert ingest(store, p) == ["accepted"]
    assert store.get_record(mark_by_outsider.id) is not None, "the deferred mark is stored once its assessor is named"
    assert (r2.status, r2.reason) == ("deferred", "missing-reference")  # held until the proposal arrives


# --- local publish checks: one line each, nothing stored ----------------------------------------------------


def refused(store: Store, record: Record, now: int, *words: str) -> str:
    with pytest.raises(PublishRefused) as err:
        store.check_publish(record, now)
    for word in words:
        assert word in str(err.value), (str(err.value), word)
    assert "\n" not in str(err.value)
    return str(err.value)


@pytest.fixture
def voting(store: Store) -> tuple[Store, Assoc, Record]:
    a = founded()
    p = a.propose(W1, closes=CLOSES, options=["yes", "no"])
    assert set(ingest(store, a.charter, p, now=T0 + 5 * MIN)) == {"accepted"}
    return store, a, p


def test_bad_ballots_are_refused_locally(voting: tuple[Store, Assoc, Record]) -> None:
    store, a, p = voting

    def ballot(k: Any, option: str, at: int) -> Record:
        return build_record(k, a.charter.id, "ballot", {"proposal": p.id, "option": option}, at)

    refused(store, ballot(W1, "yes", CLOSES), CLOSES, "voting closed")
    refused(store, ballot(W1, "maybe", T0 + 6 * MIN), T0 + 6 * MIN, "not an option", "yes, no")
    refused(store, ballot(OUTSIDER, "yes", T0 + 6 * MIN), T0 + 6 * MIN, "not a member")
    refused(store, ballot(COUNCIL, "yes", T0 + 6 * MIN), T0 + 6 * MIN, "'council'", "weight 0")
    store.check_publish(ballot(W1, "yes", T0 + 6 * MIN), T0 + 6 * MIN)  # a good one passes


def test_bad_delegations_are_refused_locally(voting: tuple[Store, Assoc, Record]) -> None:
    store, a, p = voting

    def delegation(k: Any, to: Any, **body: Any) -> Record:
        return build_record(k, a.charter.id, "delegation", {"to": to.public, **body}, T0 + 6 * MIN)

    refused(store, delegation(W1, W1), T0 + 6 * MIN, "itself")
    refused(store, delegation(W1, OUTSIDER), T0 + 6 * MIN, "not a member")
    refused(store, delegation(W1, COUNCIL), T0 + 6 * MIN, "non-voting associate")
    refused(store, delegation(COUNCIL, W1), T0 + 6 * MIN, "this hub is a non-voting associate")
    store.check_publish(delegation(W1, W2, proposal=p.id), T0 + 6 * MIN)


def test_closing_early_by_someone_else_or_dishonestly_is_refused(voting: tuple[Store, Assoc, Record]) -> None:
    store, a, p = voting
    yes = a.vote(W2, p, "yes")
    ingest(store, yes, now=T0 + 10 * MIN)

    def close(k: Any, at: int, ballots: list[bytes]) -> Record:
        return build_record(k, a.charter.id, "proposal-close",
                            {"proposal": p.id, "ballots": ballots, "delegations": []}, at)

    refused(store, close(W1, CLOSES - 1, [yes.id]), CLOSES - 1, "voting is open until")
    refused(store, close(W2, CLOSES, [yes.id]), CLOSES, "only the proposer")
    refused(store, close(W1, CLOSES, []), CLOSES, "exactly the 1 ballot(s)")
    honest = close(W1, CLOSES, [yes.id])
    store.check_publish(honest, CLOSES)
    ingest(store, honest, now=CLOSES)
    refused(store, close(W1, CLOSES + 1, [yes.id]), CLOSES + 1, "already closed")


def test_amendments_that_would_leave_no_voter_or_skip_the_rule_are_refused(
        voting: tuple[Store, Assoc, Record]) -> None:
    store, a, _ = voting

    def propose(**body: Any) -> Record:
        b = {"title": "Amend", "options": ["yes", "no"], "rule": "two-thirds", "quorum": 50,
             "quorum_of": "members", "closes": CLOSES, **body}
        return build_record(W1, a.charter.id, "proposal", b, T0 + 6 * MIN)

    nobody = {"classes": [{"name": "worker-coop", "weight": 0}, {"name": "user-led", "weight": 0},
                          {"name": "council", "weight": 0}]}
    refused(store, propose(amendment=nobody), T0 + 6 * MIN, "no voting member")
    refused(store, propose(amendment={"reviews_needed": 3}, rule="majority"), T0 + 6 * MIN,
            "two-thirds with a quorum of 50% of members")
    refused(store, propose(closes=T0), T0 + 6 * MIN, "not in the future")
    store.check_publish(propose(amendment={"reviews_needed": 3}), T0 + 6 * MIN)


def test_reviews_and_classes_are_checked(store: Store) -> None:
    a = founded()
    guide = a.rec(W1, "guide", {"title": "Rotas", "summary": "s", "body": "b", "license": "CC0-1.0",
                                "tags": [], "language": "en"}, T0 + MIN)
    first = a.rec(W2, "review", {"guide": guide.id}, T0 + 2 * MIN)
    ingest(store, a.charter, guide, first)
    own = build_record(W1, a.charter.id, "review", {"guide": guide.id}, T0 + 3 * MIN)
    refused(store, own, T0 + 3 * MIN, "its own guide")
    again = build_record(W2, a.charter.id, "review", {"guide": guide.id}, T0 + 3 * MIN)
    refused(store, again, T0 + 3 * MIN, "already approved")
    endorse = build_record(W1, a.charter.id, "endorsement", {"subject": NEWCOMER.public, "class": "investor"},
                           T0 + 3 * MIN)
    refused(store, endorse, T0 + 3 * MIN, "'investor' is not a class", "worker-coop, user-led, council")


def test_the_proposals_list_puts_open_first_closing_soonest_first(store: Store) -> None:
    a = founded()
    later = a.propose(W1, closes=T0 + 5 * DAY, title="later")
    sooner = a.propose(W1, closes=T0 + 4 * DAY, title="sooner")
    done = a.propose(W1, closes=T0 + DAY, title="done")
    waiting = a.propose(W1, closes=T0 + 2 * DAY, title="waiting")
    a.vote(W1, done, "yes")
    a.close_honestly(W1, done, at=T0 + DAY)
    ingest(store, a.charter, *a.records)
    listed = store.view(proposals_list, T0 + 3 * DAY)
    assert [p["title"] for p in listed["results"]] == ["sooner", "later", "waiting", "done"]
    assert [p["status"] for p in listed["results"]] == ["open", "open", "closing", "passed"]  # quorum 0: 1 yes
    assert listed["total"] == 4 and {later.id_hex, sooner.id_hex, waiting.id_hex} < {
        p["id"] for p in listed["results"]}


def test_current_terms_follow_amendments_and_hub_pages_show_the_class(store: Store) -> None:
    a = founded()
    a.endorse(W1, NEWCOMER, "council")
    ingest(store, a.charter, *a.records)
    assert store.hub_view(NEWCOMER.public, NOW)["class"] == "council"  # type: ignore[index]
    assert store.hub_view(NEWCOMER.public, NOW)["weight"] == 0  # type: ignore[index]
    p = a.propose(W1, rule="two-thirds", quorum=50, closes=CLOSES,
                  amendment={"classes": [{"name": "worker-coop", "weight": 1}, {"name": "user-led", "weight": 2},
                                         {"name": "council", "weight": 1}]})
    a.vote(W1, p, "yes")
    a.vote(U1, p, "yes")
    a.close_honestly(W1, p, at=CLOSES + MIN)
    ingest(store, *a.records[-4:])
    assert store.hub_view(NEWCOMER.public, NOW)["weight"] == 1  # type: ignore[index]
    terms = store.view(current_terms)
    assert terms is not None and terms.classes["council"] == 1


def test_the_hubs_newest_ballot_table_gives_exactly_the_protocols_tally(tmp_path: Path) -> None:
    """hub.governance keeps one ballot per hub and proposal; over random ballots (unknown options, too early,
    too late, ties in time, changes of mind), in random order, the hub's tally is protocol's over them all."""
    print(f"seed: {SEED}")
    rnd = random.Random(SEED)
    a = founded()
    p = a.propose(W1, closes=CLOSES, options=["yes", "no", "abstain"], abstain="abstain")
    voters = [W1, W2, U1, COUNCIL, OUTSIDER]
    for _ in range(60):
        at = rnd.choice([p.created_ms - 1, p.created_ms, p.created_ms + rnd.randrange(DAY), CLOSES - 1, CLOSES])
        a.vote(rnd.choice(voters), p, rnd.choice(["yes", "no", "abstain", "maybe"]), at=at)
    records = [a.charter, *a.records]
    rnd.shuffle(records)
    with Store(tmp_path / "hub.sqlite3") as s:
        one_by_one(s, records)  # the outsider's ballots are refused (not a member) and that is all
        view = s.view(proposal_view, p.id, NOW)
    expected = a.result(p, NOW)
    assert view is not None
    assert [(r["hub"], r["option"], r["ballot"]) for r in view["roll_call"]] == [
        (k.hub_id, v.option, v.ballot_id.hex()) for v in expected.votes
        for k in voters if k.public == v.hub]
    assert [(o["option"], o["votes"], o["weight"]) for o in view["options"]] == [
        (t.option, t.votes, t.weight) for t in expected.options]


def test_an_amendment_of_the_credit_limit_applies_to_payments_booked_after_its_closing_time(store: Store) -> None:
    """Time credits (hub.derive.refresh_credit) ask the terms in force when a payment is booked; an adopted
    amendment that lowers the limit replays the ledger from its closing time, whatever order records came in."""
    a = founded()
    before = a.rec(W1, "credit-payment", {"payee": W2.public, "minutes": 1500, "memo": "cover"}, CLOSES - 10)
    a.rec(W2, "credit-receipt", {"payment": before.id}, CLOSES - 5)
    after = a.rec(U1, "credit-payment", {"payee": W2.public, "minutes": 1500, "memo": "training"}, CLOSES + 10)
    a.rec(W2, "credit-receipt", {"payment": after.id}, CLOSES + 20)
    p = a.propose(W1, rule="two-thirds", quorum=50, closes=CLOSES, amendment={"credit_limit_minutes": 600})
    a.vote(W1, p, "yes")
    a.vote(U1, p, "yes")
    payments, vote = a.records[:4], a.records[4:]
    ingest(store, a.charter, *payments)

    def status(payment: Record) -> str:
        def fn(conn: Any) -> str:
            return str(conn.execute("SELECT status FROM credit_payments WHERE id = ?", (payment.id,)).fetchone()[0])
        return store.view(fn)

    assert (status(before), status(after)) == ("stands", "stands")  # within the charter's 40 hours
    ingest(store, *vote)
    ingest(store, a.close_honestly(W1, p, at=CLOSES + MIN))
    assert (status(before), status(after)) == ("stands", "over-limit")  # 25 hours past the new 10-hour limit
