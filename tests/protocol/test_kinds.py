"""Each kind's body schema (docs/protocol.md §5): valid bodies pass, every way to break a field is refused.

The per-field cases are generated from ``KINDS`` itself, so a field added to a kind is tested without editing
this file; hand-written cases below cover the rules a generic walk cannot see.
"""

from __future__ import annotations

from typing import Any

import pytest

from protocol import KINDS, OPEN_LICENSES, SERVICE_CATEGORIES, SchemaError, TooLargeError, validate_body
from protocol.schema import Field

from .factories import ID_X, ID_Y, T0, body

_WRONG_TYPE: dict[str, Any] = {"str": 5, "int": "5", "bytes": "x" * 32, "bool": 1, "list": "x", "map": ["x"]}


def _fields() -> list[tuple[str, str, Field]]:
    return [(kind, name, spec) for kind, obj in KINDS.items() for name, spec in obj.fields.items()]


FIELDS = _fields()
IDS = [f"{kind}.{name}" for kind, name, _ in FIELDS]


def refused(kind: str, b: Any, field: str, error: type[Exception] = SchemaError) -> None:
    with pytest.raises(error) as err:
        validate_body(kind, b)
    assert type(err.value) is error
    assert err.value.field == field  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_full_valid_body_passes(kind: str) -> None:
    b = body(kind)
    assert set(b) == set(KINDS[kind].fields), "the factory body should exercise every field"
    assert validate_body(kind, b) == b


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_required_fields_alone_pass(kind: str) -> None:
    b = {k: v for k, v in body(kind).items() if KINDS[kind].fields[k].required}
    assert validate_body(kind, b) == b


@pytest.mark.parametrize(("kind", "name", "spec"), FIELDS, ids=IDS)
def test_missing_required_field(kind: str, name: str, spec: Field) -> None:
    b = body(kind)
    del b[name]
    if spec.required:
        refused(kind, b, name)
    else:
        assert validate_body(kind, b) == b


@pytest.mark.parametrize(("kind", "name", "spec"), FIELDS, ids=IDS)
def test_wrong_type(kind: str, name: str, spec: Field) -> None:
    refused(kind, body(kind, **{name: _WRONG_TYPE[spec.kind]}), name)


@pytest.mark.parametrize(("kind", "name", "spec"), [f for f in FIELDS if f[2].kind == "int"],
                         ids=[i for i, f in zip(IDS, FIELDS, strict=True) if f[2].kind == "int"])
def test_bool_is_not_an_integer(kind: str, name: str, spec: Field) -> None:
    refused(kind, body(kind, **{name: True}), name)


@pytest.mark.parametrize(("kind", "name", "spec"), [f for f in FIELDS if f[2].max_len is not None],
                         ids=[i for i, f in zip(IDS, FIELDS, strict=True) if f[2].max_len is not None])
def test_too_long(kind: str, name: str, spec: Field) -> None:
    assert spec.max_len is not None
    n = spec.max_len + 1
    value: Any
    if spec.kind == "str":
        value = "a" * n
    elif spec.kind == "bytes":
        value = bytes(n)
    else:
        value = [body(kind)[name][0]] * n
    refused(kind, body(kind, **{name: value}), name, TooLargeError)


@pytest.mark.parametrize(("kind", "name", "spec"), [f for f in FIELDS if f[2].kind == "int"],
                         ids=[i for i, f in zip(IDS, FIELDS, strict=True) if f[2].kind == "int"])
def test_out_of_range(kind: str, name: str, spec: Field) -> None:
    assert spec.minimum is not None and spec.maximum is not None
    refused(kind, body(kind, **{name: spec.minimum - 1}), name)
    refused(kind, body(kind, **{name: spec.maximum + 1}), name)


@pytest.mark.parametrize(("kind", "name", "spec"), [f for f in FIELDS if f[2].kind == "int"],
                         ids=[i for i, f in zip(IDS, FIELDS, strict=True) if f[2].kind == "int"])
def test_range_bounds_are_inclusive(kind: str, name: str, spec: Field) -> None:
    for value in (spec.minimum, spec.maximum):
        b = body(kind, **{name: value})
        if kind == "attestation":  # keep valid_from < valid_until, which the bounds alone would break
            other = "valid_until" if name == "valid_from" else "valid_from"
            b[other] = spec.maximum if name == "valid_from" else spec.minimum
            if b["valid_from"] >= b["valid_until"]:
                continue
        assert validate_body(kind, b)[name] == value


