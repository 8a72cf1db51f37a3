"""Murmurations profiles (hub/opendata/murmurations.py) against the Murmurations library's own schemas."""

from __future__ import annotations

from hub.opendata import load, murmurations
from hub.opendata.common import Omitted

from .conftest import World
from .schemas import murmurations_errors


def test_every_members_profile_validates(world: World) -> None:
    omitted = Omitted()
    profiles = murmurations.murmurations_profiles(world.store.view(load.directory_records), omitted)
    f0 = world.s.a.founders[0]
    assert set(profiles) == {k.hub_id for k in world.s.a.founders}  # not the applicant, not the assessor
    for hub_id, profile in profiles.items():
        assert murmurations_errors(profile) == [], hub_id
        assert profile["unique_id"] == hub_id and profile["linked_schemas"] == ["organizations_schema-v1.0.0"]
    gofal = profiles[f0.hub_id]
    assert gofal["name"] == "Gofal Gwynedd" and {"cooperative", "care", "Home care"} <= set(gofal["tags"])
    powys = profiles[world.s.a.founders[2].hub_id]
    assert "contact_details" not in powys and "primary_url" not in powys and omitted == {"email": 1, "url": 1}


def test_the_validator_catches_a_bad_url() -> None:
    assert murmurations_errors({"linked_schemas": ["organizations_schema-v1.0.0"], "name": "X",
                                "primary_url": "ftp://x.example"})
