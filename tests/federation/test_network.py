"""Real hubs on 127.0.0.1 — separate servers, separate homes and SQLite files, real keys and signatures —
gossiping through the real driver (federation/driver.py). Helpers are in tests/federation/network.py.

Every wait is a bounded poll (``eventually``); nothing assumes a push reaches everyone, since anti-entropy
completes it. Each test prints its seed: every hub's Random (peer choice, jitter) is seeded from it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from federation.client import PeerUnavailable
from hub.queries import DirectoryQuery
from hub.store import Store
from protocol import HubKey, build_record

from .network import Hub, Network, eventually, guide_body, lacking, now_ms, push_raw, tamper

SEED = int(os.environ.get("COOPHUB_TEST_SEED", random.SystemRandom().randrange(2**32)))


@pytest.fixture
async def net(tmp_path: Path) -> AsyncIterator[Network]:
    print(f"seed: {SEED} (replay with COOPHUB_TEST_SEED={SEED})")
    network = Network(tmp_path, SEED)
    try:
        yield network
    finally:
        await network.close()


async def test_a_record_crosses_a_line_of_five_hubs(net: Network) -> None:
    """Hub i knows only hubs i-1 and i+1: a guide published at one end reaches the other end."""
    hubs = [net.hub(f"line{i}") for i in range(5)]
    net.found(hubs)
    for left, right in zip(hubs, hubs[1:], strict=False):
        net.link(left, right)
    await net.start()
    first = await hubs[0].publish("guide", guide_body("Safe lone working"))
    middle = await hubs[2].publish("guide", guide_body("Fair rotas"))

    await eventually(lambda: lacking(hubs, [first, middle]), "both guides reach all five hubs")
    for i, hub in enumerate(hubs):
        neighbours = {h.url for h in hubs[max(0, i - 1):i + 2] if h is not hub}
        assert {p.url for p in hub.fed.peers} == neighbours, f"{hub.name} learnt peers beyond the line"


async def test_a_stopped_hub_catches_up_after_restart(net: Network) -> None:
    """A hub that was down while the others published gets every record once it is back (same home, same
    database, same port), from anti-entropy: nobody pushes to a hub that is down."""
    hubs = [net.hub(f"restart{i}") for i in range(3)]
    a, b, c = hubs
    net.found(hubs)
    net.link(a, b)
    net.link(b, c)
    net.link(a, c)
    await net.start()
    before = await a.publish("guide", guide_body("Before the outage"))
    await eventually(lambda: lacking([c], [before]), "c gets the first guide")

    await c.stop()
    published = [await (a if i % 2 else b).publish("guide", guide_body(f"During the outage {i}"))
                 for i in range(6)]
    await eventually(lambda: lacking([a, b], published), "a and b share what was published during the outage")
    # Pushes to c failed: a and b now hold c in backoff ("failing").
    await eventually(lambda: None if any(h.fed.peers.get(c.url).state == "failing" for h in (a, b)) else
                     str({h.name: h.fed.peers.get(c.url).state for h in (a, b)}),
                     "a or b notices that c is down")

    # What c's database holds while it is down (read with a Store of its own, closed before the restart).
    with Store(c.home.db_path) as offline:
        held = {bytes(i).hex() for _, i in offline.sync_items()}
    assert before in held and not held & set(published), "c's database changed while it was down"
    await c.start()
    await eventually(lambda: lacking([c], published), "the restarted hub catches up")
    await net.converged()


async def test_a_partition_heals_and_converges(net: Network) -> None:
    """Two halves whose only links go through cuttable TCP proxies: while cut, each half gossips only
    within itself; once restored, all four hubs hold the same records."""
    left = [net.hub("left0"), net.hub("left1")]
    right = [net.hub("right0"), net.hub("right1")]
    net.found(left + right)
    net.link(*left)
    net.link(*right)
    # Cross links, one proxy per direction: hub X knows hub Y only by the proxy's URL.
    proxies = []
    for x, y in ((left[1], right[0]), (left[0], right[1])):
        to_y, to_x = await net.proxy(y), await net.proxy(x)
        x.add_peers(to_y.url)
        y.add_peers(to_x.url)
        proxies += [to_y, to_x]
    await net.start()
    common = await left[0].publish("guide", guide_body("Before the split"))
    await eventually(lambda: lacking(left + right, [common]), "the first guide reaches both halves")

    for proxy in proxies:
        proxy.cut()
    left_ids = [await left[i % 2].publish("guide", guide_body(f"Left side {i}")) for i in range(3)]
    right_ids = [await right[i % 2].publish("guide", guide_body(f"Right side {i}")) for i in range(3)]
    await eventually(lambda: lacking(left, left_ids) or lacking(right, right_ids),
                     "each half shares its own records")
    # Evidence that the halves kept trying: every cut link refused connections (pushes and anti-entropy).
    await eventually(lambda: None if all(p.refused for p in proxies) else
                     f"refused connections per proxy {[p.refused for p in proxies]}",
                     "hubs try every cut link")
    for hub in left:
        assert not hub.ids() & set(right_ids), f"{hub.name} got right-side records through a cut link"
    for hub in right:
        assert not hub.ids() & set(left_ids), f"{hub.name} got left-side records through a cut link"

    for proxy in proxies:
        proxy.restore()
    await eventually(lambda: lacking(left + right, left_ids + right_ids), "the halves converge after healing")
    await net.converged()
    lists = {h.name: sorted(h.ids()) for h in left + right}
    assert len({tuple(ids) for ids in lists.values()}) == 1, lists
    assert set(lists["left0"]) >= {common, *left_ids, *right_ids}


async def test_an_applicant_is_held_until_sponsored_then_flows_and_is_marked_after_withdrawal(net: Network
                                                                                            ) -> None:
    """PRODUCT.md §3.2 across real hubs (the storage rule of docs/protocol.md §2.3 replaced membership at the
    edge; the intent is the same — a non-member's records do not flow until members vouch for it): the
    applicant's own profile is quarantined on its own hub and on the member it contacted, and stored by no one;
    its guide, pushed to members, is
    deferred there, never refused or scored; one member's sponsorship makes every hub store both (the deferred
    copies land by themselves); two endorsements make it a member; after a withdrawal it is a non-member again
    everywhere — its own hub refuses to publish more than its profile, and what it had signed is still stored,
    listed as "not a member"."""
    founders = [net.hub(f"member{i}") for i in range(3)]
    applicant = net.hub("applicant")
    net.found(founders, needed=2, others=[applicant])
    net.link(founders[0], founders[1])
    net.link(founders[1], founders[2])
    net.link(applicant, founders[0])  # the applicant knows one member; the others hear through it
    everyone = [*founders, applicant]
    await net.start()
    association = bytes.fromhex(applicant.home.config.association_id)

    def guide(title: str) -> bytes:
        return build_record(applicant.key, association, "guide", {**guide_body(title), "tags": ["applicant"]},
                            now_ms()).raw

    def is_member(hub: Hub) -> bool:
        assert hub.store is not None
        return hub.store.is_member(applicant.key.public)

    def listed_as_member(hub: Hub, record_id: str) -> bool | None:
        assert hub.store is not None
        found = hub.store.search(DirectoryQuery(kind="guide", limit=200), now_ms())[0]
        return next((r["member"] for r in found if r["id"] == record_id), None)

    status, answer = await applicant.try_publish({"kind": "profile", "body": {
        "name": "Newport Home Helpers", "regions": ["Newport"],
        "services": [{"name": "Home care", "category": "care"}], "peer_urls": []}})
    assert (status, answer["status"]) == (202, "quarantined"), answer
    profile = answer["id"]
    assert applicant.store is not None and [a["id"] for a in applicant.store.applicants()] == [profile]
    # Its hub shows it, over its session, to the member it contacted, which holds it in quarantine and lists it
    # for its members to sponsor (PRODUCT.md §3.2); that member passes it on to no one.
    contacted = founders[0].store
    assert contacted is not None
    await eventually(lambda: None if [a["id"] for a in contacted.applicants()] == [profile] else
                     str(contacted.applicants()), "the member the applicant contacted lists it")

    early = guide("Our first guide")
    early_id = hashlib.sha256(early).hexdigest()
    status, answer = await applicant.try_publish({"record": early.hex()})
    assert (status, answer["status"], answer["reason"]) == (202, "deferred", "not-a-member"), answer
    # Its own session may carry its profile only: the guide is refused as blocked, not even stored deferred.
    assert [r[1:] for r in await push_raw(founders[0], [early], applicant.key)] == [["refused", "blocked"]]
    # Relayed by a member (founders[1] for founders[0] and [2], founders[0] for [1]): deferred, never scored.
    for i, member in enumerate(founders):
        relay = founders[1 if i != 1 else 0]
        assert [r[1:] for r in await push_raw(member, [early], relay.key)] == [
            ["deferred", "not-a-member"]], member.name
    assert all(profile not in h.ids() and early_id not in h.ids() for h in everyone)
    assert all(h.status()["refused"] == 0 for h in everyone)

    # One endorsement (a sponsorship) is below the rule (2) but makes the applicant eligible: everything it
    # signed so far lands on every hub — from quarantine on its own hub, from deferral on the members'.
    first = await founders[0].publish("endorsement", {"subject": applicant.hub_id})
    await eventually(lambda: lacking(everyone, [first, profile, early_id]),
                     "the sponsorship, the profile and the early guide reach every hub")
    assert not any(is_member(h) for h in everyone)
    assert all(listed_as_member(h, early_id) is False for h in everyone)

    second = await founders[2].publish("endorsement", {"subject": applicant.hub_id})
    await eventually(lambda: None if all(is_member(h) for h in everyone) else
                     str([h.name for h in everyone if not is_member(h)]), "every hub admits the applicant")
    later = await applicant.publish("guide", guide_body("Our second guide"))
    await eventually(lambda: lacking(everyone, [later]), "the admitted hub's guides flow")
    assert all(listed_as_member(h, early_id) is True for h in everyone)

    # founders[2] withdraws its endorsement: one left, below the rule.
    withdrawal = await founders[2].publish("revocation", {"target": second, "reason": "withdrawn"})
    await eventually(lambda: None if not any(is_member(h) for h in everyone) else
                     str([h.name for h in everyone if is_member(h)]), "every hub sees the withdrawal")
    assert lacking(everyone, [withdrawal]) is None
    status, answer = await applicant.try_publish({"kind": "guide", "body": guide_body("After the withdrawal")})
    assert (status, answer["error"]) == (422, "not-a-member"), answer
    # A record it had signed still lands everywhere (eligibility never shrinks), shown as not a member's.
    late = guide("A guide signed before the withdrawal was known")
    late_id = hashlib.sha256(late).hexdigest()
    assert (await push_raw(founders[0], [late], applicant.key))[0][1:] == ["accepted", ""]
    await eventually(lambda: lacking(everyone, [late_id]), "the late guide reaches every hub")
    assert all(listed_as_member(h, late_id) is False for h in everyone)
    assert lacking(everyone, [early_id, later]) is None
    assert all(h.status()["refused"] == 0 for h in everyone)


async def test_forged_records_are_refused_and_a_peer_serving_them_is_dropped(net: Network) -> None:
    """Tampered records (a member's signed guide with its title changed) are never stored. Pushed, they are
    refused and counted; served to our anti-entropy by a hostile peer, they cost that peer score until it is
    dropped, after which it is never contacted again."""
    receiver, honest, forger = net.hub("receiver"), net.hub("honest"), net.hub("forger")
    charter = net.found([receiver, honest, forger])
    net.link(receiver, honest)
    await net.start([receiver, honest])
    base = now_ms() - 10_000
    forged = [tamper(build_record(honest.key, charter.id, "guide", guide_body(f"Genuine guide {i}"),
                                  base + i).raw, b"Genuine", b"Forgery") for i in range(13)]
    forged_ids = {hashlib.sha256(raw).hexdigest() for raw in forged}
    hostile = await net.hostile(forged[:3], charter.id)
    refused_before = receiver.status()["refused"]

    # 1. Pushed by a hub that is not a member, over its own session: its session is an applicant's, which
    # carries its own profile only; the forged guide is refused as blocked, never decoded, nothing stored.
    stranger = HubKey.generate()
    results = await push_raw(receiver, forged[3:4], stranger)
    assert [r[1:] for r in results] == [["refused", "blocked"]]
    assert receiver.status()["refused"] == refused_before
    peer = receiver.fed.peers.get(honest.url)
    assert peer.state != "dropped" and peer.score == receiver.fed.limits.peer_score_start, peer

    # 2. Pushed by a member (a founder whose hub forges): every frame is attributable now, so its invalid
    # records cost it score until it is dropped, and then its sessions are refused. No one else lost score.
    results = await push_raw(receiver, forged[3:], forger.key)
    assert {tuple(r[1:]) for r in results} == {("refused", "invalid")} and len(results) == 10
    with pytest.raises(PeerUnavailable) as refused:
        await push_raw(receiver, forged[4:5], forger.key)
    assert refused.value.close_reason == "dropped"
    dropped_forger = [p for p in receiver.fed.peers if p.hub_id == forger.key.public]
    assert [p.state for p in dropped_forger] == ["dropped"], dropped_forger
    assert receiver.fed.stats["peers_dropped"] == 1
    assert receiver.fed.peers.get(honest.url).score == receiver.fed.limits.peer_score_start

    # 3. A hostile peer our anti-entropy fetches from: each invalid record it serves costs score, and a
    # refused id is never fetched from that peer again (the driver's skip set), however many rounds run.
    receiver.fed.add_peer(hostile.url)
    limits = receiver.fed.limits

    def sessions(n: int) -> str | None:
        return None if hostile.count("sync") >= n else f"{hostile.count('sync')} sync rounds"

    await eventually(lambda: sessions(4), "several anti-entropy rounds with the hostile peer")
    state = receiver.fed.peers.get(hostile.url)
    assert hostile.count("fetch") == 1, hostile.requests
    assert state.score == limits.peer_score_start - 3 * limits.peer_score_invalid_cost and state.state != "dropped"

    # It now serves ten more forgeries: fetched once each, they cost the rest of its score.
    hostile.forged = list(forged)
    scores: list[int] = []
    contacts: dict[str, int] = {}

    def dropped() -> str | None:
        state = receiver.fed.peers.get(hostile.url)
        scores.append(state.score)
        contacts.update(hostile.requests)  # what the hostile peer had seen when it was dropped
        return None if state.state == "dropped" else f"state {state.state}, score {state.score}"

    await eventually(dropped, "the receiver drops the hostile peer")
    state = receiver.fed.peers.get(hostile.url)
    assert scores == sorted(scores, reverse=True), f"score rose: {scores}"
    assert state.score <= limits.peer_score_drop_at < scores[0]
    assert state.refused.get("invalid", 0) == 13, state.refused
    assert hostile.count("fetch") == 2
    assert receiver.fed.stats["peers_dropped"] == 2
    assert not (receiver.ids() | honest.ids()) & forged_ids, "a forged record was stored"

    # 4. Dropped means never contacted again, not even to finish the session that dropped it: the receiver
    # keeps syncing with its honest peer only.
    await receiver.publish("guide", guide_body("News after the drop"))  # pushes go to healthy peers only
    served = honest.fed.stats["sync_served"]
    await eventually(lambda: None if honest.fed.stats["sync_served"] >= served + 3 else "more sessions",
                     "the receiver keeps syncing with the honest peer")
    assert hostile.requests == contacts, "a dropped peer was contacted again"
    # Each session before the last ended by offering the hostile peer our records (once: after that it is
    # known to hold them); the session whose fetch got it dropped did not (nothing more is sent once dropped).
    assert contacts.get("push", 0) <= contacts["sync"] - 1, contacts


async def test_hubs_in_sync_exchange_a_constant_size_digest(net: Network) -> None:
    """PRODUCT.md §3: one anti-entropy session between two hubs in sync costs the same few Negentropy bytes
    (a 20-byte whole-range fingerprint out, 1 byte back) with 10 records and with 2,000."""
    a, b = net.hub("digest-a"), net.hub("digest-b")
    charter = net.found([a, b])
    net.link(a, b)
    await net.start()
    for i in range(10):
        await (a if i % 2 else b).publish("guide", guide_body(f"Small set {i}"))
    await net.converged()
    small = await a.fed.sync_with(b.url)
    assert small is not None and small.complete and (small.have, small.need) == (0, 0), small
    assert len(a.ids()) == 11  # the charter and ten guides

    # 1,990 more records, stored on a without pushing (source "bulk"): b gets them by anti-entropy alone,
    # in streamed fetch batches.
    base = now_ms() - 3_600_000
    bulk = [build_record(a.key, charter.id, "guide", guide_body(f"Bulk guide {i}"), base + i).raw
            for i in range(1990)]
    results = await a.store.ingest_async(bulk, now_ms=now_ms(), source="bulk")  # type: ignore[union-attr]
    assert {r.status for r in results} == {"accepted"}
    await net.converged()
    assert len(b.ids()) == 2001
    large = await a.fed.sync_with(b.url)
    assert large is not None and large.complete and (large.have, large.need) == (0, 0), large
    print(f"in-sync session: {small.bytes_sent} B out, {small.bytes_received} B back with 11 records; "
          f"{large.bytes_sent} B out, {large.bytes_received} B back with 2,001")
    assert (large.bytes_sent, large.bytes_received, large.rounds) == (
        small.bytes_sent, small.bytes_received, small.rounds)
    assert small.bytes_sent <= 24 and small.bytes_received <= 4 and small.rounds == 1
    # The other direction costs the same.
    assert await b.fed.sync_with(a.url) == large


async def test_an_attachment_is_fetched_from_a_peer_on_demand_by_hash(net: Network) -> None:
    """A guide's attachment stays on its author's hub until someone downloads it elsewhere: then that hub
    fetches the blob from a peer by hash, checks the hash, stores it and serves it. A peer that sends the
    wrong bytes is refused (and loses score); an arbitrary hash never makes a hub ask its peers."""
    author, reader, third = net.hub("blob-author"), net.hub("blob-reader"), net.hub("blob-third")
    charter = net.found([author, reader, third])
    net.link(author, reader)
    await net.start([author, reader])
    data = b"%PDF-1.4\n% a checklist for lone working\n" + bytes(range(256)) * 40
    digest = await author.upload_blob(data)
    assert digest == hashlib.sha256(data).hexdigest()
    guide = await author.publish("guide", guide_body("Lone working checklist", attachments=[
        {"name": "checklist.pdf", "media_type": "application/pdf", "size": len(data), "hash": digest}]))
    await eventually(lambda: lacking([reader], [guide]), "the guide reaches the reader's hub")

    # Records gossip; blobs don't. The reader's hub serves peers only what it holds (no chained fetches).
    assert reader.store is not None and reader.store.get_blob(bytes.fromhex(digest)) is None
    assert (await reader.get(f"/fed/v1/blobs/{digest}"))[0] == 410  # the old route: use a session
    assert await reader.get(f"/api/v1/blobs/{digest}") == (200, data)
    assert reader.store.get_blob(bytes.fromhex(digest)) == data
    assert reader.fed.stats["blobs_fetched"] == 1
    assert await reader.get(f"/api/v1/blobs/{digest}") == (200, data)
    assert reader.fed.stats["blobs_fetched"] == 1, "the second download must be served from disk"

    # A third hub whose only peer lies about blobs. It holds the guide (imported, as from a file).
    liar = await net.hostile([], charter.id)
    third.add_peers(liar.url)
    await third.start()
    assert third.store is not None and author.store is not None
    raw = author.store.get_raw(bytes.fromhex(guide))
    assert raw is not None
    assert (await third.store.ingest_async([raw], now_ms=now_ms(), source="import"))[0].status == "accepted"
    unknown = hashlib.sha256(b"no guide names this").hexdigest()
    assert (await third.get(f"/api/v1/blobs/{unknown}"))[0] == 404
    assert liar.count("blob") == 0, "a hash no stored guide names was asked of peers"

    status, page = await third.get(f"/guides/{guide}/files/0")
    assert status == 404 and b"not been copied to this hub" in page
    assert liar.count("blob") == 1 and third.fed.stats["blobs_refused"] == 1
    assert third.store.get_blob(bytes.fromhex(digest)) is None, "wrong bytes were stored"
    assert third.fed.peers.get(liar.url).score < third.fed.limits.peer_score_start

    third.fed.add_peer(reader.url)  # an operator adds an honest peer, which now holds the blob
    async with net.http.get(f"{third.url}/guides/{guide}/files/0") as resp:
        assert resp.status == 200 and await resp.read() == data
        assert resp.headers["Content-Disposition"].startswith("attachment")
    assert third.store.get_blob(bytes.fromhex(digest)) == data


async def test_status_reports_federation_traffic(net: Network) -> None:
    """GET /api/v1/status carries the federation counters operators (and bench/fed_bench.py) read: requests
    served per endpoint with their bytes, and the requests this hub made."""
    a, b = net.hub("traffic-a"), net.hub("traffic-b")
    net.found([a, b])
    net.link(a, b)
    await net.start()
    async def traffic(hub: Hub) -> dict[str, int]:
        status, body = await hub.get("/api/v1/status")
        assert status == 200
        return dict(json.loads(body)["federation"])

    before = await traffic(b)
    await a.fed.sync_with(b.url)
    after = await traffic(b)
    assert after["served_sync"] == before.get("served_sync", 0) + 1
    assert after["served_requests"] >= before.get("served_requests", 0) + 1
    assert after["bytes_out"] > before.get("bytes_out", 0)  # b's replies, on whichever session carried them
    made = await traffic(a)
    assert made["requests"] >= 1 and made["bytes_out"] > 0 and made["sync_sessions"] >= 1
    # However many rounds and records: one session per peer pair.
    assert made["sessions"] == 1 and after["sessions"] == 1, (made, after)


async def test_founders_learn_each_other_from_profiles(net: Network) -> None:
    """PRODUCT.md §3: hubs find each other from members' profiles. In an association whose members are all
    founders, membership never changes, so a new profile alone must make its peer URL known (a hub that only
    rediscovered on membership changes kept the tree of its seed peers, and push reached a third of it)."""
    a, b, c = net.hub("found-a"), net.hub("found-b"), net.hub("found-c")
    net.found([a, b, c])
    net.link(a, b)
    net.link(b, c)
    await net.start()
    await b.publish("guide", guide_body("First news"))  # a's first accepted record: membership now known
    await net.converged()
    assert c.url not in a.fed.peers
    profile = {"name": "Found C", "regions": ["Gwynedd"], "services": [], "peer_urls": [c.url]}
    await c.publish("profile", profile)

    def learnt() -> str | None:
        return None if c.url in a.fed.peers else "a has not learnt c's URL from c's profile"

    await eventually(learnt, "a to learn c's URL")
    assert a.fed.peers.get(c.url).source == "profile"


async def test_catch_up_takes_the_charter_first_whatever_the_clocks_said(net: Network, tmp_path: Path) -> None:
    """A new hub streams records in creation-time order; records dated before the charter (a founder whose
    clock ran slow, an archive imported later) would be refused for lack of it, so the charter comes first."""
    import aiohttp

    from federation.client import PeerClient
    from federation.driver import catch_up

    a = net.hub("archive-a")
    charter = net.found([a])
    await net.start([a])
    assert a.store is not None
    older = [build_record(a.key, charter.id, "guide", guide_body(f"Older {i}"),
                          charter.created_ms - 3_600_000 + i).raw for i in range(30)]
    assert {r.status for r in await a.store.ingest_async(older, now_ms=now_ms(), source="bulk")} == {"accepted"}
    newcomer = Store(tmp_path / "new.sqlite3", blobs_dir=tmp_path / "new-blobs", association=charter.id)
    try:
        async with aiohttp.ClientSession() as session:
            # Pages of 10: the charter is not in the first page (within one batch, ingest takes it first).
            limits = dataclasses.replace(a.store.limits, fetch_batch=10)
            client = PeerClient(session, limits, "", key=HubKey.generate(), association=charter.id)
            accepted = await catch_up(client, newcomer, a.url, limits)
        assert accepted == 31 and newcomer.count() == 31
    finally:
        newcomer.close()
