"""Publish-time checks on open-data values (hub/opendata/validate.py): bad e-mail addresses, URLs, currencies
and language tags are refused with one line on the CLI and a 422 JSON error on the API, and nothing is stored;
the same values in a peer's record are stored (convergence) and left out of exports instead."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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

REPO = Path(__file__).resolve().parents[2]
DAY = 86_400_000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# -- API --------------------------------------------------------------------------------------------------------


@dataclass
class Hub:
    home: Home
    store: Store
    client: TestClient
    charter: Record

    async def publish(self, kind: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {self.home.token}"}
        async with self.client.post("/api/v1/publish", json={"kind": kind, "body": body}, headers=headers) as r:
            return r.status, await r.json()


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    home = Home.create(tmp_path / "alpha", "Alpha Care", region="Cardiff")
    body = {"name": "Care Co-ops", "founders": [home.key.public, HubKey.generate().public],
            "endorsements_needed": 1,
            "schemes": [{"id": "care-quality", "name": "Care Quality", "assessors": [home.key.public]}]}
    charter = build_record(home.key, bytes(32), "charter", body, now_ms())
    store = Store(home.db_path, limits=home.limits(), blobs_dir=home.blobs_dir)
    assert store.ingest([charter.raw], now_ms=now_ms())[0].status == "accepted"
    client = TestClient(TestServer(make_app(home, store, web_pages=False, federation=False), host="127.0.0.1",
                                   port=0))
    await client.start_server()
    try:
        yield Hub(home, store, client, charter)
    finally:
        await client.close()
        store.close()


PROFILE = {"name": "Alpha Care", "regions": ["Cardiff"], "services": [{"name": "Home care", "category": "care"}],
           "peer_urls": []}
GUIDE = {"title": "Lifting", "summary": "Lift safely.", "body": "# Lift", "license": "CC-BY-4.0", "tags": [],
         "language": "en"}
OFFER = {"title": "Gloves", "description": "Nitrile", "category": "health", "unit": "box", "tiers": [[1, 900]],
         "currency": "GBP", "min_total": 10, "deadline": now_ms() + 30 * DAY, "regions": ["Cardiff"]}
BAD = [
    ("profile", {**PROFILE, "contact": {"email": "alpha at example"}}, "contact email"),
    ("profile", {**PROFILE, "contact": {"email": "hello@alpha.test"}}, "special-use or reserved name"),
    ("profile", {**PROFILE, "website": "http://alpha.example:99999/"}, "website"),
    ("profile", {**PROFILE, "peer_urls": ["https://:8080/x"]}, "peer URL"),
    ("guide", {**GUIDE, "language": "zzz"}, "BCP 47"),
    ("guide", {**GUIDE, "language": "xx-zz"}, "BCP 47"),
    ("offer", {**OFFER, "currency": "XYZ"}, "ISO 4217"),
    ("offer", {**OFFER, "currency": "DEM"}, "ISO 4217"),  # a withdrawn currency
]


@pytest.mark.parametrize(("kind", "body", "says"), BAD, ids=[f"{k}-{s}" for k, _b, s in BAD])
async def test_the_api_refuses_bad_values_and_stores_nothing(hub: Hub, kind: str, body: dict[str, Any],
                                                              says: str) -> None:
    before = hub.store.count()
    status, reply = await hub.publish(kind, body)
    assert status == 422, reply
    assert reply["error"] == "invalid" and says in reply["detail"] and "\n" not in reply["detail"]
    assert hub.store.count() == before


async def test_good_values_are_published(hub: Hub) -> None:
    for kind, body in (("profile", {**PROFILE, "contact": {"email": "helo@gofal.cymru"},
                                    "website": "https://gofal.example/"}),
                       ("guide", {**GUIDE, "language": "cy-GB"}), ("offer", {**OFFER, "currency": "EUR"})):
        status, reply = await hub.publish(kind, body)
        assert status == 200 and reply["status"] == "accepted", reply


async def test_an_attestation_gets_its_credential_and_a_forged_one_is_refused(hub: Hub) -> None:
    body = {"subject": format_hub_id(hub.charter.body["founders"][1]), "scheme": "care-quality", "level": "gold",
            "valid_from": now_ms(), "valid_until": now_ms() + DAY}
    status, reply = await hub.publish("attestation", body)
    assert status == 200, reply
    stored = hub.store.get_record(bytes.fromhex(reply["id"]))
    assert stored is not None and stored.body["credential"].count(".") == 2
    before = hub.store.count()
    status, reply = await hub.publish("attestation", {**body, "level": "silver",
                                                      "credential": stored.body["credential"]})
    assert status == 422 and "credential" in reply["detail"] and hub.store.count() == before


def test_a_peers_record_with_such_values_is_still_stored(tmp_path: Path) -> None:
    key = HubKey.generate()
    charter = build_record(key, bytes(32), "charter", {"name": "C", "founders": [key.public],
                                                       "endorsements_needed": 1, "schemes": []}, now_ms())
    profile = build_record(key, charter.id, "profile", {**PROFILE, "contact": {"email": "not an address"}},
                           now_ms())
    offer = build_record(key, charter.id, "offer", {**OFFER, "currency": "XYZ"}, now_ms())
    with Store(tmp_path / "peer.sqlite3") as store:
        results = store.ingest([charter.raw, profile.raw, offer.raw], now_ms=now_ms(), source="peer")
        assert [r.status for r in results] == ["accepted"] * 3


# -- CLI --------------------------------------------------------------------------------------------------------


def coophub(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COOPHUB_")}
    return subprocess.run([sys.executable, "-m", "cli.main", *args, "--home", str(home)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)


def records(home: Path) -> int:
    result = coophub(home, "status", "--json")
    assert result.returncode == 0, result.stderr
    return int(json.loads(result.stdout)["records"])


@pytest.fixture(scope="module")
def cli_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("cli") / "alpha"
    assert coophub(home, "init", "--name", "Alpha Care").returncode == 0
    assert coophub(home, "charter", "create", "--association", "Care Co-ops").returncode == 0
    return home


CLI_BAD = [
    (("publish", "profile", "--email", "alpha at example"), "contact email"),
    (("publish", "profile", "--website", "https://alpha.example:70000/"), "website"),
    (("publish", "guide", "GUIDE", "--title", "Lifting", "--license", "CC-BY-4.0", "--language", "zzz"),
     "BCP 47"),
    (("publish", "offer", "--title", "Gloves", "--unit", "box", "--tier", "1:9.00", "--currency", "ABC",
      "--min-total", "10", "--deadline", "2031-01-01"), "ISO 4217"),
]


@pytest.mark.parametrize(("args", "says"), CLI_BAD, ids=[s for _a, s in CLI_BAD])
def test_the_cli_refuses_bad_values_in_one_line(cli_home: Path, tmp_path: Path, args: tuple[str, ...],
                                                says: str) -> None:
    guide = tmp_path / "guide.md"
    guide.write_text("# Lifting\n\nBend your knees.\n", encoding="utf-8")
    before = records(cli_home)
    result = coophub(cli_home, *(str(guide) if a == "GUIDE" else a for a in args))
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("coophub: error:") and says in line
    assert records(cli_home) == before
