"""The JSON API (hub/app.py, docs/api.md) over a real Store, served by a real aiohttp server on 127.0.0.1.

Every bad request must get the documented JSON error and leave the database unchanged (Store.count()).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.app import make_app
from hub.home import Home
from hub.store import Store
from protocol import HubKey, Record, build_record, format_hub_id

DAY = 86_400_000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class Hub:
    home: Home
    store: Store
    client: TestClient
    charter: Record
    other: HubKey  # a second founder, not served by this hub
    outsider: HubKey  # not a member

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.home.token}"}

    def ingest(self, key: HubKey, kind: str, body: dict[str, Any], created_ms: int | None = None) -> Record:
        record = build_record(key, self.charter.id, kind, body, created_ms or now_ms())
        result = self.store.ingest([record.raw], now_ms=now_ms())[0]
        assert result.status == "accepted", result
        return record

    async def publish(self, payload: Any, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        headers = kwargs.pop("headers", self.auth)
        data = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
        async with self.client.post("/api/v1/publish", data=data, headers=headers) as resp:
            return resp.status, await resp.json()

    async def get(self, path: str) -> tuple[int, Any]:
        async with self.client.get(path) as resp:
            assert resp.content_type == "application/json"
            return resp.status, await resp.json()


def _serve(home: Home, store: Store) -> TestClient:
    app = make_app(home, store, web_pages=False, federation=False)
    return TestClient(TestServer(app, host="127.0.0.1", port=0))


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    home = Home.create(tmp_path / "alpha", "Alpha Care", region="Leeds")
    other, outsider = HubKey.generate(), HubKey.generate()
    charter = build_record(
        home.key,
        bytes(32),
        "charter",
        {
            "name": "Care Co-ops",
            "founders": [home.key.public, other.public],
            "endorsements_needed": 2,
            "schemes": [{"id": "care-quality", "name": "Care Quality", "assessors": [home.key.public]}],
        },
        now_ms(),
    )
    home.config.association_id = charter.id.hex()
    home.save_config()
    store = Store(home.db_path, limits=home.limits(), blobs_dir=home.blobs_dir, association=charter.id)
    assert store.ingest([charter.raw], now_ms=now_ms())[0].status == "accepted"
    client = _serve(home, store)
    try:
        await client.start_server()
        yield Hub(home, store, client, charter, other, outsider)
    finally:
        await client.close()
        store.close()


def _profile(name: str, regions: list[str], services: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "name": name,
        "regions": regions,
        "peer_urls": [],
        "services": [{"name": n, "category": c} for n, c in services],
    }


def _offer(deadline: int, title: str = "Nitrile gloves") -> dict[str, Any]:
    return {
        "title": title,
        "description": "Boxes of 100",
        "category": "health",
        "unit": "box",
        "tiers": [[1, 900], [100, 800]],
        "currency": "GBP",
        "min_total": 50,
        "deadline": deadline,
        "regions": ["leeds"],
    }


def _assert_error(status: int, data: Any, expected_status: int, reason: str) -> None:
    assert status == expected_status, data
    assert set(data) == {"error", "detail"}, data
    assert data["error"] == reason, data
    assert data["detail"] and "\n" not in data["detail"]
    assert "Traceback" not in data["detail"]


# -- reads ---------------------------------------------------------------------------------------------------


async def test_status_has_the_documented_fields(hub: Hub) -> None:
    status, data = await hub.get("/api/v1/status")
    assert status == 200
    assert data["hub_id"] == hub.home.hub_id
    assert data["association_id"] == hub.charter.id.hex()
    assert data["member"] is True
    assert data["records"] == 1
    assert data["peers"] == 0


async def test_publish_json_then_read_record_back(hub: Hub) -> None:
    status, data = await hub.publish(
        {"kind": "profile", "body": _profile("Alpha Care", ["leeds"], [("Home care", "care")])}
    )
    assert status == 200 and data["status"] == "accepted"
    status, record = await hub.get(f"/api/v1/records/{data['id']}")
    assert status == 200
    assert record["id"] == data["id"] and record["kind"] == "profile"
    assert record["author"] == hub.home.hub_id
    assert record["body"]["name"] == "Alpha Care"
    # the raw bytes are the record: publishing them again is a duplicate with the same id
    status, again = await hub.publish({"record": record["raw"]})
    assert (status, again) == (200, {"id": data["id"], "status": "duplicate"})


async def test_publish_a_raw_record_signed_elsewhere(hub: Hub) -> None:
    record = build_record(
        hub.other,
        hub.charter.id,
        "guide",
        {
            "title": "Lone working",
            "summary": "Stay safe",
            "body": "# Hi",
            "license": "CC-BY-4.0",
            "tags": ["safety"],
            "language": "en",
        },
        now_ms(),
    )
    status, data = await hub.publish({"record": record.raw.hex()})
    assert (status, data) == (200, {"id": record.id_hex, "status": "accepted"})
    assert hub.store.get_raw(record.id) == record.raw


async def test_hub_view_and_unknown_hub(hub: Hub) -> None:
    hub.ingest(hub.home.key, "profile", _profile("Alpha Care", ["leeds"], [("Home care", "care")]))
    status, view = await hub.get(f"/api/v1/hubs/{hub.home.hub_id}")
    assert status == 200 and view["name"] == "Alpha Care" and view["member"] is True
    status, data = await hub.get(f"/api/v1/hubs/{format_hub_id(HubKey.generate().public)}")
    _assert_error(status, data, 404, "not-found")
    status, data = await hub.get("/api/v1/hubs/hub_notavalidid")
    _assert_error(status, data, 400, "invalid")


async def test_offer_with_tally(hub: Hub) -> None:
    offer = hub.ingest(hub.home.key, "offer", _offer(now_ms() + 30 * DAY))
    hub.ingest(hub.home.key, "pledge", {"offer": offer.id, "quantity": 40})
    hub.ingest(hub.other, "pledge", {"offer": offer.id, "quantity": 70})
    status, view = await hub.get(f"/api/v1/offers/{offer.id_hex}")
    assert status == 200
    assert view["tally"]["total"] == 110 and view["tally"]["status"] == "open"
    assert view["tally"]["tier"] == {"min_quantity": 100, "unit_price": 800}
    assert len(view["tally"]["pledges"]) == 2


async def test_marks_with_status_and_one_scheme(hub: Hub) -> None:
    now = now_ms()
    hub.ingest(
        hub.home.key,
        "attestation",
        {
            "subject": hub.other.public,
            "scheme": "care-quality",
            "level": "gold",
            "valid_from": now - DAY,
            "valid_until": now + DAY,
        },
    )
    other_id = format_hub_id(hub.other.public)
    status, data = await hub.get(f"/api/v1/marks/{other_id}")
    assert status == 200 and [m["status"] for m in data["marks"]] == ["valid"]
    status, data = await hub.get(f"/api/v1/marks/{other_id}?scheme=care-quality")
    assert status == 200 and data["status"] == "valid" and data["reason"]
    # a scheme the charter does not name is not "no mark": it is an error that lists the charter's schemes
    status, data = await hub.get(f"/api/v1/marks/{other_id}?scheme=other-scheme")
    _assert_error(status, data, 404, "not-found")
    assert "care-quality" in data["detail"]
    status, data = await hub.get(f"/api/v1/marks/{format_hub_id(hub.outsider.public)}?scheme=care-quality")
    assert status == 200 and data["status"] == "none"
    status, data = await hub.get(f"/api/v1/marks/{other_id}?schema=typo")
    _assert_error(status, data, 400, "invalid")


async def test_blobs_round_trip(hub: Hub) -> None:
    payload = b"checklist\x00\xff" * 100
    async with hub.client.post("/api/v1/blobs", data=payload, headers=hub.auth) as resp:
        assert resp.status == 200
        digest = (await resp.json())["hash"]
    async with hub.client.get(f"/api/v1/blobs/{digest}") as resp:
        assert resp.status == 200 and await resp.read() == payload
    status, data = await hub.get("/api/v1/blobs/" + "0" * 64)
    _assert_error(status, data, 404, "not-found")
    status, data = await hub.get("/api/v1/blobs/xyz")
    _assert_error(status, data, 400, "invalid")
    async with hub.client.post("/api/v1/blobs", data=b"x") as resp:
        _assert_error(resp.status, await resp.json(), 401, "unauthorized")


async def test_directory_filters(hub: Hub) -> None:
    now = now_ms()
    hub.ingest(hub.home.key, "profile", _profile("Alpha Care", ["leeds"], [("Home care", "care")]))
    hub.ingest(hub.other, "profile", _profile("Beta Meals", ["york"], [("Meals on wheels", "food")]))
    hub.ingest(
        hub.home.key,
        "attestation",
        {
            "subject": hub.other.public,
            "scheme": "care-quality",
            "level": "gold",
            "valid_from": now - DAY,
            "valid_until": now + DAY,
        },
    )
    hub.ingest(hub.home.key, "offer", _offer(now + 30 * DAY, "Gloves open"))
    hub.ingest(hub.home.key, "offer", _offer(now - 1000, "Aprons closed"), created_ms=now - 2000)

    async def titles(query: str) -> list[str]:
        status, data = await hub.get(f"/api/v1/directory?{query}")
        assert status == 200 and data["total"] >= len(data["results"])
        return sorted(r["title"] for r in data["results"])

    assert await titles("kind=hub") == ["Alpha Care", "Beta Meals"]
    assert await titles("kind=hub&region=york") == ["Beta Meals"]
    assert await titles("kind=hub&service=care") == ["Alpha Care"]
    assert await titles("kind=hub&mark=care-quality") == ["Beta Meals"]
    assert await titles("kind=offer") == ["Aprons closed", "Gloves open"]
    assert await titles("kind=offer&open=true") == ["Gloves open"]
    assert await titles("q=meals") == ["Beta Meals"]
    status, page = await hub.get("/api/v1/directory?limit=1&offset=1")
    assert status == 200 and len(page["results"]) == 1 and page["total"] == 4


# -- bad input: documented error, nothing stored -------------------------------------------------------------


async def test_bad_publish_requests_store_nothing(hub: Hub) -> None:
    guide = {"title": "T", "summary": "S", "body": "B", "license": "CC-BY-4.0", "tags": [], "language": "en"}
    tampered = bytearray(build_record(hub.home.key, hub.charter.id, "guide", guide, now_ms()).raw)
    tampered[-1] ^= 1
    foreign_charter = build_record(
        hub.outsider,
        bytes(32),
        "charter",
        {"name": "Other", "founders": [hub.outsider.public], "endorsements_needed": 1, "schemes": []},
        now_ms(),
    )
    foreign = build_record(hub.home.key, foreign_charter.id, "guide", guide, now_ms())
    outsider_guide = build_record(hub.outsider, hub.charter.id, "guide", guide, now_ms())
    future = build_record(hub.home.key, hub.charter.id, "guide", guide, now_ms() + DAY)
    others_guide = hub.ingest(hub.other, "guide", guide)
    me = format_hub_id(hub.home.key.public)
    cases: list[tuple[Any, dict[str, str] | None, int, str]] = [
        (b"{not json", None, 400, "invalid"),
        (b"\xff\xfe", None, 400, "invalid"),
        ([1, 2], None, 400, "invalid"),
        ({"kind": "guide"}, None, 400, "invalid"),
        ({"kind": "guide", "body": guide, "extra": 1}, None, 400, "invalid"),
        ({"kind": "no-such-kind", "body": {}}, None, 400, "invalid"),
        ({"kind": "guide", "body": {**guide, "license": "proprietary"}}, None, 400, "invalid"),
        ({"kind": "guide", "body": {**guide, "colour": "red"}}, None, 400, "invalid"),
        ({"kind": "guide", "body": "not an object"}, None, 400, "invalid"),
        ({"kind": "endorsement", "body": {"subject": "hub_typo"}}, None, 400, "invalid"),
        ({"kind": "pledge", "body": {"offer": "zz", "quantity": 1}}, None, 400, "invalid"),
        ({"kind": "guide", "body": {**guide, "title": "x" * 300}}, None, 413, "too-large"),
        ({"record": "not hex"}, None, 400, "invalid"),
        ({"record": 42}, None, 400, "invalid"),
        ({"record": "00"}, None, 422, "invalid"),
        ({"record": bytes(tampered).hex()}, None, 422, "invalid"),
        ({"record": foreign.raw.hex()}, None, 422, "wrong-association"),
        ({"record": future.raw.hex()}, None, 422, "invalid"),
        ({"kind": "pledge", "body": {"offer": "ab" * 32, "quantity": 1}}, None, 422, "missing-reference"),
        # hub.publishing: what would be stored and ignored (or is a mistake) is refused before signing
        ({"kind": "endorsement", "body": {"subject": me}}, None, 422, "invalid"),
        ({"kind": "revocation", "body": {"target": others_guide.id.hex(), "reason": "r"}}, None, 422, "invalid"),
        ({"kind": "revocation", "body": {"target": hub.charter.id.hex(), "reason": "r"}}, None, 422, "invalid"),
        ({"kind": "revocation", "body": {"target": "ab" * 32, "reason": "r"}}, None, 422, "missing-reference"),
        ({"kind": "guide", "body": guide}, {}, 401, "unauthorized"),
        ({"kind": "guide", "body": guide}, {"Authorization": "Bearer wrong"}, 401, "unauthorized"),
        ({"kind": "guide", "body": guide}, {"Authorization": f"Basic {hub.home.token}"}, 401, "unauthorized"),
        (b"x" * (hub.home.limits().max_api_body_bytes + 1), None, 413, "too-large"),
    ]
    before = hub.store.count()
    for payload, headers, expected, reason in cases:
        status, data = await hub.publish(payload, headers=hub.auth if headers is None else headers)
        _assert_error(status, data, expected, reason)
        assert hub.store.count() == before, (payload, data)
    assert hub.store.counts()["deferred"] == 0
    # A record signed elsewhere by a hub that is not eligible yet is held, not stored: 202 says so and why.
    status, data = await hub.publish({"record": outsider_guide.raw.hex()})
    assert (status, data["status"], data["reason"]) == (202, "deferred", "not-a-member"), data
    assert hub.store.count() == before and hub.store.held([outsider_guide.id]) == {outsider_guide.id}


async def test_bad_reads_get_json_errors(hub: Hub) -> None:
    cases = [
        ("/api/v1/records/" + "0" * 64, 404, "not-found"),
        ("/api/v1/records/xyz", 400, "invalid"),
        ("/api/v1/records/" + "0" * 62, 400, "invalid"),
        ("/api/v1/offers/" + "0" * 64, 404, "not-found"),
        (f"/api/v1/offers/{hub.charter.id_hex}", 404, "not-found"),  # a record, but not an offer
        ("/api/v1/offers/nope", 400, "invalid"),
        ("/api/v1/marks/hub_nope", 400, "invalid"),
        ("/api/v1/directory?limit=0", 400, "invalid"),
        ("/api/v1/directory?limit=abc", 400, "invalid"),
        ("/api/v1/directory?limit=100000", 400, "invalid"),
        ("/api/v1/directory?offset=-1", 400, "invalid"),
        ("/api/v1/directory?kind=charter", 400, "invalid"),
        ("/api/v1/directory?open=maybe", 400, "invalid"),
        ("/api/v1/directory?colour=red", 400, "invalid"),
        ("/api/v1/directory?q=" + "x" * 600, 400, "invalid"),
        ("/api/v1/no-such-route", 404, "not-found"),
        ("/api/v1/publish", 405, "method-not-allowed"),
    ]
    before = hub.store.count()
    for path, expected, reason in cases:
        status, data = await hub.get(path)
        _assert_error(status, data, expected, reason)
    assert hub.store.count() == before


async def test_free_text_with_fts_syntax_is_not_an_error(hub: Hub) -> None:
    for q in ('"unbalanced', "a AND", "NEAR(", "*", "col:umn"):
        status, data = await hub.get(f"/api/v1/directory?q={q}")
        assert status == 200, (q, data)


async def test_publish_before_joining_an_association(tmp_path: Path) -> None:
    home = Home.create(tmp_path / "new", "Newcomer")
    store = Store(home.db_path, limits=home.limits(), blobs_dir=home.blobs_dir)
    client = _serve(home, store)
    try:
        await client.start_server()
        body = {"kind": "profile", "body": _profile("Newcomer", [], [])}
        async with client.post(
            "/api/v1/publish", json=body, headers={"Authorization": f"Bearer {home.token}"}
        ) as resp:
            _assert_error(resp.status, await resp.json(), 409, "missing-reference")
        assert store.count() == 0
        async with client.get("/api/v1/status") as resp:
            data = await resp.json()
            assert data["association_id"] is None and data["member"] is False
    finally:
        await client.close()
        store.close()


async def test_app_with_web_and_federation_starts(hub: Hub) -> None:
    """make_app's hooks for hub.web and federation.driver: the full app starts and serves the API."""
    client = TestClient(TestServer(make_app(hub.home, hub.store), host="127.0.0.1", port=0))
    try:
        await client.start_server()
        async with client.get("/api/v1/status") as resp:
            assert resp.status == 200
    finally:
        await client.close()
