"""Quality marks: an attestation's status at a time, with the reason (docs/protocol.md §6.5)."""

from __future__ import annotations

from collections.abc import Sequence

from protocol import MARK_STATUSES, HubKey, Record, attestation_status, authorised_assessors, mark_status

from .factories import DAY, T0, A, B, C, D, body, charter, make, revoke

CH = charter(founders=[A, B], needed=1, assessors=[C])
FROM, UNTIL = T0 + DAY, T0 + 100 * DAY


def attest(key: HubKey = C, subject: HubKey = D, scheme: str = "care-quality", t: int = T0,
           valid_from: int = FROM, valid_until: int = UNTIL, level: str = "gold") -> Record:
    b = body("attestation", subject=subject.public, scheme=scheme, valid_from=valid_from,
             valid_until=valid_until, level=level)
    return make(key, "attestation", b, t, CH.id)


def status(att: Record, at_ms: int, revocations: Sequence[Record] = ()) -> str:
    return attestation_status(att, CH, revocations, at_ms).status


def test_status_order_is_the_documented_table() -> None:
    assert MARK_STATUSES == ("unauthorised", "revoked", "not-yet-valid", "expired", "valid")


def test_authorised_assessors() -> None:
    assert authorised_assessors(CH, "care-quality") == {C.public}
    assert authorised_assessors(CH, "nope") == frozenset()


def test_valid() -> None:
    s = attestation_status(attest(), CH, [], FROM)
    assert s.status == "valid"
    assert "gold" in s.reason and C.hub_id in s.reason
    assert s.revocation is None


def test_not_yet_valid() -> None:
    s = attestation_status(attest(), CH, [], FROM - 1)
    assert s.status == "not-yet-valid"
    assert "valid from" in s.reason


def test_expired_at_exactly_valid_until() -> None:
    att = attest()
    assert status(att, UNTIL - 1) == "valid"
    s = attestation_status(att, CH, [], UNTIL)
    assert s.status == "expired"
    assert "expired" in s.reason


def test_revoked_only_from_the_revocation_time_on() -> None:
    att = attest()
    rev = revoke(C, att, FROM + 10)
    assert status(att, FROM + 9, [rev]) == "valid"
    s = attestation_status(att, CH, [rev], FROM + 10)
    assert s.status == "revoked"
    assert s.revocation == rev
    assert "withdrawn" in s.reason


def test_revocation_before_validity_shows_revoked() -> None:
    att = attest()
    assert status(att, FROM - 1, [revoke(C, att, T0 + 1)]) == "revoked"


def test_revocation_only_by_the_attestations_author() -> None:
    att = attest()
    assert status(att, FROM + 50, [revoke(A, att, FROM + 10), revoke(D, att, FROM + 10)]) == "valid"


def test_revocation_of_another_record_is_ignored() -> None:
    att, other = attest(), attest(level="silver")
    assert status(att, FROM + 50, [revoke(C, other, FROM + 10)]) == "valid"


def test_unauthorised_issuer() -> None:
    s = attestation_status(attest(key=B), CH, [], FROM + 1)
    assert s.status == "unauthorised"
    assert B.hub_id in s.reason


def test_unauthorised_beats_every_other_rule() -> None:
    att = attest(key=B)
    assert status(att, UNTIL + 1, [revoke(B, att, T0 + 1)]) == "unauthorised"


def test_unknown_scheme_is_unauthorised() -> None:
    s = attestation_status(attest(scheme="made-up"), CH, [], FROM + 1)
    assert s.status == "unauthorised"
    assert "made-up" in s.reason


def test_far_future_times_do_not_break_the_reason() -> None:
    att = attest(valid_from=0, valid_until=2**53)
    assert status(att, 2**53 - 1) == "valid"
    assert status(att, 2**53) == "expired"
    assert status(attest(valid_from=2**53 - 1, valid_until=2**53), 0) == "not-yet-valid"


def test_mark_status_picks_a_valid_one_if_any() -> None:
    old_valid = attest(t=T0, level="silver")
    newer_expired = attest(t=T0 + 5, valid_from=T0, valid_until=T0 + 2)
    s = mark_status(D.public, "care-quality", [newer_expired, old_valid], CH, [], FROM + 1)
    assert s.status == "valid"
    assert s.attestation == old_valid


def test_mark_status_otherwise_reports_the_newest() -> None:
    older = attest(t=T0, valid_from=T0, valid_until=T0 + 2)
    newest = attest(t=T0 + 5, valid_from=UNTIL + DAY, valid_until=UNTIL + 2 * DAY)
    s = mark_status(D.public, "care-quality", [older, newest], CH, [], FROM)
    assert (s.status, s.attestation) == ("not-yet-valid", newest)
    s = mark_status(D.public, "care-quality", [newest, older], CH, [], FROM)
    assert (s.status, s.attestation) == ("not-yet-valid", newest)


def test_mark_status_revoked() -> None:
    att = attest()
    rev = revoke(C, att, FROM + 1)
    s = mark_status(D.public, "care-quality", [att], CH, [rev], FROM + 2)
    assert (s.status, s.revocation) == ("revoked", rev)


def test_mark_status_none() -> None:
    s = mark_status(D.public, "care-quality", [], CH, [], FROM)
    assert (s.status, s.attestation) == ("none", None)
    other_subject = attest(subject=B)
    other_scheme = attest(scheme="made-up")
    assert mark_status(D.public, "care-quality", [other_subject, other_scheme], CH, [], FROM).status == "none"
