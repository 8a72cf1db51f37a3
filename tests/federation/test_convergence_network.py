"""The records docs/protocol.md §2.3 says are "stored and ignored" travel between real hubs on 127.0.0.1 like any
other (PRODUCT.md §3.2; helpers: tests/federation/network.py): members send them to one hub over their own
sessions, and every hub stores every one, derives the same unaffected state from them, and holds nothing against
the peers that sent or relayed them — no refusal, no lost score, nobody dropped, also after more anti-entropy.

Issue 8 measured the opposite on the HTTP peer routes: these records were refused as ``invalid``, fetched again
every round and charged each time, so a peer that followed the spec was dropped within ~30 s.
"""

from __future__ import annotations

import os
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from protocol import HubKey, Record, build_record

from .network import Hub, Network, eventually, guide_body, lacking, now_ms, push_raw

SEED = int(os.environ.get("COOPHUB_TEST_SEED", random.SystemRandom().randrange(2**32)))
DAY_MS = 86_400_000
#: Anti-entropy sessions each hub must run after convergence before the final checks: enough rounds that a
#: hub refetching (and charging for) refused ids every round would have shown it.
MORE_ROUNDS = 4


@pytest.fixture
async def net(tmp_path: Path) -> AsyncIterator[Network]:
    print(f"seed: {SEED} (replay with COOPHUB_TEST_SEED={SEED})")
    network = Network(tmp_path, SEED)
    try:
        yield network
    finally:
        await network.close()


class Clock:
    """Creation times one millisecond apart, in the recent past (records sort in the order they are made)."""

    def __init__(self) -> None:
        self.t = now_ms() - 60_000

    def __call__(self) -> int:
        self.t += 1
        return self.t


def offer_body(title: str, created_ms: int) -> dict[str, Any]:
    return {"title": title, "description": "A joint purchase.", "category": "health", "unit": "box",
            "tiers": [[1, 900], [100, 800]], "currency": "GBP", "min_total": 10,
            "deadline": created_ms + 30 * DAY_MS, "regions": ["Gwynedd"]}


async def publish(hub: Hub, records: list[Record]) -> None:
    """``hub`` publishes its own records (as the API does: stored locally, then pushed to peers at once)."""
    assert hub.store is not None
    results = await hub.store.ingest_async([r.raw for r in records], now_ms=now_ms(), source="local")
    assert [r.status for r in results] == ["accepted"] * len(records), results


async def sent_by_member(to: Hub, records: list[Record], key: HubKey) -> None:
    """A member sends records to ``to`` over its own authenticated session: every one is accepted."""
    results = await push_raw(to, [r.raw for r in records], key)
    assert [tuple(r[1:]) for r in results] == [("accepted", "")] * len(records), results


def views(hub: Hub, at_ms: int, guides: list[Record], offers: list[Record]) -> dict[str, Any]:
    assert hub.store is not None
    return {"guides": {g.id_hex: hub.store.guide_view(g.id) for g in guides},
            "offers": {o.id_hex: hub.store.offer_view(o.id, at_ms) for o in offers}}


def nobody_penalised(hubs: list[Hub]) -> None:
    """No hub refused anything, and every peer of every hub keeps its starting score."""
    for hub in hubs:
        assert hub.store is not None
        assert hub.store.counts().get("refused", 0) == 0, (hub.name, hub.store.refused_summary())
        start = hub.fed.limits.peer_score_start
        for peer in hub.fed.peers:
            assert peer.state != "dropped" and peer.score == start, (hub.name, peer)
            assert not {"invalid", "too-large"} & set(peer.refused), (hub.name, peer)
        assert hub.fed.stats["peers_dropped"] == 0, (hub.name, hub.fed.stats)


