"""The record envelope, signing input and record id (docs/protocol.md §2–§4)."""

from __future__ import annotations

import hashlib
from typing import Any

import msgpack
import pytest

from protocol import (
    DEFAULT_LIMITS,
    NO_ASSOCIATION,
    PROTOCOL_VERSION,
    SIGNING_DOMAIN,
    DecodeError,
    FutureError,
    Record,
    SchemaError,
    SignatureError,
    TimeError,
    TooLargeError,
    build_record,
    decode_record,
    limits_from_mapping,
    pack,
    verify_signature,
)

from .factories import ID_Y, T0, A, B, body, charter, make

SKEW = DEFAULT_LIMITS.max_future_skew_ms


def decode(raw: bytes, now_ms: int = T0, **kw: Any) -> Record:
    return decode_record(raw, now_ms=now_ms, **kw)


def resign(fields: list[Any], key: Any = A) -> bytes:
    """Re-sign an arbitrary 6-element envelope, so a test reaches the check after the signature's."""
    sig = key.sign(SIGNING_DOMAIN + pack(fields, max_depth=9))
    return pack([*fields, sig], max_depth=9)


def test_build_decode_round_trip() -> None:
    rec = make(A, "guide", body("guide"))
    out = decode(rec.raw)
    assert out == rec
    assert (out.version, out.association, out.author, out.created_ms, out.kind) == (
        PROTOCOL_VERSION, ID_Y, A.public, T0, "guide")
    assert out.body == body("guide")
    assert out.author_id == A.hub_id
    assert out.association_id == ID_Y


def test_record_id_is_sha256_of_the_raw_bytes() -> None:
    rec = make(A, "pledge", body("pledge"))
    assert rec.id == hashlib.sha256(rec.raw).digest()
    assert rec.id_hex == hashlib.sha256(rec.raw).hexdigest()
    assert decode(rec.raw).id == rec.id


def test_layout_is_the_documented_seven_element_array() -> None:
    rec = make(A, "pledge", body("pledge"))
    assert rec.raw[0] == 0x97
    assert rec.raw[-66:-64] == b"\xc4\x40"
    assert rec.raw[-64:] == rec.signature
    assert msgpack.unpackb(rec.raw) == [1, ID_Y, A.public, T0, "pledge", body("pledge"), rec.signature]


def test_signing_input_is_domain_plus_six_element_array() -> None:
    rec = make(A, "pledge", body("pledge"))
    six = pack([1, ID_Y, A.public, T0, "pledge", body("pledge")])
    assert six == b"\x96" + rec.raw[1:-66]
    verify_signature(A.public, rec.signature, SIGNING_DOMAIN + six)
    with pytest.raises(SignatureError):
        verify_signature(A.public, rec.signature, six)  # without the domain it does not verify


def test_building_is_deterministic() -> None:
    assert make(A, "guide", body("guide")).raw == make(A, "guide", body("guide")).raw


def test_wrong_version_is_refused() -> None:
    raw = resign([2, ID_Y, A.public, T0, "pledge", body("pledge")])
    with pytest.raises(DecodeError, match="version") as err:
        decode(raw)
    assert err.value.field == "version"


@pytest.mark.parametrize(("index", "value", "field"), [
    (0, True, "version"), (0, "1", "version"),
    (1, bytes(31), "association"), (1, "x" * 32, "association"),
    (2, bytes(33), "author"),
    (3, -1, "created_ms"), (3, True, "created_ms"),
    (4, 7, "kind"),
    (5, [], "body"),
])
def test_envelope_types_are_checked(index: int, value: Any, field: str) -> None:
    fields: list[Any] = [1, ID_Y, A.public, T0, "pledge", body("pledge")]
    fields[index] = value
    raw = pack([*fields, bytes(64)])
    with pytest.raises(DecodeError) as err:
        decode(raw)
    assert err.value.field == field


@pytest.mark.parametrize("value", [[1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6, 7, 8], {"a": 1}, 5, "record"])
def test_not_a_seven_element_array_is_refused(value: Any) -> None:
    with pytest.raises(DecodeError, match="array of 7"):
        decode(pack(value))


def test_signature_of_wrong_length_is_refused() -> None:
    rec = make(A, "pledge", body("pledge"))
    raw = pack([1, ID_Y, A.public, T0, "pledge", body("pledge"), rec.signature[:63]])
    with pytest.raises(DecodeError) as err:
        decode(raw)
    assert err.value.field == "signature"


def test_future_dated_beyond_skew_is_refused_within_skew_accepted() -> None:
    rec = make(A, "pledge", body("pledge"), created_ms=T0 + SKEW)
    assert decode(rec.raw, now_ms=T0).id == rec.id  # exactly at the skew
    with pytest.raises(TimeError) as err:
        decode(rec.raw, now_ms=T0 - 1)
    assert err.value.field == "created_ms"
    assert decode(rec.raw, now_ms=T0 + 10 * SKEW).id == rec.id  # the past is fine


def test_within_twice_the_skew_is_a_future_error_carrying_the_verified_record() -> None:
    """Between 1× and 2× the skew ahead a record is deferred, not refused (docs/protocol.md §2.3): FutureError,
    a TimeError whose reason is "future", carries the verified record; beyond 2× it is a plain TimeError."""
    rec = make(A, "pledge", body("pledge"), created_ms=T0 + 2 * SKEW)
    with pytest.raises(FutureError) as err:
        decode(rec.raw, now_ms=T0)
    assert err.value.reason == "future" and err.value.record == rec and isinstance(err.value, TimeError)
    with pytest.raises(TimeError) as plain:
        decode(rec.raw, now_ms=T0 - 1)
    assert type(plain.value) is TimeError and plain.value.reason == "invalid"
    # A future record with a bad signature is refused for the signature, never held.
    with pytest.raises(SignatureError):
        decode(rec.raw[:-1] + bytes([rec.raw[-1] ^ 1]), now_ms=T0)


