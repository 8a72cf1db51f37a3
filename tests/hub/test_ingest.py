"""hub/ingest.py through Store.ingest: the contract's rules, refusals that store nothing and are counted."""

from __future__ import annotations

import dataclasses
from typing import Any

import msgpack
import pytest

from hub.queries import DirectoryQuery
from hub.store import IngestResult, Store
from protocol import DEFAULT_LIMITS

from .factory import DAY, Association, Sample, forge, hub_key, raws


def snapshot(store: Store) -> tuple[Any, ...]:
    """Everything a refusal must leave untouched: records, counts and the searchable directory."""
    counts = {k: v for k, v in store.counts().items() if k not in ("refused", "deferred")}
    return store.sync_items(), counts, store.search(DirectoryQuery(limit=200), 2**52)


def refused_count(store: Store, source: str, reason: str) -> int:
    return sum(r["count"] for r in store.refused_summary() if r["source"] == source and r["reason"] == reason)


def assert_refused(store: Store, raw: bytes, now_ms: int, reason: str, detail: str = "",
                   source: str = "peer-x") -> IngestResult:
    """Ingest ``raw`` from ``source``: refused for ``reason``, nothing changed, the refusal counted once."""
    before, counted = snapshot(store), refused_count(store, source, reason)
    (result,) = store.ingest([raw], now_ms=now_ms, source=source)
    assert result.status == "refused", result
    assert result.reason == reason, result
    assert detail in (result.detail or ""), result
    assert snapshot(store) == before
    assert refused_count(store, source, reason) == counted + 1
    return result


