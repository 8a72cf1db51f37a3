"""The proposal pages (hub/governance_web.py), the reviewed-guides filter, a hub's class and a guide's reviews,
against a real app and store on 127.0.0.1, with the markup checks of tests/web/a11y.py."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.app import make_app
from hub.home import Home, HubConfig
from hub.store import Store
from protocol import Record
from tests.protocol.governance_factory import DAY, MIN, T0, Assoc, key
from tests.web.a11y import problems

W1, W2, U1, COUNCIL, ASSESSOR = (key(i) for i in range(40, 45))
XSS = '<script>window.__pwned = 1</script>'
NOW = T0 + 2 * DAY


@dataclass
class Governed:
    amendment: Record
    open: Record
    guide: Record
    client: TestClient


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Governed]:
    a = Assoc.create([(W1, "worker-coop"), (W2, "worker-coop"), (U1, "user-led"), (COUNCIL, "council")],
                     assessors=[ASSESSOR])
    for k, name in ((W1, "Gofal Gwynedd"), (W2, "Cardiff Carers"), (U1, "Powys People First"),
                    (COUNCIL, "Cyngor Sir")):
        a.rec(k, "profile", {"name": name, "regions": ["Wales"], "services": [], "peer_urls": []}, T0 + 1)
    scheme = {"id": "user-led-standard", "name": "User-Led Support Standard", "assessors": [ASSESSOR.public]}
    amendment = a.propose(W1, title="Adopt the User-Led Support Standard", rule="two-thirds", quorum=50,
                          closes=T0 + DAY, body="Assessed *by* user-led organisations.",
                          amendment={"schemes": [*a.charter.body["schemes"], scheme]})
    a.vote(W1, amendment, "yes")
    a.vote(U1, amendment, "yes")
    a.delegate(W2, U1, amendment)
    a.close_honestly(W1, amendment, at=T0 + DAY + MIN)
    opened = a.propose(U1, title=f"Shared minibus {XSS}", options=["yes", f"no {XSS}"], closes=T0 + 5 * DAY,
                       at=T0 + DAY + 2 * MIN)
    a.vote(U1, opened, "yes", at=T0 + DAY + 3 * MIN)
    guide = a.rec(W1, "guide", {"title": "Safe lone working", "summary": "Staying safe on solo visits.",
                                "body": "# Notes", "license": "CC0-1.0", "tags": [], "language": "en"}, T0 + MIN)
    a.rec(W2, "review", {"guide": guide.id}, T0 + 2 * MIN)
    a.rec(U1, "review", {"guide": guide.id}, T0 + 3 * MIN)
    a.rec(U1, "guide", {"title": "Easy read minutes", "summary": "Minutes everyone can read.", "body": "# Notes",
                        "license": "CC0-1.0", "tags": [], "language": "en"}, T0 + 4 * MIN)
    store = Store(tmp_path / "hub.sqlite3", blobs_dir=tmp_path / "blobs")
    assert {r.status for r in store.ingest([a.charter.raw, *(r.raw for r in a.records)], now_ms=NOW)} == {
        "accepted"}
    home = Home(tmp_path, W1, HubConfig(name="Gofal Gwynedd", association_id=a.charter.id.hex()), "tok")
    app = make_app(home, store, now_ms=lambda: NOW, federation=False)
    try:
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            yield Governed(amendment, opened, guide, client)
    finally:
        store.close()


async def page(client: TestClient, path: str, status: int = 200) -> str:
    response = await client.get(path)
    text = await response.text()
    assert response.status == status, (path, response.status, text[:300])
    assert response.content_type == "text/html" and "default-src 'none'" in response.headers[
        "Content-Security-Policy"]
    assert not problems(text), (path, problems(text))
    assert "<script>window" not in text and "Traceback" not in text
    return text


def words(text: str) -> str:
    main = text[text.index("<main"):text.index("</main>")]
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", main)).split())


async def test_the_list_shows_open_proposals_first(site: Governed) -> None:
    text = words(await page(site.client, "/proposals"))
    assert text.index("Shared minibus") < text.index("Adopt the User-Led Support Standard")
    assert "Open for votes" in text and "Passed" in text and "Charter amendment" in text
    assert "1 of 3 voting members voted" in text


async def test_a_closed_amendment_shows_its_tally_quorum_roll_call_and_state(site: Governed) -> None:
    text = words(await page(site.client, f"/proposals/{site.amendment.id_hex}"))
    assert "Proposal to amend the charter" in text and "Passed" in text and "Final tally" in text
    assert "Quorum reached" in text and "3 taking part of 3; 2 needed" in text
    assert "Two thirds" in text and "For the motion: 4 of 4 decisive vote weight" in text
    assert "Adopted: in force from the closing time" in text and "User-Led Support Standard" in text
    assert "Cardiff Carers worker-coop 1 yes by proxy: Powys People First" in text
    assert "Recount: the ballots every hub holds give the same result as the close." in text
    assert "Assessed by user-led organisations." in text


async def test_an_open_proposal_escapes_what_members_wrote(site: Governed) -> None:
    raw = await page(site.client, f"/proposals/{site.open.id_hex}")
    assert "&lt;script&gt;" in raw
    text = words(raw)
    assert "Live tally" in text and "coophub vote" in text and "Open for votes" in text


async def test_unknown_and_malformed_proposals_are_404_pages(site: Governed) -> None:
    assert "Proposal not found" in await page(site.client, f"/proposals/{'ab' * 32}", 404)
    assert "No such proposal" in await page(site.client, "/proposals/nonsense", 404)
    assert "Page not understood" in await page(site.client, "/proposals?page=0", 400)


async def test_the_directory_filters_association_reviewed_guides(site: Governed) -> None:
    text = words(await page(site.client, "/?kind=guide&reviewed=1"))
    assert "Safe lone working" in text and "Easy read minutes" not in text and "Association-reviewed" in text
    everything = words(await page(site.client, "/?kind=guide"))
    assert "Easy read minutes" in everything
    response = await site.client.get("/api/v1/directory?kind=guide&reviewed=true")
    data = await response.json()
    assert data["total"] == 1 and data["results"][0]["reviewed"] is True


async def test_a_guide_shows_its_reviewers_and_a_hub_its_class(site: Governed) -> None:
    text = words(await page(site.client, f"/guides/{site.guide.id_hex}"))
    assert "This version is approved by 2 members (2 needed)." in text and "Powys People First" in text
    hub = words(await page(site.client, f"/hubs/{COUNCIL.hub_id}"))
    assert "Membership class: council , a non-voting associate (vote weight 0)" in hub
    hub = words(await page(site.client, f"/hubs/{U1.hub_id}"))
    assert "Membership class: user-led , vote weight 2" in hub


async def test_the_proposal_pages_in_welsh(site: Governed) -> None:
    text = words(await page(site.client, f"/proposals/{site.amendment.id_hex}?lang=cy"))
    assert "Cofrestr y pleidleisiau" in text and "Y cyfrif terfynol" in text and "drwy ddirprwy" in text
    assert "Roll-call" not in text and "Final tally" not in text
    listing = words(await page(site.client, "/proposals?lang=cy"))
    assert "Cynigion" in listing and "Ar agor i bleidleisio" in listing
