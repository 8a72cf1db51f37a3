"""The governance API (hub/governance_api.py) and publishing governance records through POST /api/v1/publish:
a real app over a real store on 127.0.0.1; bad input is a 4xx with one line, and nothing is stored."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.app import make_app
from hub.home import Home, HubConfig
from hub.store import Store
from protocol import Record
from tests.protocol.governance_factory import DAY, MIN, T0, Assoc, key

W1, W2, U1, COUNCIL, OUTSIDER = (key(i) for i in range(30, 35))
CLOSES = T0 + DAY


@dataclass
class World:
    assoc: Assoc
    store: Store
    proposal: Record
    clock: list[int]

    @property
    def now(self) -> int:
        return self.clock[0]


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[tuple[World, TestClient]]:
    """W1's hub, holding a charter and one open proposal; the clock is set by each test (``clock[0]``)."""
    a = Assoc.create([(W1, "worker-coop"), (W2, "worker-coop"), (U1, "user-led"), (COUNCIL, "council")])
    p = a.propose(W1, closes=CLOSES, title="Buy a shared minibus", options=["yes", "no", "abstain"],
                  abstain="abstain", quorum=50)
    store = Store(tmp_path / "hub.sqlite3", blobs_dir=tmp_path / "blobs")
    assert {r.status for r in store.ingest([a.charter.raw, p.raw], now_ms=T0 + 5 * MIN)} == {"accepted"}
    clock = [T0 + 10 * MIN]
    home = Home(tmp_path, W1, HubConfig(name="W1", association_id=a.charter.id.hex()), "tok")
    app = make_app(home, store, now_ms=lambda: clock[0], web_pages=False, federation=False)
    try:
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            yield World(a, store, p, clock), client
    finally:
        store.close()


async def publish(client: TestClient, kind: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = await client.post("/api/v1/publish", json={"kind": kind, "body": body},
                                 headers={"Authorization": "Bearer tok"})
    return response.status, await response.json()


async def refused(w: World, client: TestClient, kind: str, body: dict[str, Any], *words: str) -> None:
    before = w.store.count()
    status, data = await publish(client, kind, body)
    assert status == 422, data
    assert set(data) == {"error", "detail"} and "\n" not in data["detail"]
    for word in words:
        assert word in data["detail"], (data, word)
    assert w.store.count() == before, "a refused request stored something"


async def test_a_vote_appears_in_the_result_with_the_roll_call(world: tuple[World, TestClient]) -> None:
    w, client = world
    status, data = await publish(client, "ballot", {"proposal": w.proposal.id_hex, "option": "yes"})
    assert (status, data["status"]) == (200, "accepted")
    response = await client.get(f"/api/v1/proposals/{w.proposal.id_hex}")
    view = await response.json()
    assert response.status == 200
    assert (view["status"], view["outcome"], view["quorum_met"]) == ("open", "no-quorum", False)
    assert view["options"][0] == {"option": "yes", "votes": 1, "weight": 1, "motion": True, "abstain": False,
                                  "objection": False}
    assert [(r["hub"], r["option"], r["class"]) for r in view["roll_call"]] == [(W1.hub_id, "yes",
                                                                                 "worker-coop")]
    assert view["quorum"] == {"percent": 50, "of": "members", "needed": 2, "participating": 1, "base": 3,
                              "met": False}
    listing = await (await client.get("/api/v1/proposals")).json()
    assert listing["total"] == 1 and listing["results"][0]["id"] == w.proposal.id_hex


async def test_voting_after_the_close_or_for_an_unknown_option_is_a_422(world: tuple[World, TestClient]) -> None:
    w, client = world
    await refused(w, client, "ballot", {"proposal": w.proposal.id_hex, "option": "perhaps"}, "not an option")
    w.clock[0] = CLOSES
    await refused(w, client, "ballot", {"proposal": w.proposal.id_hex, "option": "yes"}, "voting closed")


async def test_delegating_to_oneself_or_a_non_member_is_a_422(world: tuple[World, TestClient]) -> None:
    w, client = world
    await refused(w, client, "delegation", {"to": W1.hub_id}, "itself")
    await refused(w, client, "delegation", {"to": OUTSIDER.hub_id}, "not a member")
    await refused(w, client, "delegation", {"to": COUNCIL.hub_id, "proposal": w.proposal.id_hex},
                  "non-voting associate")
    status, _ = await publish(client, "delegation", {"to": U1.hub_id})
    assert status == 200


async def test_closing_early_is_a_422_and_after_the_closing_time_it_closes(world: tuple[World, TestClient]) -> None:
    w, client = world
    await refused(w, client, "proposal-close", {"proposal": w.proposal.id_hex, "ballots": [], "delegations": []},
                  "voting is open until")
    w.clock[0] = CLOSES + MIN
    status, _ = await publish(client, "proposal-close", {"proposal": w.proposal.id_hex, "ballots": [],
                                                         "delegations": []})
    assert status == 200
    view = await (await client.get(f"/api/v1/proposals/{w.proposal.id_hex}")).json()
    assert (view["status"], view["recount"]["matches"]) == ("no-quorum", True)


async def test_an_amendment_leaving_no_voting_member_is_a_422(world: tuple[World, TestClient]) -> None:
    w, client = world
    zero = [{"name": n, "weight": 0} for n in ("worker-coop", "user-led", "council")]
    await refused(w, client, "proposal", {"title": "Everyone an associate", "options": ["yes", "no"],
                                          "rule": "two-thirds", "quorum": 50, "quorum_of": "members",
                                          "closes": CLOSES, "amendment": {"classes": zero}}, "no voting member")


async def test_bad_ids_and_parameters(world: tuple[World, TestClient]) -> None:
    w, client = world
    for path, status in (("/api/v1/proposals/xyz", 400), (f"/api/v1/proposals/{'0' * 64}", 404),
                         ("/api/v1/proposals?limit=0", 400), ("/api/v1/proposals?colour=red", 400),
                         ("/api/v1/directory?reviewed=maybe", 400)):
        response = await client.get(path)
        data = await response.json()
        assert response.status == status and set(data) == {"error", "detail"}, (path, data)
    terms = await (await client.get("/api/v1/terms")).json()
    assert [c["name"] for c in terms["classes"]] == ["worker-coop", "user-led", "council"]
    assert terms["amendment_rule"] == "two-thirds" and terms["reviews_needed"] == 2
