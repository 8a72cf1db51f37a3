"""The storage rule in the store (docs/protocol.md §2.3, hub/ingest.py, hub/held.py): deferral and its retries,
future records, quarantine for applicants, the caps on both, held(), and the bounded refusals log."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest

from hub import held
from hub.db import connect, transaction
from hub.store import IngestResult, Store
from protocol import DEFAULT_LIMITS, Limits

from .factory import DAY, Association, Sample, hub_key, raws

SKEW = DEFAULT_LIMITS.max_future_skew_ms


def statuses(results: list[IngestResult]) -> list[tuple[str, str | None]]:
    return [(r.status, r.reason) for r in results]


class Heard:
    """A store listener that keeps every (results, source) it hears."""

    def __init__(self, store: Store) -> None:
        self.calls: list[tuple[list[IngestResult], str]] = []
        store.add_listener(lambda results, source: self.calls.append((results, source)))

    def accepted(self) -> list[tuple[str | None, str]]:
        return [(r.id, source) for results, source in self.calls for r in results if r.status == "accepted"]


# -- deferred records land when the missing piece arrives ---------------------------------------------------


def test_a_sponsorship_chain_lands_whatever_the_order(store: Store) -> None:
    """x is sponsored by a founder, y by x: y's profile, then x's endorsement of y, then the founder's
    endorsement of x, each from a different source and call: every record lands when the chain closes."""
    a = Association.create()
    x, y = hub_key("x"), hub_key("y")
    profile_y = a.profile(y, "Why Not Care")
    x_endorses_y = a.endorse(x, y)
    founder_endorses_x = a.endorse(a.founders[0], x)
    assert store.ingest([a.charter.raw], now_ms=a.now)[0].status == "accepted"
    heard = Heard(store)
    assert statuses(store.ingest([profile_y.raw], now_ms=a.now, source="peer-1")) == [("deferred", "not-a-member")]
    assert statuses(store.ingest([x_endorses_y.raw], now_ms=a.now, source="peer-2")) == [
        ("deferred", "not-a-member")]
    assert store.counts()["deferred"] == 2 and store.counts()["refused"] == 0
    assert statuses(store.ingest([founder_endorses_x.raw], now_ms=a.now, source="peer-3")) == [("accepted", None)]
    assert store.have([profile_y.id, x_endorses_y.id]) == {profile_y.id, x_endorses_y.id}
    assert store.is_eligible(y.public) and not store.is_member(y.public)  # needed = 2
    assert store.counts()["deferred"] == 0
    # Listeners hear of the records accepted on retry, under the source each first came from.
    assert sorted(heard.accepted()) == sorted([(founder_endorses_x.id_hex, "peer-3"),
                                               (x_endorses_y.id_hex, "peer-2"), (profile_y.id_hex, "peer-1")])


def test_a_close_waits_for_every_pledge_it_names(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    a = s.a
    late = a.pledge(a.founders[2], s["offer"], 70)
    close = a.close(a.founders[1], s["offer"], [s["pledge0"], late])
    assert statuses(store.ingest([close.raw], now_ms=a.now)) == [("deferred", "missing-reference")]
    assert late.id_hex in (store.ingest([close.raw], now_ms=a.now)[0].detail or "")  # asked again: same wait
    assert store.ingest([late.raw], now_ms=a.now)[0].status == "accepted"
    view = store.offer_view(s["offer"].id, a.now)
    assert view is not None and view["status"] == "awarded" and view["tally"]["total"] == 60 + 70


def test_a_record_waiting_for_a_refused_record_stays_deferred(loaded: tuple[Store, Sample]) -> None:
    """A pledge to an "offer" that turns out to be refused (wrong association) never lands, and is not
    counted as a refusal of its sender."""
    store, s = loaded
    other = Association.create(seed="other")
    foreign_offer = other.offer(other.founders[0], "Elsewhere")
    p = s.a.pledge(s.a.founders[0], foreign_offer, 1)
    assert statuses(store.ingest([p.raw], now_ms=s.a.now, source="a")) == [("deferred", "missing-reference")]
    assert statuses(store.ingest([foreign_offer.raw], now_ms=s.a.now, source="b")) == [("refused", "wrong-association")]
    assert store.held([p.id]) == {p.id} and store.have([p.id]) == set()
    assert [(r["source"], r["reason"]) for r in store.refused_summary()] == [("b", "wrong-association")]


# -- future records ----------------------------------------------------------------------------------------


def test_a_future_record_lands_when_its_time_comes(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    now = s.a.now
    g = s.a.guide(s.a.founders[0], "From a fast clock", at=now + SKEW + 60_000)
    heard = Heard(store)
    (result,) = store.ingest([g.raw], now_ms=now, source="fast-peer")
    assert (result.status, result.reason) == ("deferred", "future")
    assert store.counts()["refused"] == 0 and store.held([g.id]) == {g.id}
    assert store.retry_due(now + 59_999) == [] and store.have([g.id]) == set()
    assert statuses(store.retry_due(now + 60_000)) == [("accepted", None)]
    assert store.have([g.id]) == {g.id} and store.counts()["deferred"] == 0
    assert heard.accepted() == [(g.id_hex, "fast-peer")]
    assert store.retry_due(now + DAY) == []


def test_a_due_record_also_lands_on_the_next_ingest(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    now = s.a.now
    g = s.a.guide(s.a.founders[0], "Early bird", at=now + 2 * SKEW)
    assert store.ingest([g.raw], now_ms=now)[0].status == "deferred"
    other = s.a.guide(s.a.founders[1], "Anything", at=now)
    store.ingest([other.raw], now_ms=now + SKEW)  # its time has come: retried first, in the same transaction
    assert store.have([g.id, other.id]) == {g.id, other.id}


@pytest.mark.parametrize("ahead, status", [(SKEW, "accepted"), (SKEW + 1, "deferred"), (2 * SKEW, "deferred"),
                                           (2 * SKEW + 1, "refused")])
def test_the_skew_bounds(loaded: tuple[Store, Sample], ahead: int, status: str) -> None:
    store, s = loaded
    now = s.a.now
    g = s.a.guide(s.a.founders[0], f"Ahead by {ahead}", at=now + ahead)
    (result,) = store.ingest([g.raw], now_ms=now)
    assert result.status == status, result
    if status == "refused":
        assert result.reason == "invalid" and "future" in (result.detail or "")


def test_created_in_1970_is_refused(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    g = s.a.guide(s.a.founders[0], "Unset clock", at=0)
    (result,) = store.ingest([g.raw], now_ms=s.a.now, source="peer-1970")
    assert (result.status, result.reason) == ("refused", "invalid") and "2025-01-01" in (result.detail or "")
    assert store.held([g.id]) == set()


# -- quarantine --------------------------------------------------------------------------------------------


def test_an_applicants_own_profile_is_quarantined_until_sponsored(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    a, applicant = s.a, hub_key("newcomer")
    profile = a.profile(applicant, "Swansea Support Co-op", regions=["Swansea"])
    heard = Heard(store)
    (result,) = store.ingest([profile.raw], now_ms=a.now, source="session", origin=applicant.public)
    assert (result.status, result.reason) == ("quarantined", "not-a-member")
    # Held, listed for members, never stored nor in the sync set.
    assert store.held([profile.id]) == {profile.id} and store.have([profile.id]) == set()
    assert profile.id not in {i for _, i in store.sync_items()}
    (listed,) = store.applicants()
    assert (listed["hub"], listed["name"], listed["regions"]) == (applicant.hub_id, "Swansea Support Co-op",
                                                                  ["Swansea"])
    assert store.applicant_raw(applicant.public) == profile.raw
    # The same profile again is still quarantined; from anyone else it would wait as not-a-member.
    assert store.ingest([profile.raw], now_ms=a.now, origin=applicant.public)[0].status == "quarantined"
    # A member's endorsement sponsors it: the profile is ingested through the same checks and stored.
    sponsor = a.endorse(a.founders[1], applicant)
    assert store.ingest([sponsor.raw], now_ms=a.now, source="api")[0].status == "accepted"
    assert store.have([profile.id]) == {profile.id} and store.applicants() == []
    assert (profile.id_hex, "session") in heard.accepted()
    hub = store.hub_view(applicant.public, a.now)
    assert hub is not None and hub["name"] == "Swansea Support Co-op" and hub["member"] is False


def test_quarantine_keeps_the_newest_profile_per_applicant(store: Store) -> None:
    a = Association.create()
    store.ingest([a.charter.raw], now_ms=a.now)
    applicant = hub_key("newcomer")
    old, new, newest = (a.profile(applicant, name) for name in ("Old name", "New name", "Newest name"))
    assert store.ingest([new.raw], now_ms=a.now, origin=applicant.public)[0].status == "quarantined"
    # An older version is listed nowhere but not lost: it waits for the sponsorship like any record of an
    # author not eligible yet, so what lands does not depend on who sent which version.
    assert statuses(store.ingest([old.raw], now_ms=a.now, origin=applicant.public)) == [("deferred",
                                                                                          "not-a-member")]
    assert store.ingest([newest.raw], now_ms=a.now, origin=applicant.public)[0].status == "quarantined"
    assert [x["name"] for x in store.applicants()] == ["Newest name"]
    assert store.held([old.id, new.id, newest.id]) == {old.id, new.id, newest.id}
    assert store.deferred_summary()["by_reason"] == {"not-a-member": 2}
    store.ingest([a.endorse(a.founders[0], applicant).raw], now_ms=a.now)
    assert store.have([old.id, new.id, newest.id]) == {old.id, new.id, newest.id}
    hub = store.hub_view(applicant.public, a.now)
    assert hub is not None and hub["name"] == "Newest name"


def test_an_applicants_other_records_are_not_quarantined(store: Store) -> None:
    a = Association.create()
    store.ingest([a.charter.raw], now_ms=a.now)
    applicant = hub_key("newcomer")
    g = a.guide(applicant, "Our approach")
    assert statuses(store.ingest([g.raw], now_ms=a.now, origin=applicant.public)) == [("deferred", "not-a-member")]
    assert store.applicants() == []


# -- caps under a flood ------------------------------------------------------------------------------------


def small(**changes: int) -> Limits:
    return dataclasses.replace(DEFAULT_LIMITS, **changes)


def test_deferred_records_stay_within_their_caps_under_a_flood(tmp_path: Path) -> None:
    a = Association.create()
    limits = small(max_deferred_records=50, max_deferred_per_source=20, max_deferred_bytes=1 << 20)
    with Store(tmp_path / "hub.sqlite3", limits=limits) as store:
        store.ingest([a.charter.raw], now_ms=a.now)
        honest = [a.profile(hub_key(f"applicant-{i}"), f"Applicant {i}") for i in range(10)]
        assert {r.status for r in store.ingest(raws(honest), now_ms=a.now, source="honest")} == {"deferred"}
        flood = [a.profile(hub_key(f"flood-{i}"), f"Spam {i}") for i in range(300)]
        for start in range(0, len(flood), 37):  # several calls, so the cap holds after each commit
            store.ingest(raws(flood[start:start + 37]), now_ms=a.now, source="stranger")
            summary = store.deferred_summary()
            assert summary["records"] <= 50 and summary["by_source"]["stranger"] <= 20
        # The stranger lost its own oldest; the honest source kept everything it sent.
        assert store.deferred_summary()["by_source"] == {"honest": 10, "stranger": 20}
        assert store.held([r.id for r in flood[-20:]]) == {r.id for r in flood[-20:]}
        assert store.held([r.id for r in honest]) == {r.id for r in honest}
        # Many sources at once: the whole table keeps its newest 50, and counts nothing as refused.
        for i in range(10):
            store.ingest([a.profile(hub_key(f"many-{i}-{j}"), "x").raw for j in range(10)], now_ms=a.now,
                         source=f"sybil-{i}")
        assert store.deferred_summary()["records"] == 50 and store.counts()["refused"] == 0


def test_deferred_bytes_cap(tmp_path: Path) -> None:
    a = Association.create()
    profiles = [a.profile(hub_key(f"big-{i}"), f"Big {i}", description="x" * 4000) for i in range(40)]
    size = len(profiles[0].raw)
    limits = small(max_deferred_bytes=10 * size + size // 2)
    with Store(tmp_path / "hub.sqlite3", limits=limits) as store:
        store.ingest([a.charter.raw], now_ms=a.now)
        store.ingest(raws(profiles), now_ms=a.now)
        summary = store.deferred_summary()
        assert summary["records"] == 10 and summary["bytes"] <= limits.max_deferred_bytes
        assert store.held([p.id for p in profiles]) == {p.id for p in profiles[-10:]}


def test_quarantine_stays_within_its_caps_under_a_flood(tmp_path: Path) -> None:
    """The attack of issue 9: fresh keys, each submitting its own profile. Quarantine holds at most the cap,
    evicting the oldest, and nothing reaches records, sync or the directory."""
    a = Association.create()
    limits = small(max_quarantine_profiles=25, max_quarantine_bytes=1 << 20)
    with Store(tmp_path / "hub.sqlite3", limits=limits) as store:
        store.ingest([a.charter.raw], now_ms=a.now)
        keys = [hub_key(f"fresh-{i}") for i in range(200)]
        for start in range(0, len(keys), 50):
            batch = keys[start:start + 50]
            for key in batch:
                store.ingest([a.profile(key, f"Fresh {key.hub_id[-6:]}").raw], now_ms=a.now, source="session",
                             origin=key.public)
            assert store.counts()["quarantined"] <= 25
        assert {x["hub"] for x in store.applicants()} == {k.hub_id for k in keys[-25:]}
        assert store.count() == 1 and "profile" not in store.counts() and store.sync_items() == [
            (a.charter.created_ms, a.charter.id)]


# -- held ------------------------------------------------------------------------------------------------


def test_held_is_stored_deferred_and_quarantined(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    a = s.a
    waiting = a.guide(hub_key("stranger"), "Waiting")
    applicant = hub_key("applicant-2")
    quarantined = a.profile(applicant, "Applicant two")
    store.ingest([waiting.raw], now_ms=a.now)
    store.ingest([quarantined.raw], now_ms=a.now, origin=applicant.public)
    unknown = bytes(32)
    ids = [s["charter"].id, waiting.id, quarantined.id, unknown]
    assert store.held(ids) == set(ids[:3])
    assert store.have(ids) == {s["charter"].id}


# -- the refusals log stays bounded ------------------------------------------------------------------------


def test_the_refusal_log_is_bounded_under_3000_garbage_records(loaded: tuple[Store, Sample]) -> None:
    """Issue 9: 3,000 garbage pushes, each claiming another source, made 3,003 rows. Now the counters keep at
    most refused_sources sources (+ "other") and the examples ring refused_examples rows."""
    store, s = loaded
    limits = store.limits
    for i in range(3000):
        store.ingest([b"\x93garbage" + str(i).encode()], now_ms=s.a.now, source=f"https://liar-{i}.example")
    summary = store.refused_summary()
    assert len(summary) <= limits.refused_sources + 1
    assert sum(r["count"] for r in summary) == 3000 == store.counts()["refused"]
    other = [r for r in summary if r["source"] == "other"]
    assert other and other[0]["count"] == 3000 - limits.refused_sources
    examples = store.refused_examples()
    assert len(examples) == limits.refused_examples
    assert examples[0]["source"] == "https://liar-2999.example" and examples[0]["reason"] == "invalid"


def test_refusal_examples_keep_the_record_id_and_detail(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    g = s.a.guide(s.a.founders[0], "Tampered")
    raw = g.raw[:-1] + bytes([g.raw[-1] ^ 1])
    store.ingest([raw], now_ms=s.a.now, source="peer-z")
    (example,) = store.refused_examples()
    assert (example["id"], example["source"], example["reason"]) == (hashlib.sha256(raw).hexdigest(), "peer-z",
                                                                     "invalid")
    assert "signature" in example["detail"]


# -- an older hub's database ---------------------------------------------------------------------------------


def test_the_eligible_set_rebuilt_from_records_equals_the_incremental_one(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    x = hub_key("x")
    store.ingest([s.a.endorse(s.applicant, x).raw], now_ms=s.a.now)  # the sponsored applicant sponsors x
    conn = connect(store.path)
    try:
        before = {h for (h,) in conn.execute("SELECT hub FROM eligible")}
        with transaction(conn):
            n = held.rebuild_eligible(conn)
        after = {h for (h,) in conn.execute("SELECT hub FROM eligible")}
    finally:
        conn.close()
    expected = {k.public for k in s.a.founders} | {s.a.assessor.public, s.applicant.public, x.public}
    assert before == after == expected and n == len(expected)

