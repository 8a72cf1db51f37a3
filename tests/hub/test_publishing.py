"""hub/publishing.py with hub/storage_checks.py: what peers' records would store-and-ignore (or hold back) is
refused when this hub's own user asks to publish it, with one clear line; nothing is stored."""

from __future__ import annotations

import pytest

from hub.publishing import PublishRefused
from hub.store import Store

from .factory import DAY, Sample, hub_key


def refused(store: Store, record: object, now_ms: int) -> PublishRefused:
    before = store.sync_items()
    with pytest.raises(PublishRefused) as err:
        store.check_publish(record, now_ms)  # type: ignore[arg-type]
    assert store.sync_items() == before
    assert "\n" not in str(err.value)
    return err.value


def test_a_non_member_may_publish_only_its_profile(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    a, applicant = s.a, s.applicant  # sponsored once, not a member: eligible, so peers would store these
    for record in (a.guide(applicant, "Too soon"), a.offer(applicant, "Too soon"),
                   a.endorse(applicant, hub_key("friend")), a.pledge(applicant, s["offer"], 3)):
        err = refused(store, record, a.now)
        assert err.reason == "not-a-member" and "not a member yet: ask members to endorse you" in str(err)
    store.check_publish(a.profile(applicant, "Newport Home Helpers, renamed"), a.now)
    # Withdrawing is always possible: a guide it signed (stored: it is eligible) may be revoked.
    signed = a.guide(applicant, "Signed elsewhere")
    assert store.ingest([signed.raw], now_ms=a.now)[0].status == "accepted"
    store.check_publish(a.revoke(applicant, signed), a.now)


def test_an_assessor_that_is_not_a_member_may_attest_its_scheme_only(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    a = s.a
    store.check_publish(a.attest(a.founders[1]), a.now)
    assert refused(store, a.attest(a.founders[1], scheme="food-hygiene"), a.now).reason == "not-a-member"


def test_a_close_by_someone_other_than_the_offer_author(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    err = refused(store, s.a.close(s.a.founders[0], s["offer"], [s["pledge0"]]), s.a.now)
    assert "only the offer's author can close it" in str(err) and err.field == "offer"


def test_a_close_naming_another_offers_pledge(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    a = s.a
    other = a.offer(a.founders[1], "Aprons")
    pledge = a.pledge(a.founders[0], other, 2)
    assert {r.status for r in store.ingest([other.raw, pledge.raw], now_ms=a.now)} == {"accepted"}
    err = refused(store, a.close(a.founders[1], s["offer"], [s["pledge0"], pledge]), a.now)
    assert "a pledge to another offer" in str(err) and err.field == "pledges"
    store.check_publish(a.close(a.founders[1], s["offer"], [s["pledge0"]]), a.now)


def test_superseding_another_hubs_guide(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    err = refused(store, s.a.guide(s.a.founders[1], "Mine now", supersedes=s["guide_v2"]), s.a.now)
    assert "only supersede this hub's own guides" in str(err) and err.field == "supersedes"
    store.check_publish(s.a.guide(s.a.founders[0], "Third edition", supersedes=s["guide_v2"]), s.a.now)


def test_references_must_be_held_and_of_the_right_kind(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    a = s.a
    ghost = a.offer(a.founders[1], "Never published")
    err = refused(store, a.pledge(a.founders[0], ghost, 1), a.now)
    assert err.reason == "missing-reference" and ghost.id_hex in str(err)
    err = refused(store, a.pledge(a.founders[0], s["guide_rota"], 1), a.now)
    assert err.reason == "invalid" and "is a guide, not a offer" in str(err)


def test_a_pledge_after_the_deadline(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    a = s.a
    late = a.pledge(a.founders[0], s["offer"], 5, at=s["offer"].body["deadline"] + DAY)
    assert "deadline passed" in str(refused(store, late, late.created_ms))
