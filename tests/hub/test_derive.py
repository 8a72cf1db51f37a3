"""hub/derive.py: derived tables kept incrementally agree with protocol's pure functions."""

from __future__ import annotations

import random
import sqlite3
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.queries import DirectoryQuery
from hub.store import Store
from protocol import Record, current_guides, current_profiles, membership, offer_tally

from .factory import DAY, Association, Sample, hub_key, raws


def results_by_id(store: Store, now_ms: int, **filters: object) -> dict[str, dict[str, object]]:
    found, total = store.search(DirectoryQuery(limit=200, **filters), now_ms)  # type: ignore[arg-type]
    assert total == len(found)
    return {r["id"]: r for r in found}


def ingest_ok(store: Store, records: list[Record], now_ms: int) -> None:
    results = store.ingest(raws(records), now_ms=now_ms)
    assert [r.status for r in results] == ["accepted"] * len(records), results


# -- membership ----------------------------------------------------------------------------------------------


def test_admission_by_endorsements_changes_flags_not_storage(loaded: tuple[Store, Sample]) -> None:
    """Membership is derived state: a sponsored applicant's records are stored and listed as "not a member";
    a second endorsement makes it a member; a withdrawn endorsement makes it a non-member again, but what it
    publishes is still stored (eligibility is monotone, docs/protocol.md §2.3), only marked."""
    store, s = loaded
    a, applicant = s.a, s.applicant
    hub_id = applicant.hub_id
    assert results_by_id(store, a.now)[hub_id]["member"] is False
    assert store.is_eligible(applicant.public) and not store.is_member(applicant.public)  # one sponsor of two
    early = a.guide(applicant, "Before admission")
    ingest_ok(store, [early], a.now)
    assert results_by_id(store, a.now)[early.id_hex]["member"] is False
    endorsement = a.endorse(a.founders[1], applicant)
    ingest_ok(store, [endorsement], a.now)
    assert store.is_member(applicant.public)
    found = results_by_id(store, a.now)
    assert found[hub_id]["member"] is True and found[early.id_hex]["member"] is True
    assert store.counts()["members"] == 4
    guide = a.guide(applicant, "Now we may publish")
    ingest_ok(store, [guide], a.now)
    assert results_by_id(store, a.now)[guide.id_hex]["member"] is True
    view = store.hub_view(applicant.public, a.now)
    assert view is not None and view["member"] and not view["founder"]
    assert view["endorsers"] == sorted(k.hub_id for k in a.founders[:2])

    # Withdrawal: one endorser revokes; the hub is no longer a member, everywhere.
    ingest_ok(store, [a.revoke(a.founders[1], endorsement)], a.now)
    assert not store.is_member(applicant.public)
    found = results_by_id(store, a.now)
    assert found[hub_id]["member"] is False and found[guide.id_hex]["member"] is False
    late = a.guide(applicant, "After withdrawal")
    ingest_ok(store, [late], a.now)  # still eligible: stored, listed as not a member
    assert results_by_id(store, a.now)[late.id_hex]["member"] is False
    assert store.status(applicant.hub_id, a.now)["member"] is False


