"""OCDS releases of closed joint purchases (hub/opendata/ocds.py), validated against the OCDS 1.1.5 release and
release-package schemas."""

from __future__ import annotations

import json

from hub.opendata import load, ocds

from .conftest import World
from .schemas import ocds_package_errors, ocds_release_errors


def _release(world: World, offer_id: bytes) -> dict | None:
    return ocds.ocds_release(world.store.view(load.offer_records, offer_id), offer_id)


def test_an_awarded_purchase_is_a_valid_release_with_its_tally(world: World) -> None:
    release = _release(world, world.awarded.id)
    assert release is not None
    assert ocds_release_errors(release) == []
    assert release["ocid"] == "ocds-coophub-" + world.awarded.id.hex()
    assert release["id"] == world.s["close"].id.hex()
    assert release["tag"] == ["tender", "award"] and release["tender"]["status"] == "complete"
    (award,) = release["awards"]
    # 60 + 50 + 40 = 150 boxes reach the 100-box tier at 800 pence: 150 × £8.00
    assert release["tender"]["items"][0]["quantity"] == 150
    assert award["value"] == {"amount": 1200.0, "currency": "GBP"}
    assert release["tender"]["items"][0]["unit"]["value"] == {"amount": 8.0, "currency": "GBP"}
    assert sorted(i["id"] for i in award["items"]) == sorted(
        p.id.hex() for p in (world.s["pledge0"], world.s["pledge1"], world.s["pledge2"]))
    roles = {p["name"]: p["roles"] for p in release["parties"]}
    assert roles["Cardiff Community Carers"] == ["procuringEntity", "buyer"]
    assert roles["Gofal Gwynedd"] == ["buyer"]


def test_a_cancelled_purchase_is_a_tender_cancellation(world: World) -> None:
    release = _release(world, world.cancelled.id)
    assert release is not None and ocds_release_errors(release) == []
    assert release["tag"] == ["tender", "tenderCancellation"] and "awards" not in release
    assert release["tender"]["status"] == "cancelled"


def test_an_open_offer_has_no_release_yet(world: World) -> None:
    assert _release(world, world.open_offer.id) is None
    assert _release(world, world.s["guide_v1"].id) is None  # not an offer at all


def test_the_package_validates_and_is_the_same_on_every_export(world: World) -> None:
    releases = [r for o in world.store.view(load.closed_offer_ids) if (r := _release(world, o)) is not None]
    assert len(releases) == 2
    package = ocds.release_package(releases, "https://hub.example/api/v1/export/ocds.json", "Care")
    assert ocds_package_errors(package) == []
    again = ocds.release_package([r for o in world.store.view(load.closed_offer_ids)
                                  if (r := _release(world, o)) is not None], package["uri"], "Care")
    assert json.dumps(again) == json.dumps(package)


def test_the_validator_catches_a_wrong_code(world: World) -> None:
    release = _release(world, world.awarded.id)
    assert release is not None
    release["tender"]["status"] = "awarded"  # not in the closed tenderStatus codelist
    assert any("tender/status" in e for e in ocds_release_errors(release))