async def test_stored_and_ignored_records_converge_on_every_hub_without_cost(net: Network) -> None:
    a, b, c = hubs = [net.hub(f"ignored-{n}") for n in "abc"]
    charter = net.found(hubs)
    for x, y in ((a, b), (b, c), (a, c)):
        net.link(x, y)
    await net.start()
    tick, assoc = Clock(), charter.id

    def record(author: Hub, kind: str, body: dict[str, Any]) -> Record:
        return build_record(author.key, assoc, kind, body, tick())

    # What the ignored records will point at: a's guide and two offers by a, pledged to by b and by c.
    guide = record(a, "guide", guide_body("Lone working"))
    t1, t2 = tick(), tick()
    offer1 = build_record(a.key, assoc, "offer", offer_body("Gloves", t1), t1)
    offer2 = build_record(a.key, assoc, "offer", offer_body("Aprons", t2), t2)
    await publish(a, [guide, offer1, offer2])
    await eventually(lambda: lacking(hubs, [guide.id_hex, offer1.id_hex, offer2.id_hex]), "a's records spread")
    pledge1 = record(b, "pledge", {"offer": offer1.id, "quantity": 30})
    pledge2 = record(c, "pledge", {"offer": offer2.id, "quantity": 40})
    await publish(b, [pledge1])
    await publish(c, [pledge2])
    await eventually(lambda: lacking(hubs, [pledge1.id_hex, pledge2.id_hex]), "the pledges spread")
    await net.converged()
    at = now_ms() + 60_000  # one time for every view, so views of different hubs compare
    before = views(a, at, [guide], [offer1, offer2])
    assert before["offers"][offer1.id_hex]["status"] == "open"

    # The documented cases (docs/protocol.md §2.3 "stored and ignored"), all entering the network at hub a.
    revoke_others = record(b, "revocation", {"target": guide.id, "reason": "not ours to withdraw"})
    revoke_others_offer = record(c, "revocation", {"target": offer1.id, "reason": "not ours either"})
    close_by_non_author = record(b, "offer-close", {"offer": offer1.id, "outcome": "awarded",
                                                    "pledges": [pledge1.id]})
    cross_supersede = record(c, "guide", guide_body("Lone working, our way", supersedes=guide.id))
    close_naming_other_offers_pledge = record(a, "offer-close", {"offer": offer2.id, "outcome": "awarded",
                                                                 "pledges": [pledge2.id, pledge1.id]})
    await sent_by_member(a, [revoke_others, close_by_non_author], b.key)
    await sent_by_member(a, [revoke_others_offer, cross_supersede], c.key)
    await publish(a, [close_naming_other_offers_pledge])
    ignored = [revoke_others, revoke_others_offer, close_by_non_author, cross_supersede,
               close_naming_other_offers_pledge]

    await eventually(lambda: lacking(hubs, [r.id_hex for r in ignored]), "every hub stores every ignored record")
    await net.converged()
    ids = a.ids()
    assert all(h.ids() == ids for h in hubs) and {r.id_hex for r in ignored} <= ids

    # Derived state: identical on every hub, and what the ignored records would have changed is unchanged.
    after = views(a, at, [guide, cross_supersede], [offer1, offer2])
    for hub in hubs:
        assert views(hub, at, [guide, cross_supersede], [offer1, offer2]) == after, hub.name
    victim = after["guides"][guide.id_hex]
    assert (victim["state"], victim["revoked"], victim["superseded_by"]) == ("current", False, []), victim
    assert after["guides"][cross_supersede.id_hex]["state"] == "current"  # c's own guide, standing alone
    first = after["offers"][offer1.id_hex]
    assert first == before["offers"][offer1.id_hex], "offer 1 changed"
    assert (first["status"], first["tally"]["close_id"]) == ("open", None), first
    assert [line["pledge_id"] for line in first["tally"]["pledges"]] == [pledge1.id_hex]
    second = after["offers"][offer2.id_hex]
    assert (second["status"], second["tally"]["close_id"]) == ("awarded", close_naming_other_offers_pledge.id_hex)
    assert [line["pledge_id"] for line in second["tally"]["pledges"]] == [pledge2.id_hex], second

    # Nobody refused anything or lost score: not a, which took them from b's and c's sessions, nor b and c,
    # which got them relayed (or fetched) from a and from each other.
    nobody_penalised(hubs)

    # And it stays so while anti-entropy keeps running (a hub refetching refused ids would charge every round).
    rounds = {h.name: h.fed.stats["sync_sessions"] for h in hubs}

    def more_rounds() -> str | None:
        behind = {h.name: h.fed.stats["sync_sessions"] - rounds[h.name] for h in hubs
                  if h.fed.stats["sync_sessions"] - rounds[h.name] < MORE_ROUNDS}
        return str(behind) if behind else None

    await eventually(more_rounds, f"{MORE_ROUNDS} more anti-entropy sessions on every hub")
    nobody_penalised(hubs)
    assert all(h.ids() == ids for h in hubs)
    for hub in hubs:
        assert views(hub, at, [guide, cross_supersede], [offer1, offer2]) == after, hub.name