@pytest.mark.parametrize(("kind", "name", "spec"),
                         [f for f in FIELDS if f[2].min_len > 0 and f[2].kind != "bytes"],
                         ids=[i for i, f in zip(IDS, FIELDS, strict=True)
                              if f[2].min_len > 0 and f[2].kind != "bytes"])
def test_too_short(kind: str, name: str, spec: Field) -> None:
    empty: Any = "" if spec.kind == "str" else []
    refused(kind, body(kind, **{name: empty}), name)


@pytest.mark.parametrize(("kind", "name", "spec"), [f for f in FIELDS if f[2].kind == "bytes"],
                         ids=[i for i, f in zip(IDS, FIELDS, strict=True) if f[2].kind == "bytes"])
def test_ids_are_exactly_32_bytes(kind: str, name: str, spec: Field) -> None:
    refused(kind, body(kind, **{name: bytes(31)}), name)


@pytest.mark.parametrize(("kind", "name", "spec"), [f for f in FIELDS if f[2].choices],
                         ids=[i for i, f in zip(IDS, FIELDS, strict=True) if f[2].choices])
def test_outside_enumeration(kind: str, name: str, spec: Field) -> None:
    refused(kind, body(kind, **{name: "not-a-choice"}), name)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_unknown_field(kind: str) -> None:
    refused(kind, body(kind, colour="blue"), "colour")


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_body_must_be_a_map(kind: str) -> None:
    refused(kind, [body(kind)], "")


def test_unknown_kind() -> None:
    refused("poll", {}, "kind")


# --- nested fields ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "name", "item_field"), [
    ("charter", "schemes", "id"), ("charter", "schemes", "name"), ("charter", "schemes", "assessors"),
    ("profile", "services", "name"), ("profile", "services", "category"),
    ("guide", "attachments", "name"), ("guide", "attachments", "media_type"),
    ("guide", "attachments", "size"),
    ("guide", "attachments", "hash"),
])
def test_nested_required_field_is_named_by_path(kind: str, name: str, item_field: str) -> None:
    b = body(kind)
    del b[name][0][item_field]
    refused(kind, b, f"{name}[0].{item_field}")


def test_nested_unknown_field_is_named_by_path() -> None:
    b = body("profile")
    b["contact"]["fax"] = "none"
    refused("profile", b, "contact.fax")


def test_list_item_errors_are_named_by_index() -> None:
    refused("profile", body("profile", regions=["ok", 5]), "regions[1]")
    refused("guide", body("guide", tags=["ok", "Not A Slug"]), "tags[1]")
    refused("charter", body("charter", founders=[ID_X, b"short"]), "founders[1]")


@pytest.mark.parametrize(("kind", "name", "value"), [
    ("charter", "founders", [ID_X, ID_X]),
    ("profile", "regions", ["gwynedd", "gwynedd"]),
    ("profile", "stakeholders", ["workers", "workers"]),
    ("profile", "peer_urls", ["https://a.example", "https://a.example"]),
    ("guide", "tags", ["a", "a"]),
    ("offer", "regions", ["x", "x"]),
    ("offer-close", "pledges", [ID_X, ID_X]),
])
def test_unique_lists_refuse_repeats(kind: str, name: str, value: list[Any]) -> None:
    refused(kind, body(kind, **{name: value}), name)


def test_scheme_assessors_unique_and_non_empty() -> None:
    scheme = {"id": "s", "name": "S", "assessors": [ID_X, ID_X]}
    refused("charter", body("charter", schemes=[scheme]), "schemes[0].assessors")
    refused("charter", body("charter", schemes=[{**scheme, "assessors": []}]), "schemes[0].assessors")


def test_charter_may_have_no_schemes() -> None:
    assert validate_body("charter", body("charter", schemes=[]))["schemes"] == []


# --- kind-specific rules --------------------------------------------------------------------------------

@pytest.mark.parametrize("licence", sorted(OPEN_LICENSES))
def test_open_licences_pass(licence: str) -> None:
    validate_body("guide", body("guide", license=licence))


