"""Limits: defaults, units and loading from mappings (docs/protocol.md §7)."""

from __future__ import annotations

import dataclasses

import pytest

from protocol import DEFAULT_LIMITS, Limits, limits_from_mapping


def test_defaults_match_the_documented_precedents() -> None:
    assert DEFAULT_LIMITS.max_record_bytes == 65_536  # Matrix and strfry
    assert DEFAULT_LIMITS.max_future_skew_ms == 300_000  # "a few minutes"; strfry allows 900 s
    assert DEFAULT_LIMITS.max_depth == 8


def test_limits_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_LIMITS.max_depth = 3  # type: ignore[misc]


def test_every_limit_is_a_non_negative_int() -> None:
    for f in dataclasses.fields(Limits):
        value = getattr(DEFAULT_LIMITS, f.name)
        assert type(value) is int and value >= 0, f.name


def test_mapping_overrides_named_fields_only() -> None:
    limits = limits_from_mapping({"max_record_bytes": 1000, "push_fanout": "6"})
    assert limits.max_record_bytes == 1000
    assert limits.push_fanout == 6
    assert limits.max_depth == DEFAULT_LIMITS.max_depth
    assert DEFAULT_LIMITS.max_record_bytes == 65_536


def test_mapping_builds_on_a_given_base() -> None:
    base = limits_from_mapping({"max_depth": 5})
    assert limits_from_mapping({"push_fanout": 2}, base).max_depth == 5


@pytest.mark.parametrize("values", [{"no_such_limit": 1}, {"max_depth": -1}, {"max_depth": 1.5},
                                    {"max_depth": True}, {"max_depth": "ten"}, {"max_depth": None}])
def test_mapping_refuses_bad_values(values: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        limits_from_mapping(values)