@pytest.mark.parametrize("created_ms", [0, 1, DEFAULT_LIMITS.min_created_ms - 1])
def test_created_before_the_lower_bound_is_refused(created_ms: int) -> None:
    rec = make(A, "pledge", body("pledge"), created_ms=created_ms)
    with pytest.raises(TimeError) as err:
        decode(rec.raw)
    assert type(err.value) is TimeError and err.value.field == "created_ms" and "2025-01-01" in str(err.value)
    ok = make(A, "pledge", body("pledge"), created_ms=DEFAULT_LIMITS.min_created_ms)
    assert decode(ok.raw).id == ok.id


def test_skew_comes_from_limits() -> None:
    rec = make(A, "pledge", body("pledge"), created_ms=T0 + 10)
    with pytest.raises(TimeError):
        decode(rec.raw, limits=limits_from_mapping({"max_future_skew_ms": 9}))
    assert decode(rec.raw, limits=limits_from_mapping({"max_future_skew_ms": 10})).id == rec.id


def test_charter_has_zero_association() -> None:
    ch = charter()
    assert ch.association == NO_ASSOCIATION
    assert ch.association_id == ch.id
    assert decode(ch.raw) == ch
    forced = build_record(A, ID_Y, "charter", body("charter"), T0)  # the builder forces zeros
    assert forced.association == NO_ASSOCIATION


def test_charter_with_an_association_is_refused() -> None:
    raw = resign([1, ID_Y, A.public, T0, "charter", body("charter")])
    with pytest.raises(DecodeError) as err:
        decode(raw)
    assert err.value.field == "association"


def test_other_kinds_need_a_non_zero_association() -> None:
    raw = resign([1, NO_ASSOCIATION, A.public, T0, "pledge", body("pledge")])
    with pytest.raises(DecodeError) as err:
        decode(raw)
    assert err.value.field == "association"


@pytest.mark.parametrize(("association", "created_ms"), [(NO_ASSOCIATION, T0), (bytes(31), T0), (ID_Y, -1)])
def test_build_refuses_what_decode_would_refuse(association: bytes, created_ms: int) -> None:
    with pytest.raises(DecodeError):
        build_record(A, association, "pledge", body("pledge"), created_ms)


def test_signature_over_another_record_is_refused() -> None:
    one = make(A, "pledge", body("pledge", quantity=1))
    two = make(A, "pledge", body("pledge", quantity=2))
    spliced = two.raw[:-64] + one.signature
    with pytest.raises(SignatureError) as err:
        decode(spliced)
    assert err.value.field == "signature"


def test_signature_by_another_key_is_refused() -> None:
    rec = make(A, "pledge", body("pledge"))
    theirs = make(B, "pledge", body("pledge"))
    forged = rec.raw[:-64] + theirs.signature
    with pytest.raises(SignatureError):
        decode(forged)


def test_unknown_kind_is_refused() -> None:
    raw = resign([1, ID_Y, A.public, T0, "poll", {"question": "?"}])
    with pytest.raises(SchemaError) as err:
        decode(raw)
    assert err.value.field == "kind"


def test_body_is_validated_on_decode() -> None:
    raw = resign([1, ID_Y, A.public, T0, "pledge", {"offer": ID_Y, "quantity": -1}])
    with pytest.raises(SchemaError) as err:
        decode(raw)
    assert err.value.field == "quantity"


def test_build_validates_the_body() -> None:
    with pytest.raises(SchemaError):
        make(A, "pledge", {"offer": ID_Y})


def test_build_refuses_a_float() -> None:
    with pytest.raises((DecodeError, SchemaError)):
        make(A, "pledge", body("pledge", quantity=1.0))


def test_record_size_limit() -> None:
    rec = make(A, "guide", body("guide"))
    exact = limits_from_mapping({"max_record_bytes": len(rec.raw)})
    assert decode(rec.raw, limits=exact).id == rec.id
    smaller = limits_from_mapping({"max_record_bytes": len(rec.raw) - 1})
    with pytest.raises(TooLargeError):
        decode(rec.raw, limits=smaller)
    with pytest.raises(TooLargeError):
        build_record(A, ID_Y, "guide", body("guide"), T0, limits=smaller)


def test_largest_guide_body_fits_in_a_record() -> None:
    rec = make(A, "guide", body("guide", body="x" * 48 * 1024))
    assert len(rec.raw) <= DEFAULT_LIMITS.max_record_bytes
    assert decode(rec.raw).id == rec.id


def test_trailing_byte_is_refused() -> None:
    rec = make(A, "pledge", body("pledge"))
    with pytest.raises(DecodeError, match="trailing"):
        decode(rec.raw + b"\x00")


def test_truncated_record_is_refused() -> None:
    rec = make(A, "pledge", body("pledge"))
    for n in range(len(rec.raw)):
        with pytest.raises(DecodeError):
            decode(rec.raw[:n])


def test_peek_reads_author_and_time_at_their_fixed_place_or_not_at_all() -> None:
    """The envelope peeks route and order records without parsing them; anything else gives nothing."""
    from protocol.records import peek_author, peek_created_ms

    rec = make(A, "guide", body("guide"))
    assert peek_author(rec.raw) == A.public and peek_created_ms(rec.raw) == T0
    for bad in (b"", rec.raw[:60], b"\x00" + rec.raw, msgpack.packb([1, 2, 3])):
        assert peek_author(bad) == b"" and peek_created_ms(bad) is None