def test_an_endorsement_by_a_newly_admitted_member_counts(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    a = s.a
    x, y = hub_key("x"), hub_key("y")
    ingest_ok(store, [a.endorse(a.founders[0], x), a.endorse(a.founders[1], x)], a.now)
    ingest_ok(store, [a.endorse(x, y), a.endorse(a.founders[2], y)], a.now)
    assert store.is_member(y.public)
    m = store.membership()
    assert m is not None and m.endorsers[y.public] == frozenset({x.public, a.founders[2].public})


# -- profiles, guides, offers, marks -----------------------------------------------------------------------


def test_the_newest_profile_is_current_whatever_the_arrival_order(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    a, f0 = s.a, s.a.founders[0]
    newer = a.profile(f0, "Gofal Gwynedd Cyf", regions=["Conwy"])
    older = a.profile(f0, "Gofal (draft)", at=s["profile0"].created_ms - 1)
    ingest_ok(store, [newer], a.now)
    ingest_ok(store, [older], a.now)
    found = results_by_id(store, a.now, kind="hub")
    assert found[f0.hub_id]["title"] == "Gofal Gwynedd Cyf"
    assert found[f0.hub_id]["regions"] == ["Conwy"]
    assert not results_by_id(store, a.now, region="gwynedd", kind="hub").get(f0.hub_id)
    assert len(found) == 4  # one entry per hub, not per profile version


def test_only_current_guides_are_listed(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    a = s.a
    listed = results_by_id(store, a.now, kind="guide")
    assert set(listed) == {s["guide_v2"].id_hex, s["guide_rota"].id_hex}
    view = store.guide_view(s["guide_v1"].id)
    assert view is not None and view["state"] == "superseded"
    assert view["superseded_by"] == [s["guide_v2"].id_hex]
    ingest_ok(store, [a.revoke(a.founders[0], s["guide_v2"], "Out of date")], a.now)
    assert set(results_by_id(store, a.now, kind="guide")) == {s["guide_rota"].id_hex}
    view = store.guide_view(s["guide_v2"].id)
    assert view is not None and view["state"] == "revoked"
    assert view["revocation"]["body"]["reason"] == "Out of date"
    assert [v["id"] for v in view["versions"]] == [s["guide_v2"].id_hex, s["guide_v1"].id_hex]
    assert store.guide_view(s["offer"].id) is None


def test_offer_tally_matches_protocol(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    a = s.a
    f0, f1, f2 = a.founders
    offer = s["offer"]
    later = a.pledge(f0, offer, 120)  # replaces founder 0's 60
    withdrawn = a.pledge(f2, offer, 0)  # founder 2 withdraws
    stranger = a.pledge(f1, offer, 400)
    ingest_ok(store, [later, withdrawn, stranger], a.now)
    pledges = [s["pledge0"], s["pledge2"], later, withdrawn, stranger]
    members = frozenset(k.public for k in a.founders)
    for now in (a.now, offer.body["deadline"] + 1):
        view = store.offer_view(offer.id, now)
        expected = offer_tally(offer, pledges, [], [], members, now)
        assert view is not None
        assert view["tally"]["total"] == expected.total == 520
        assert view["tally"]["status"] == expected.status
        assert [p["pledge_id"] for p in view["tally"]["pledges"]] == [
            line.pledge_id.hex() for line in expected.pledges]
        assert view["tally"]["tier"] == {"min_quantity": expected.tier[0], "unit_price": expected.tier[1]}
    close = a.close(f1, offer, [later], "awarded")
    ingest_ok(store, [close], a.now)
    view = store.offer_view(offer.id, a.now)
    expected = offer_tally(offer, pledges, [close], [], members, a.now)
    assert view is not None and view["tally"]["status"] == expected.status == "awarded"
    assert view["tally"]["total"] == expected.total == 120 and view["tally"]["close_id"] == close.id_hex
    assert store.offer_view(s["guide_rota"].id, a.now) is None


def test_open_offers_filter_by_close_deadline_and_revocation(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    a = s.a
    f1 = a.founders[1]
    soon = a.offer(f1, "Aprons", deadline=a.now + DAY)
    withdrawn = a.offer(f1, "Masks")
    closed = a.offer(f1, "Hoists")
    ingest_ok(store, [soon, withdrawn, closed], a.now)
    ingest_ok(store, [a.revoke(f1, withdrawn), a.close(f1, closed, [], "cancelled")], a.now)
    now = a.now
    open_now = results_by_id(store, now, open=True)
    assert set(open_now) == {s["offer"].id_hex, soon.id_hex}
    assert {r["status"] for r in open_now.values()} == {"open"}
    assert set(results_by_id(store, now + 2 * DAY, open=True)) == {s["offer"].id_hex}
    offers = results_by_id(store, now, kind="offer")
    assert withdrawn.id_hex not in offers  # revoked offers are not listed at all
    assert offers[closed.id_hex]["status"] == "cancelled"
    assert results_by_id(store, now + 2 * DAY, kind="offer")[soon.id_hex]["status"] == "past-deadline"


def test_marks_filter_follows_validity_and_revocation(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    a = s.a
    f0, f1 = a.founders[0], a.founders[1]
    att = s["attest0"]
    start, until = att.body["valid_from"], att.body["valid_until"]
    holders = lambda now: {r["author"] for r in results_by_id(store, now, mark="care-quality").values()}  # noqa: E731
    assert holders(start) == {f0.hub_id}
    assert holders(start - 1) == set()  # not yet valid
    assert holders(until) == set()  # expired
    assert store.mark_check(f0.public, "care-quality", until)["status"] == "expired"
    # Guides by a mark holder match the mark filter too.
    kinds = {r["kind"] for r in results_by_id(store, start, mark="care-quality").values()}
    assert kinds == {"hub", "guide"}
    rev = a.revoke(a.assessor, att, "Complaint upheld", at=start + 1000)
    ingest_ok(store, [rev], a.now)
    assert holders(start + 999) == {f0.hub_id}  # a revocation takes effect from its own creation time
    assert holders(start + 1000) == set()
    check = store.mark_check(f0.public, "care-quality", start + 1000)
    assert check["status"] == "revoked" and "Complaint upheld" in check["reason"]
    assert store.mark_check(f1.public, "care-quality", a.now)["status"] == "none"
    marks = store.marks_view(f0.public, start + 1000)
    assert [(m["status"], m["revocation"]) for m in marks] == [("revoked", rev.id_hex)]


# -- order independence ------------------------------------------------------------------------------------


def _rich_sample() -> tuple[Association, list[Record]]:
    a = Association.create(founders=3, needed=2)
    f0, f1, f2 = a.founders
    x, y = hub_key("x"), hub_key("y")
    g1 = a.guide(f0, "Guide one")
    g2 = a.guide(f0, "Guide two", supersedes=g1)
    g3 = a.guide(f1, "Rotas")
    e1, e2, e3 = a.endorse(f0, x), a.endorse(f1, x), a.endorse(f2, x)
    offer = a.offer(f1, "Gloves")
    records = [a.charter, a.profile(f0, "Zero"), a.profile(f1, "One"), a.profile(f0, "Zero again"),
               g1, g2, g3, a.revoke(f1, g3), e1, e2, e3, a.endorse(x, y), a.endorse(f2, y), a.revoke(f1, e2),
               a.profile(x, "Ex"), offer, a.pledge(f0, offer, 10), a.pledge(f2, offer, 20)]
    return a, records


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1))
def test_derived_state_does_not_depend_on_arrival_order(tmp_path: Path, seed: int) -> None:
    """Records arrive one at a time in a random order; those that wait for a reference or for their author's
    sponsorship are deferred and land by themselves when it arrives; the derived state equals what protocol
    computes from the whole set. (tests/hub/test_convergence.py does this for random record sets.)
    """
    print("seed", seed)
    a, records = _rich_sample()
    order = records[:]
    random.Random(seed).shuffle(order)
    path = Path(tempfile.mkdtemp(dir=tmp_path)) / "hub.sqlite3"  # hypothesis may repeat a seed
    with Store(path) as store:
        statuses = {store.ingest([r.raw], now_ms=a.now)[0].status for r in order}
        assert statuses <= {"accepted", "deferred"}
        assert store.count() == len(records) and store.counts()["deferred"] == 0
        charter = records[0]
        endorsements = [r for r in records if r.kind == "endorsement"]
        revocations = [r for r in records if r.kind == "revocation"]
        expected = membership(charter, endorsements, revocations)
        m = store.membership()
        assert m is not None and m.members == expected.members
        conn = sqlite3.connect(path)
        try:
            stored_members = {h for (h,) in conn.execute("SELECT hub FROM members")}
            profiles = {h: i for h, i in conn.execute("SELECT hub, id FROM profiles")}
            flags = {(k, bool(f)) for k, f in conn.execute("SELECT author, member FROM directory")}
        finally:
            conn.close()
        assert stored_members == expected.members
        assert profiles == {h: p.id for h, p in current_profiles(records).items()}
        assert flags == {(k, k in expected.members) for k, _ in flags}
        guides = {r["id"] for r in results_by_id(store, a.now, kind="guide").values()}
        assert guides == {g.id_hex for g in current_guides(records, revocations)}
