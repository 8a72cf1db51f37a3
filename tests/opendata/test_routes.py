"""The open-data endpoints (hub/opendata/routes.py) on a real aiohttp server on 127.0.0.1, and
``coophub export --format ocds|badges|murmurations`` — each document validated against its standard's schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import jwt as pyjwt
import pytest
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hub.app import make_app
from hub.home import Home
from hub.opendata import badges
from protocol import build_record, parse_hub_id

from ..hub.factory import DAY, raws
from .conftest import World
from .schemas import hsds_errors, murmurations_errors, ob_errors, ocds_package_errors

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
async def client(world: World, tmp_path: Path) -> AsyncIterator[TestClient]:
    home = Home.create(tmp_path / "home", "Serving Hub")
    app = make_app(home, world.store, now_ms=lambda: world.s.a.now, web_pages=False, federation=False)
    c = TestClient(TestServer(app, host="127.0.0.1", port=0))
    await c.start_server()
    try:
        yield c
    finally:
        await c.close()


async def _get(client: TestClient, path: str, status: int = 200) -> dict:
    async with client.get(path) as resp:
        assert resp.status == status, await resp.text()
        assert resp.content_type == "application/json"
        data: dict = await resp.json()
        return data


async def test_hsds_and_murmurations(world: World, client: TestClient) -> None:
    async with client.get("/api/v1/export/hsds.json") as resp:
        assert resp.headers["Coophub-Omitted"] == "email=1, url=1"
        assert hsds_errors(await resp.json()) == []
    f0 = world.s.a.founders[0]
    profile = await _get(client, f"/api/v1/hubs/{f0.hub_id}/murmurations.json")
    assert profile["name"] == "Gofal Gwynedd" and murmurations_errors(profile) == []
    missing = await _get(client, f"/api/v1/hubs/{world.s.applicant.hub_id}/murmurations.json", 404)
    assert missing["error"] == "not-found"
    assert (await _get(client, "/api/v1/hubs/nonsense/murmurations.json", 400))["error"] == "invalid"


async def test_ocds(world: World, client: TestClient) -> None:
    package = await _get(client, f"/api/v1/offers/{world.awarded.id.hex()}/ocds.json")
    assert ocds_package_errors(package) == [] and len(package["releases"]) == 1
    assert package["publisher"] == {"name": "North Wales Care Co-operatives"}
    everything = await _get(client, "/api/v1/export/ocds.json")
    assert ocds_package_errors(everything) == [] and len(everything["releases"]) == 2
    still_open = await _get(client, f"/api/v1/offers/{world.open_offer.id.hex()}/ocds.json", 404)
    assert "not closed yet" in still_open["detail"]
    await _get(client, f"/api/v1/offers/{'0' * 64}/ocds.json", 404)


async def test_credentials_and_revocations(world: World, client: TestClient) -> None:
    a = world.s.a
    body = badges.issue_credential(world.store, a.assessor, a.id, {
        "subject": a.founders[1].public, "scheme": "care-quality", "level": "gold", "valid_from": a.clock,
        "valid_until": a.clock + DAY}, "https://assessor.example")
    record = build_record(a.assessor, a.id, "attestation", body, a.tick())
    assert world.store.ingest(raws([record]), now_ms=a.now)[0].status == "accepted"
    async with client.get(f"/api/v1/marks/{record.id.hex()}/credential") as resp:
        assert resp.headers["Coophub-Proof"] == "vc-jwt" and resp.headers["Coophub-Mark-Status"] == "valid"
        assert ob_errors(await resp.json()) == []
    async with client.get(f"/api/v1/marks/{record.id.hex()}/credential.jwt") as resp:
        assert resp.status == 200 and resp.content_type == "application/jwt"
        token = await resp.text()
    claims = pyjwt.decode(token, Ed25519PublicKey.from_public_bytes(a.assessor.public), algorithms=["EdDSA"],
                          options={"verify_exp": False})  # the factory's clock is in the past
    assert claims["credentialStatus"]["id"].startswith("https://assessor.example/api/v1/hubs/")
    unsigned = world.s["attest0"].id.hex()
    async with client.get(f"/api/v1/marks/{unsigned}/credential") as resp:
        assert resp.headers["Coophub-Proof"] == "none"
    assert (await _get(client, f"/api/v1/marks/{unsigned}/credential.jwt", 404))["error"] == "not-found"
    await _get(client, f"/api/v1/marks/{world.awarded.id.hex()}/credential", 404)  # an offer, not a mark
    revocation = a.revoke(a.assessor, record)
    assert world.store.ingest(raws([revocation]), now_ms=a.now)[0].status == "accepted"
    listing = await _get(client, f"/api/v1/hubs/{a.assessor.hub_id}/revocations.json")
    assert claims["id"] in {e["id"] for e in listing["revokedCredential"]}


def test_cli_exports_every_format(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COOPHUB_")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cli.main", *args, "--home", str(tmp_path / "h")], cwd=REPO,
                              env=env, capture_output=True, text=True, timeout=60)

    assert run("init", "--name", "Alpha Care", "--url", "https://alpha.example").returncode == 0
    me = json.loads(run("status", "--json").stdout)["hub_id"]
    assert run("charter", "create", "--association", "Care Co-ops", "--scheme", "care-quality:Care Quality",
               "--assessor", me).returncode == 0
    assert run("publish", "profile", "--service", "Home care:care", "--region", "Cardiff").returncode == 0
    offer = run("publish", "offer", "--title", "Gloves", "--unit", "box", "--tier", "1:9.00", "--currency",
                "GBP", "--min-total", "1", "--deadline", "2031-01-01").stdout.strip()
    assert run("pledge", offer, "3").returncode == 0
    assert run("close-offer", offer, "--outcome", "awarded").returncode == 0
    assert run("attest", me, "--scheme", "care-quality", "--level", "gold", "--valid-until",
               "2031-01-01").returncode == 0
    outputs = {}
    for fmt in ("hsds", "ocds", "badges", "murmurations"):
        result = run("export", "--format", fmt)
        assert result.returncode == 0 and result.stderr == "", (fmt, result.stderr)
        outputs[fmt] = json.loads(result.stdout)
    assert hsds_errors(outputs["hsds"]) == []
    assert ocds_package_errors(outputs["ocds"]) == [] and len(outputs["ocds"]["releases"]) == 1
    (credential,) = outputs["badges"]["credentials"]
    assert ob_errors(credential["credential"]) == [] and credential["status"] == "valid"
    assert credential["credential"]["credentialStatus"]["id"].startswith("https://alpha.example/")
    claims = pyjwt.decode(credential["jwt"], Ed25519PublicKey.from_public_bytes(parse_hub_id(me)),
                          algorithms=["EdDSA"])
    assert claims["credentialSubject"]["achievement"]["achievementType"] == "QualityAssuranceCredential"
    (profile,) = outputs["murmurations"]["profiles"]
    assert murmurations_errors(profile) == []
