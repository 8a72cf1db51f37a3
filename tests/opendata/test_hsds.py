"""HSDS 3.0 export (hub/hsds.py) validated against Open Referral's official schemas (tests/opendata/schemas)."""

from __future__ import annotations

import copy

from hub.hsds import HSDS_TABLES, export_hsds
from hub.opendata.common import Omitted

from .conftest import World
from .schemas import hsds_errors


def test_export_validates_against_the_official_tabular_schema(world: World) -> None:
    omitted = Omitted()
    doc = export_hsds(world.store, world.now, omitted)
    assert hsds_errors(doc) == []
    assert set(doc) == set(HSDS_TABLES)
    assert {o["name"] for o in doc["organization"]} == {"Gofal Gwynedd", "Cardiff Community Carers",
                                                        "Powys Supported Living"}  # members only
    assert len(doc["service"]) == 5 and len(doc["attribute"]) == 5
    assert all("label" not in a for a in doc["attribute"])


def test_the_validator_refuses_plural_tables_and_fields_hsds_lacks(world: World) -> None:
    doc = export_hsds(world.store, world.now)
    plural = {f"{name}s": rows for name, rows in doc.items()}
    assert any("Additional properties" in e and "'organizations'" in e for e in hsds_errors(plural))
    labelled = copy.deepcopy(doc)
    labelled["attribute"][0]["label"] = "Care"
    assert any("'label' was unexpected" in e for e in hsds_errors(labelled))
    dangling = copy.deepcopy(doc)
    dangling["service"][0]["organization_id"] = "00000000-0000-4000-8000-000000000000"
    assert any("is no organization id" in e for e in hsds_errors(dangling))


def test_accreditations_name_the_assessor_not_its_hub_id(world: World) -> None:
    doc = export_hsds(world.store, world.now)
    gofal = next(o["id"] for o in doc["organization"] if o["name"] == "Gofal Gwynedd")
    marks = {s["accreditations"] for s in doc["service"] if s["organization_id"] == gofal}
    assert marks == {"Care Quality Mark (care-quality): gold, valid until 2027-01-01, "
                     "attested by Arolygiaeth Gofal Cymru"}
    assert all("hub_" not in s.get("accreditations", "") for s in doc["service"])


def test_a_peers_invalid_email_and_url_are_omitted_and_counted(world: World) -> None:
    omitted = Omitted()
    doc = export_hsds(world.store, world.now, omitted)
    powys = next(o for o in doc["organization"] if o["name"] == "Powys Supported Living")
    assert "email" not in powys and "website" not in powys
    assert omitted == {"email": 1, "url": 1}
    assert omitted.line() == "omitted 1 invalid email, 1 invalid url"
    phones = [p["number"] for p in doc["phone"]]
    assert phones == ["+44 1597 000000"]  # the rest of the record is still exported


def test_ids_are_stable_across_exports_and_hubs(world: World) -> None:
    assert export_hsds(world.store, world.now) == export_hsds(world.store, world.now + 1000)