@pytest.mark.parametrize("licence", ["CC-BY-NC-4.0", "CC-BY-ND-4.0", "CC-BY-NC-SA-4.0", "proprietary", "mit"])
def test_closed_or_misspelt_licences_are_refused(licence: str) -> None:
    refused("guide", body("guide", license=licence), "license")


@pytest.mark.parametrize("category", sorted(SERVICE_CATEGORIES))
def test_service_categories(category: str) -> None:
    b = body("profile")
    b["services"][0]["category"] = category
    validate_body("profile", b)
    validate_body("offer", body("offer", category=category))


@pytest.mark.parametrize("url", ["ftp://x.example", "https://", "https://a b", "javascript:alert(1)", "x"])
def test_urls_are_http_or_https(url: str) -> None:
    refused("profile", body("profile", website=url), "website")
    refused("profile", body("profile", peer_urls=[url]), "peer_urls[0]")
    refused("attestation", body("attestation", evidence_url=url), "evidence_url")


@pytest.mark.parametrize("language", ["en", "cy", "cy-GB", "zh-Hant-TW", "fil"])
def test_language_tags_pass(language: str) -> None:
    validate_body("guide", body("guide", language=language))


@pytest.mark.parametrize("language", ["EN", "english", "e", "en_GB", "en-"])
def test_bad_language_tags(language: str) -> None:
    refused("guide", body("guide", language=language), "language")


@pytest.mark.parametrize("currency", ["gbp", "GB", "£", "EURO"])
def test_bad_currency(currency: str) -> None:
    error = TooLargeError if len(currency) > 3 else SchemaError
    refused("offer", body("offer", currency=currency), "currency", error)


@pytest.mark.parametrize("tag", ["Safety", "-safety", "safe ty", "safe_ty"])
def test_bad_tags(tag: str) -> None:
    refused("guide", body("guide", tags=[tag]), "tags[0]")


@pytest.mark.parametrize("media_type", ["pdf", "application/", "Application/PDF", "a/b c"])
def test_bad_media_type(media_type: str) -> None:
    b = body("guide")
    b["attachments"][0]["media_type"] = media_type
    refused("guide", b, "attachments[0].media_type")


@pytest.mark.parametrize("scheme_id", ["Care", "-care", "care quality", "a" * 64])
def test_bad_scheme_ids(scheme_id: str) -> None:
    error = TooLargeError if len(scheme_id) > 63 else SchemaError
    refused("attestation", body("attestation", scheme=scheme_id), "scheme", error)


def test_valid_until_must_follow_valid_from() -> None:
    refused("attestation", body("attestation", valid_until=T0), "valid_until")
    refused("attestation", body("attestation", valid_until=T0 - 1), "valid_until")
    validate_body("attestation", body("attestation", valid_until=T0 + 1))


@pytest.mark.parametrize(("tiers", "field"), [
    ([[100, 800], [1, 900]], "tiers"),          # not increasing
    ([[1, 900], [1, 800]], "tiers"),            # repeated quantity
    ([[0, 900]], "tiers[0]"),                   # quantity below 1
    ([[1]], "tiers[0]"),                        # not a pair
    ([[1, 2, 3]], "tiers[0]"),                  # not a pair
    ([[1, -1]], "tiers[0][1]"),                 # negative price
    ([[1, 10**12 + 1]], "tiers[0][1]"),         # price over the maximum
    ([[1, "9"]], "tiers[0][1]"),                # price not an integer
    ([], "tiers"),                              # at least one tier
])
def test_bad_tiers(tiers: list[Any], field: str) -> None:
    b = body("offer", tiers=tiers)
    with pytest.raises((SchemaError, TooLargeError)) as err:
        validate_body("offer", b)
    assert err.value.field == field  # type: ignore[attr-defined]


def test_a_tier_may_be_free() -> None:
    validate_body("offer", body("offer", tiers=[[1, 0]]))


def test_offer_close_may_name_no_pledges() -> None:
    validate_body("offer-close", body("offer-close", outcome="cancelled", pledges=[]))


def test_pledge_quantity_zero_is_valid() -> None:
    validate_body("pledge", body("pledge", quantity=0))


def test_validate_returns_the_same_object() -> None:
    b = body("revocation", target=ID_Y)
    assert validate_body("revocation", b) is b