def test_the_sample_is_accepted_and_counted(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    counts = store.counts()
    assert counts["records"] == len(s.records) == store.count()
    assert counts["profile"] == 4 and counts["guide"] == 3 and counts["members"] == 3
    assert counts["refused"] == 0
    assert store.association_id() == s.a.id
    assert store.get_raw(s["offer"].id) == s["offer"].raw
    assert store.get_record(s["guide_v2"].id) == s["guide_v2"]


def test_duplicates_are_idempotent(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    before = snapshot(store)
    results = store.ingest(raws(s.records[:3]) + [s.records[0].raw], now_ms=s.a.now)
    assert [r.status for r in results] == ["duplicate"] * 4
    assert [r.id for r in results[:3]] == [r.id_hex for r in s.records[:3]]
    assert snapshot(store) == before and store.counts()["refused"] == 0


def test_a_record_repeated_within_one_call_is_stored_once(store: Store) -> None:
    a = Association.create()
    results = store.ingest([a.charter.raw, a.charter.raw], now_ms=a.now)
    assert [r.status for r in results] == ["accepted", "duplicate"]
    assert store.count() == 1


def test_results_are_in_input_order_though_processing_is_by_time(store: Store) -> None:
    a = Association.create()
    p = a.profile(a.founders[0], "First")
    g = a.guide(a.founders[0], "Guide")
    results = store.ingest([g.raw, p.raw, a.charter.raw], now_ms=a.now)
    assert [r.id for r in results] == [g.id_hex, p.id_hex, a.charter.id_hex]
    assert {r.status for r in results} == {"accepted"}


def test_a_reference_to_a_later_record_in_the_same_batch_is_retried(store: Store) -> None:
    """A pledge dated before its offer (a fast clock) arrives in one dump: deferred, then taken when the offer
    is stored, and reported accepted by the same call."""
    a = Association.create()
    offer = a.offer(a.founders[1], "Gloves", at=a.clock + 10_000)
    pledge = a.pledge(a.founders[0], offer, 5, at=offer.created_ms - 5_000)
    results = store.ingest([a.charter.raw, pledge.raw, offer.raw], now_ms=a.now)
    assert [r.status for r in results] == ["accepted"] * 3
    assert store.counts()["refused"] == 0 and store.counts()["deferred"] == 0


# -- refusals of every kind --------------------------------------------------------------------------------


def test_garbage_bytes(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    result = assert_refused(store, b"\x00\xffnot a record", s.a.now, "invalid")
    assert result.id is None


def test_bad_signature(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    g = s.a.guide(s.a.founders[0], "Tampered")
    raw = g.raw[:-1] + bytes([g.raw[-1] ^ 1])
    result = assert_refused(store, raw, s.a.now, "invalid", "signature")
    assert result.id is not None  # it decoded; only the signature failed


def test_non_canonical_encoding(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    g = s.a.guide(s.a.founders[0], "Reordered")
    value = msgpack.unpackb(g.raw, raw=False)
    value[5] = dict(reversed(list(value[5].items())))  # same content, map keys unsorted
    raw = msgpack.packb(value, use_bin_type=True)
    assert raw != g.raw
    assert_refused(store, raw, s.a.now, "invalid", "canonical")


def test_wrong_association(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    other = Association.create(seed="other")
    assert_refused(store, other.charter.raw, s.a.now, "wrong-association", "another association")
    # A member's own key, a valid body, but signed for the other association.
    raw = s.a.record(s.a.founders[0], "guide", s["guide_rota"].body, association=other.id).raw
    assert_refused(store, raw, s.a.now, "wrong-association", "another association")


def test_unknown_kind(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    raw = forge(s.a.founders[0], s.a.id, "poll", {"question": "Tea?"}, s.a.now)
    assert_refused(store, raw, s.a.now, "invalid", "unknown kind")


def test_schema_error_names_the_field(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    body = dict(s["guide_rota"].body, license="CC-BY-NC-4.0")
    raw = forge(s.a.founders[1], s.a.id, "guide", body, s.a.now)
    assert_refused(store, raw, s.a.now, "invalid", "license")


def test_too_far_in_the_future(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    g = s.a.guide(s.a.founders[0], "From tomorrow", at=s.a.now + DAY)
    assert_refused(store, g.raw, s.a.now - DAY, "invalid", "future")


def test_too_large(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    raw = forge(s.a.founders[0], s.a.id, "guide", dict(s["guide_rota"].body, body="x" * 70_000), s.a.now)
    result = assert_refused(store, raw, s.a.now, "too-large")
    assert result.id is None


def assert_deferred(store: Store, raw: bytes, now_ms: int, reason: str, detail: str = "",
                    source: str = "peer-x") -> IngestResult:
    """Ingest ``raw``: deferred for ``reason``, nothing stored, nothing counted as refused, but held."""
    before, refused = snapshot(store), store.counts()["refused"]
    (result,) = store.ingest([raw], now_ms=now_ms, source=source)
    assert (result.status, result.reason) == ("deferred", reason), result
    assert detail in (result.detail or ""), result
    assert snapshot(store) == before and store.counts()["refused"] == refused
    assert result.id is not None and store.held([bytes.fromhex(result.id)]) == {bytes.fromhex(result.id)}
    return result


def test_a_strangers_guide_is_deferred_until_sponsored(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    stranger = hub_key("stranger")
    g = s.a.guide(stranger, "Not yet")
    assert_deferred(store, g.raw, s.a.now, "not-a-member", "not a member")
    # A founder's endorsement (a sponsorship: one of the two needed) makes it eligible: the guide lands.
    (result,) = store.ingest([s.a.endorse(s.a.founders[2], stranger).raw], now_ms=s.a.now)
    assert result.status == "accepted"
    assert store.have([g.id]) == {g.id} and not store.is_member(stranger.public)
    assert store.counts()["deferred"] == 0


def test_pledge_to_unknown_offer_is_deferred_until_the_offer_arrives(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    ghost = s.a.offer(s.a.founders[1], "Never sent")
    p = s.a.pledge(s.a.founders[0], ghost, 3)
    assert_deferred(store, p.raw, s.a.now, "missing-reference", ghost.id_hex)
    # Once the offer arrives (in another call), the pledge lands by itself and listeners hear about it.
    heard: list[tuple[list[IngestResult], str]] = []
    store.add_listener(lambda results, source: heard.append((results, source)))
    assert [r.status for r in store.ingest([ghost.raw], now_ms=s.a.now, source="peer-y")] == ["accepted"]
    assert store.have([p.id]) == {p.id}
    assert heard == [([IngestResult(ghost.id_hex, "accepted", None, None)], "peer-y"),
                     ([IngestResult(p.id_hex, "accepted", None, None)], "peer-x")]


def test_pledge_to_a_record_that_is_not_an_offer_is_invalid(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    p = s.a.pledge(s.a.founders[0], s["guide_rota"], 3)
    assert_refused(store, p.raw, s.a.now, "invalid", "not a offer")


# -- stored and ignored (docs/protocol.md §2.3, §6) -----------------------------------------------------------


def assert_stored(store: Store, record: Any, now_ms: int) -> None:
    (result,) = store.ingest([record.raw], now_ms=now_ms, source="peer-x")
    assert result.status == "accepted", result
    assert store.counts()["refused"] == 0


def test_a_close_by_someone_other_than_the_offer_author_is_stored_and_ignored(loaded: tuple[Store, Sample]
                                                                             ) -> None:
    store, s = loaded
    close = s.a.close(s.a.founders[0], s["offer"], [s["pledge0"]])  # the offer is founder 1's
    assert_stored(store, close, s.a.now)
    view = store.offer_view(s["offer"].id, s.a.now)
    assert view is not None and view["status"] == "open" and view["tally"]["close_id"] is None


def test_a_close_naming_a_pledge_of_another_offer_counts_only_this_offers(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    other = s.a.offer(s.a.founders[1], "Aprons")
    p = s.a.pledge(s.a.founders[0], other, 9)
    assert [r.status for r in store.ingest([other.raw, p.raw], now_ms=s.a.now)] == ["accepted"] * 2
    close = s.a.close(s.a.founders[1], s["offer"], [s["pledge0"], p])
    assert_stored(store, close, s.a.now)
    view = store.offer_view(s["offer"].id, s.a.now)
    assert view is not None and view["status"] == "awarded"
    assert [line["pledge_id"] for line in view["tally"]["pledges"]] == [s["pledge0"].id_hex]


def test_a_revocation_of_someone_elses_record_is_stored_and_ignored(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    rev = s.a.revoke(s.a.founders[1], s["guide_v2"])  # founder 0's guide
    assert_stored(store, rev, s.a.now)
    view = store.guide_view(s["guide_v2"].id)
    assert view is not None and view["state"] == "current" and not view["revoked"]


def test_revocation_of_an_irrevocable_kind_is_refused(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    rev = s.a.revoke(s.a.founders[0], s["profile0"])
    assert_refused(store, rev.raw, s.a.now, "invalid", "names a profile record")


def test_superseding_another_authors_guide_is_stored_and_ignored(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    g = s.a.guide(s.a.founders[1], "Hijack", supersedes=s["guide_v2"])
    assert_stored(store, g, s.a.now)
    victim = store.guide_view(s["guide_v2"].id)
    assert victim is not None and victim["state"] == "current" and victim["superseded_by"] == []
    guides = {r["id"] for r in store.search(DirectoryQuery(kind="guide", limit=50), s.a.now)[0]}
    assert {s["guide_v2"].id_hex, g.id_hex} <= guides


def test_superseding_a_record_that_is_not_a_guide_is_refused(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    g = s.a.guide(s.a.founders[1], "Odd", supersedes=s["offer"])
    assert_refused(store, g.raw, s.a.now, "invalid", "names a offer record, not a guide")


def test_records_before_the_charter_are_deferred_until_it_arrives(store: Store) -> None:
    a = Association.create()
    p = a.profile(a.founders[0], "Early")
    (result,) = store.ingest([p.raw], now_ms=a.now, source="peer-y")
    assert (result.status, result.reason) == ("deferred", "missing-reference")
    assert store.count() == 0 and store.counts()["refused"] == 0
    assert store.ingest([a.charter.raw], now_ms=a.now)[0].status == "accepted"
    assert store.have([p.id]) == {p.id} and store.count() == 2


def test_expected_association_refuses_another_charter(tmp_path: Any) -> None:
    a, other = Association.create(), Association.create(seed="other")
    with Store(tmp_path / "hub.sqlite3", association=a.id) as store:
        assert store.association_id() == a.id
        assert store.ingest([other.charter.raw], now_ms=a.now)[0].reason == "wrong-association"
        assert store.ingest([other.profile(other.founders[0], "X").raw], now_ms=a.now)[0].reason == "wrong-association"
        assert store.ingest([a.charter.raw], now_ms=a.now)[0].status == "accepted"
        assert store.count() == 1


def test_a_non_member_assessor_is_eligible(loaded: tuple[Store, Sample]) -> None:
    """The charter's assessors are eligible whether or not they are members: their attestations and
    revocations count, and what else they publish is stored like any eligible author's."""
    store, s = loaded
    assert not store.is_member(s.a.assessor.public) and store.is_eligible(s.a.assessor.public)
    att = s.a.attest(s.a.founders[1])
    rev = s.a.revoke(s.a.assessor, att, "Inspection found problems")
    assert [r.status for r in store.ingest([att.raw, rev.raw], now_ms=s.a.now)] == ["accepted"] * 2
    assert store.mark_check(s.a.founders[1].public, "care-quality", s.a.now)["status"] == "revoked"
    advice = s.a.guide(s.a.assessor, "Advice")
    assert store.ingest([advice.raw], now_ms=s.a.now)[0].status == "accepted"
    found = {r["id"]: r for r in store.search(DirectoryQuery(kind="guide", limit=50), s.a.now)[0]}
    assert found[advice.id_hex]["member"] is False
    other = s.a.attest(s.a.founders[1], scheme="food-hygiene")  # a scheme it is not an assessor of
    assert store.ingest([other.raw], now_ms=s.a.now)[0].status == "accepted"
    assert store.mark_check(s.a.founders[1].public, "food-hygiene", s.a.now)["status"] == "unknown-scheme"


def test_a_member_attesting_without_authority_is_stored_unauthorised(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    att = s.a.attest(s.a.founders[1], key=s.a.founders[0])
    assert store.ingest([att.raw], now_ms=s.a.now)[0].status == "accepted"
    assert store.mark_check(s.a.founders[1].public, "care-quality", s.a.now)["status"] == "unauthorised"


def test_refusals_are_counted_per_source_and_reason(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    store.ingest([b"junk", b"more junk"], now_ms=s.a.now, source="https://peer.example")
    store.ingest([b"junk again"], now_ms=s.a.now, source="api")
    summary = {(r["source"], r["reason"]): r for r in store.refused_summary()}
    assert summary[("https://peer.example", "invalid")]["count"] == 2
    assert summary[("api", "invalid")]["count"] == 1
    assert summary[("api", "invalid")]["last_detail"]
    assert store.counts()["refused"] == 3


def test_large_calls_are_split_into_batches(tmp_path: Any) -> None:
    a = Association.create()
    records = [a.charter] + [a.guide(a.founders[i % 3], f"Guide {i}") for i in range(25)]
    limits = dataclasses.replace(DEFAULT_LIMITS, ingest_batch=4)
    with Store(tmp_path / "hub.sqlite3", limits=limits) as store:
        results = store.ingest(raws(reversed(records)), now_ms=a.now)
        assert [r.status for r in results] == ["accepted"] * 26
        assert store.count() == 26


async def test_ingest_async_notifies_listeners(store: Store) -> None:
    a = Association.create()
    seen: list[tuple[list[IngestResult], str]] = []
    store.add_listener(lambda results, source: seen.append((results, source)))
    store.add_listener(lambda results, source: 1 / 0)  # a broken listener does not break ingest
    results = await store.ingest_async([a.charter.raw], now_ms=a.now, source="api")
    assert results[0].status == "accepted"
    assert seen == [(results, "api")]
    assert await store.read(store.count) == 1


def test_a_key_of_a_stranger_is_not_a_member(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    stranger = hub_key("stranger")
    assert not store.is_member(stranger.public)
    assert all(store.is_member(k.public) for k in s.a.founders)


@pytest.mark.parametrize("value", [None, "text", 12])
def test_non_bytes_input_is_refused_not_raised(store: Store, value: Any) -> None:
    (result,) = store.ingest([value], now_ms=0)
    assert (result.id, result.status, result.reason) == (None, "refused", "invalid")


def test_a_failure_while_storing_one_record_spares_the_rest(store: Store, monkeypatch: pytest.MonkeyPatch,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    """The fast path has no savepoints: a failure reruns the batch isolated, so only the bad record fails."""
    import hub.derive

    a = Association.create()
    good, bad = a.guide(a.founders[0], "Fine"), a.guide(a.founders[0], "Breaks the deriver")
    real = hub.derive._APPLY["guide"]

    def flaky(conn: Any, record: Any, rid: int) -> None:
        real(conn, record, rid)
        if record.body["title"] == "Breaks the deriver":
            raise RuntimeError("a bug")

    monkeypatch.setitem(hub.derive._APPLY, "guide", flaky)
    results = store.ingest([a.charter.raw, good.raw, bad.raw], now_ms=a.now)
    assert [r.status for r in results] == ["accepted", "accepted", "refused"]
    assert results[2].reason == "error" and "a bug" in caplog.text
    assert store.have([good.id, bad.id]) == {good.id}
    assert store.counts()["guide"] == 1
    assert [r["reason"] for r in store.refused_summary()] == ["error"]
