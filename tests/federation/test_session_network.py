"""Peer sessions between real hubs on 127.0.0.1 (PRODUCT.md §3.1, §3.2): refusals over the wire, the old routes
gone, quotas and bounds, deferred records never scored, clocks apart, peers added to a running hub."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from federation import session as sx
from federation import transport
from federation.client import PeerClient, PeerUnavailable
from protocol import DEFAULT_LIMITS, HubKey, build_record

from .network import Network, eventually, guide_body, lacking, now_ms, open_session, push_raw

SEED = int(os.environ.get("COOPHUB_TEST_SEED", random.SystemRandom().randrange(2**32)))


@pytest.fixture
async def net(tmp_path: Path) -> AsyncIterator[Network]:
    print(f"seed: {SEED} (replay with COOPHUB_TEST_SEED={SEED})")
    network = Network(tmp_path, SEED)
    try:
        yield network
    finally:
        await network.close()


async def _refusal(hub_url: str, key: HubKey, association: bytes, **kw: Any) -> str:
    async with aiohttp.ClientSession() as http:
        client = PeerClient(http, DEFAULT_LIMITS, "", key=key, association=association, **kw)
        try:
            await client.conn(hub_url)
        except PeerUnavailable as exc:
            return exc.close_reason
        finally:
            await client.close()
    return "accepted"


async def test_handshake_refusals_over_the_wire(net: Network) -> None:
    """Wrong association, wrong key, a replayed hello and a stale clock are refused with their close reason;
    a good handshake from a stranger gets an applicant's session."""
    a = net.hub("refuse-a")
    charter = net.found([a])
    await net.start()
    assert await _refusal(a.url, HubKey.generate(), bytes(32)) == "wrong-association"
    other = HubKey.generate().public
    assert await _refusal(a.url, HubKey.generate(), charter.id, expect=lambda url: other) == "wrong-key"
    assert await _refusal(a.url, HubKey.generate(), charter.id,
                          now_ms=lambda: now_ms() + DEFAULT_LIMITS.max_future_skew_ms + 60_000) == "stale"
    assert await _refusal(a.url, HubKey.generate(), charter.id) == "accepted"

    # A hello recorded off the wire and sent again: refused as a replay.
    key = HubKey.generate()
    hs = sx.Initiator(key, charter.id, "", DEFAULT_LIMITS)
    hello = hs.hello(now_ms())
    async with aiohttp.ClientSession() as http:
        for expect in ("ready", "replay"):
            ws = await http.ws_connect(f"{a.url}/fed/v1/session")
            await ws.send_bytes(hello)
            msg = await ws.receive()
            if expect == "ready":
                again = sx.Initiator(key, charter.id, "", DEFAULT_LIMITS, nonce=hs.nonce)
                again.hello(sx.decode_frame(hello, 1 << 20)[1]["time"])
                await ws.send_bytes(again.on_challenge(msg.data, now_ms()))
                assert sx.decode_frame((await ws.receive()).data, 1 << 20)[0] == "ready"
            else:
                assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == sx.CLOSE_CODES["replay"], msg
                assert msg.extra.startswith("replay"), msg
            await ws.close()
    assert a.fed.stats["sessions_refused"] >= 3  # wrong-key is the initiator's refusal


async def test_the_old_write_routes_say_to_use_the_session(net: Network) -> None:
    a = net.hub("gone-a")
    net.found([a])
    await net.start()
    for path in ("/fed/v1/push", "/fed/v1/announce", "/fed/v1/sync", "/fed/v1/fetch"):
        async with net.http.post(f"{a.url}{path}", data=b"\x80") as resp:
            body = await resp.json()
            assert resp.status == 410 and body["error"] == "gone" and "/fed/v1/session" in body["detail"], body
    async with net.http.get(f"{a.url}/fed/v1/records") as resp:
        assert resp.status == 410
    async with net.http.get(f"{a.url}/fed/v1/info") as resp:
        assert resp.status == 200  # public, read-only


async def test_a_non_members_session_stores_nothing_but_its_quarantined_profile(net: Network) -> None:
    a = net.hub("narrow-a")
    charter = net.found([a])
    await net.start()
    stranger = HubKey.generate()
    before = a.ids()
    profile = build_record(stranger, charter.id, "profile", {"name": "Newcomers", "regions": ["Powys"],
                                                             "services": [], "peer_urls": []}, now_ms()).raw
    others_profile = build_record(HubKey.generate(), charter.id, "profile", {
        "name": "Someone else", "regions": [], "services": [], "peer_urls": []}, now_ms()).raw
    guide = build_record(stranger, charter.id, "guide", guide_body("Not yet"), now_ms()).raw
    results = await push_raw(a, [profile, others_profile, guide], stranger)
    assert [r[1:] for r in results] == [["quarantined", ""], ["refused", "blocked"], ["refused", "blocked"]] or \
        [r[1] for r in results] == ["quarantined", "refused", "refused"], results
    assert a.ids() == before, "a non-member's session stored something"
    assert a.store is not None and [x["id"] for x in a.store.applicants()] == [hashlib.sha256(profile).hexdigest()]
    assert a.store.deferred_summary().get("records", 0) == 0, a.store.deferred_summary()
    # It may read, not reconcile or announce.
    client, http = await open_session(a, stranger)
    try:
        assert (await client.info(a.url)).hub == a.key.public
        with pytest.raises(PeerUnavailable, match="blocked"):
            await client.announce(a.url, [bytes(32)])
    finally:
        await client.close()
        await http.close()


async def test_deferred_records_never_cost_score_and_land_when_valid(net: Network) -> None:
    """A member sends records dated ahead within twice the skew, records naming one we lack, and records of
    an author not admitted yet: all deferred, never scored; each lands once what it waits for comes."""
    skew = 1500
    a, b = net.hub("defer-a"), net.hub("defer-b")
    applicant = HubKey.generate()
    charter = net.found([a, b])
    for hub in (a, b):
        hub.home.config.limits = {**hub.home.config.limits, "max_future_skew_ms": skew}
        hub.home.save_config()
    await net.start()
    t = now_ms()
    ahead = build_record(b.key, charter.id, "guide", guide_body("Dated ahead"), t + skew + 800).raw
    older = build_record(b.key, charter.id, "guide", guide_body("The original"), t - 5000)
    newer = build_record(b.key, charter.id, "guide", {**guide_body("The revision"), "supersedes": older.id},
                         t - 4000).raw
    theirs = build_record(applicant, charter.id, "guide", guide_body("Before admission"), t - 3000).raw
    results = await push_raw(a, [ahead, newer, theirs], b.key)
    assert [tuple(r[1:]) for r in results] == [("deferred", "future"), ("deferred", "missing-reference"),
                                               ("deferred", "not-a-member")], results
    peer = next(p for p in a.fed.peers if p.hub_id == b.key.public)
    assert peer.score == a.fed.limits.peer_score_start and peer.state != "dropped", peer
    ids = [hashlib.sha256(r).hexdigest() for r in (ahead, newer, theirs)]
    await eventually(lambda: lacking([a], ids[:1]), "the future-dated record lands when its time comes")
    assert (await push_raw(a, [older.raw], b.key))[0][1] == "accepted"
    sponsorship = build_record(b.key, charter.id, "endorsement", {"subject": applicant.public}, now_ms()).raw
    assert (await push_raw(a, [sponsorship], b.key))[0][1] == "accepted"
    await eventually(lambda: lacking([a], ids), "the deferred records land")
    peer = next(p for p in a.fed.peers if p.hub_id == b.key.public)
    assert peer.score == a.fed.limits.peer_score_start and peer.state != "dropped", peer


async def test_hubs_whose_clocks_differ_by_four_minutes_converge(net: Network) -> None:
    a, b = net.hub("clock-a"), net.hub("clock-b")
    charter = net.found([a, b])
    net.link(a, b)
    await net.start()
    a.fed.now_ms = lambda: now_ms() + 240_000  # a's clock runs four minutes fast
    assert a.fed.client is not None
    a.fed.client.now_ms = a.fed.now_ms
    ahead = build_record(a.key, charter.id, "guide", guide_body("From the fast clock"), now_ms() + 240_000).raw
    assert a.store is not None
    await a.store.ingest_async([ahead], now_ms=now_ms() + 240_000, source="local")
    behind = await b.publish("guide", guide_body("From the right clock"))
    await eventually(lambda: lacking([a, b], [hashlib.sha256(ahead).hexdigest(), behind]), "both converge")
    await net.converged()
    assert all(p.state != "dropped" for h in (a, b) for p in h.fed.peers)


async def test_peers_add_on_a_running_hub_is_used_within_seconds(net: Network) -> None:
    """`coophub peers add` edits config.toml; a running hub re-reads it and dials the new peer."""
    a, b = net.hub("live-a"), net.hub("live-b")
    net.found([a, b])
    await net.start()
    assert b.url not in a.fed.peers
    a.add_peers(b.url)  # what `coophub peers add` does to config.toml
    guide = await a.publish("guide", guide_body("After adding a peer"))
    await eventually(lambda: lacking([b], [guide]), "the new peer gets the guide", deadline_s=10)
    assert b.url in a.fed.peers
    # And `peers remove` closes the session and forgets the peer.
    a.home.config.peers = []
    a.home.save_config()
    await eventually(lambda: None if b.url not in a.fed.peers else "still a peer", "the peer is removed",
                     deadline_s=10)


async def test_an_admitted_applicants_session_becomes_a_members_without_reconnecting(net: Network) -> None:
    """The applicant dials the founder, which has no URL for it: a narrow session. When the founder endorses
    it, both hubs re-check that open session, so the endorsement reaches the applicant over it (it learns it
    was admitted) and its first guide flows back, all on the one session it opened."""
    founder, applicant = net.hub("adm-founder"), net.hub("adm-applicant")
    net.found([founder], others=[applicant])
    applicant.add_peers(founder.url)
    await net.start()
    await eventually(lambda: None if applicant.fed.client and applicant.fed.client.open_peers() == 1 else
                     "no session yet", "the applicant opens its session")
    assert applicant.fed.client is not None
    opened = applicant.fed.client.sessions_opened
    roles = [c.role for c in founder.fed.client.conns.values()] if founder.fed.client else []
    assert roles == ["applicant"], roles
    endorsement = await founder.publish("endorsement", {"subject": applicant.hub_id})
    await eventually(lambda: lacking([applicant], [endorsement]), "the applicant learns it was admitted")
    assert applicant.store is not None and applicant.store.is_member(applicant.key.public)
    guide = await applicant.publish("guide", guide_body("Our first guide as members"))
    await eventually(lambda: lacking([founder], [guide]), "the new member's guide reaches the founder")
    assert [c.role for c in founder.fed.client.conns.values()] == ["member"]
    assert applicant.fed.client.sessions_opened == opened, "the session was not reopened"
    assert founder.status()["refused"] == applicant.status()["refused"] == 0


async def test_a_burst_is_batched_per_peer_and_one_session_carries_it(net: Network) -> None:
    """session_batch_ms coalesces the announces of a burst: 40 records cost a handful of announce frames
    per peer, over one session per peer pair (not one request per record per peer)."""
    hubs = [net.hub(f"burst{i}") for i in range(3)]
    charter = net.found(hubs)
    net.mesh(hubs)
    await net.start()
    t = now_ms()
    raws = [build_record(hubs[0].key, charter.id, "guide", guide_body(f"Burst {i}"), t - 1000 + i).raw
            for i in range(40)]
    assert hubs[0].store is not None
    store = hubs[0].store
    # One record per call, all at once, as a burst of publishes arrives.
    await asyncio.gather(*(store.ingest_async([raw], now_ms=now_ms(), source="local") for raw in raws))
    ids = [hashlib.sha256(r).hexdigest() for r in raws]
    await eventually(lambda: lacking(hubs, ids), "the burst reaches every hub")
    announces = hubs[0].fed.stats["push_announce"]
    # Without coalescing it would be one announce per record per peer: 80.
    assert announces <= 20, (announces, hubs[0].fed.limits.session_batch_ms)
    for hub in hubs:
        assert hub.fed.traffic()["sessions"] == 2, hub.fed.traffic()  # one per peer


async def test_records_signed_here_reach_each_peer_once_unasked_and_relays_cost_no_copies(net: Network) -> None:
    """A hub sends what it signs to every peer it holds a session with, without an announce; the peers'
    relays are held AUTHOR_RELAY_DELAY_MS, then announced and answered from memory: every hub receives each
    record exactly once (bench/burst_bench.py measured a quarter of all pushes as copies before)."""
    from federation.node import AUTHOR_RELAY_DELAY_MS
    from protocol.records import peek_author

    hubs = [net.hub(f"once{i}") for i in range(4)]
    for hub in hubs:  # anti-entropy would race the pushes and send copies of its own: this is about pushes
        hub.home.config.limits["sync_interval_ms"] = 600_000
        hub.home.save_config()
    charter = net.found(hubs)
    net.mesh(hubs)
    await net.start()
    await eventually(lambda: None if all(h.fed.traffic()["sessions"] == 3 for h in hubs) else
                     str([h.fed.traffic()["sessions"] for h in hubs]), "the sessions are dialed up front")
    raw = build_record(hubs[0].key, charter.id, "guide", guide_body("Mine"), now_ms()).raw
    assert peek_author(raw) == hubs[0].key.public and peek_author(b"\x00" + raw) == b""
    ids = [await hubs[0].publish("guide", guide_body(f"Signed here {i}")) for i in range(20)]
    await eventually(lambda: lacking(hubs, ids), "the guides reach every hub")
    await asyncio.sleep(AUTHOR_RELAY_DELAY_MS / 1000 + 0.5)  # the relays' announces have gone out
    assert hubs[0].fed.stats["push_announce"] == 0  # nothing it signed was announced first
    for hub in hubs[1:]:
        assert hub.fed.stats["records_in"] == 20, (hub.name, hub.fed.stats)
        assert hub.fed.stats["push_duplicates"] == 0, (hub.name, hub.fed.stats)
    relays = sum(h.fed.stats["push_announce"] for h in hubs[1:])
    assert relays > 0  # the relays still went (a hub the author cannot reach would hear of it)
    assert sum(h.fed.stats["push_records"] for h in hubs[1:]) == 0  # and were answered from memory


async def test_drain_waits_for_pushes_not_for_open_sessions(net: Network) -> None:
    """A one-shot `coophub sync` drains its pushes before it exits; a session's reader (and the config loop)
    lasts as long as federation, so drain must not wait for it — it once ran out its whole 30 s every time."""
    a, b = net.hub("drain-a"), net.hub("drain-b")
    net.found([a, b])
    net.link(a, b)
    await net.start()
    await eventually(lambda: None if a.fed.traffic()["sessions"] == 1 else str(a.fed.traffic()),
                     "the session is up")
    guide = await a.publish("guide", guide_body("Drained"))
    await eventually(lambda: lacking([b], [guide]), "b gets the guide")
    assert a.fed._lasting and all(not t.done() for t in a.fed._lasting)  # the reader and the config loop run
    drained = asyncio.create_task(a.fed.drain(60.0))
    await eventually(lambda: None if drained.done() else "still draining", "drain returns with the session open")
    assert a.fed.traffic()["sessions"] == 1


async def test_records_over_the_per_peer_quota_are_rate_limited_not_scored(net: Network) -> None:
    """peer_records_per_s: records beyond a peer's quota are refused as rate-limited, never scored."""
    a, b = net.hub("quota-a"), net.hub("quota-b")
    charter = net.found([a, b])
    a.home.config.limits = {**a.home.config.limits, "peer_records_per_s": 5}
    a.home.save_config()
    await net.start()
    raws = [build_record(b.key, charter.id, "guide", guide_body(f"Quota {i}"), now_ms() - 100 + i).raw
            for i in range(8)]
    results = await push_raw(a, raws, b.key)
    assert [r[1] for r in results] == ["accepted"] * 5 + ["refused"] * 3, results
    assert {r[2] for r in results[5:]} == {"rate-limited"}
    peer = next(p for p in a.fed.peers if p.hub_id == b.key.public)
    assert peer.score == a.fed.limits.peer_score_start


async def test_max_sessions_and_session_handshake_ms_bound_what_a_stranger_holds(net: Network) -> None:
    a = net.hub("bound-a")
    charter = net.found([a])
    a.home.config.limits = {**a.home.config.limits, "max_sessions": 1, "session_handshake_ms": 300}
    a.home.save_config()
    await net.start()
    client, http = await open_session(a, HubKey.generate(), charter.id)
    try:
        # max_sessions: the second session is turned away before any handshake work.
        assert await _refusal(a.url, HubKey.generate(), charter.id) == ""
    finally:
        await client.close()
        await http.close()
    # session_handshake_ms: a socket that says nothing is closed.
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(f"{a.url}/fed/v1/session")
        msg = await asyncio.wait_for(ws.receive(), 5)
        assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == sx.CLOSE_CODES["busy"], msg
        await ws.close()


async def test_strangers_keys_fill_only_the_applicants_sessions(net: Network) -> None:
    """Anyone can make a key and get an applicant's session; past max_applicant_sessions a stranger is closed
    'busy', and a member still gets its session."""
    a, b = net.hub("cap-a"), net.hub("cap-b")
    charter = net.found([a, b])
    a.home.config.limits = {**a.home.config.limits, "max_applicant_sessions": 2}
    a.home.save_config()
    await net.start(hubs=[a])
    opened = [await open_session(a, HubKey.generate(), charter.id) for _ in range(2)]
    try:
        assert await _refusal(a.url, HubKey.generate(), charter.id) == "busy"
        assert await _refusal(a.url, b.key, charter.id) == "accepted"
    finally:
        for client, session in opened:
            await client.close()
            await session.close()


async def test_open_sessions_do_not_hold_http_request_slots(net: Network) -> None:
    """A session lives for hours: if it held one of http_max_requests_in_flight, that many sessions (anyone's
    key gets an applicant's) would answer every other request 503."""
    a = net.hub("slots-a")
    charter = net.found([a])
    a.home.config.limits = {**a.home.config.limits, "http_max_requests_in_flight": 2}
    a.home.save_config()
    await net.start()
    opened = [await open_session(a, HubKey.generate(), charter.id) for _ in range(3)]
    try:
        async with aiohttp.ClientSession() as http:
            for path in ("/fed/v1/info", "/api/v1/status"):
                async with http.get(f"{a.url}{path}") as response:
                    assert response.status == 200, (path, response.status, await response.text())
    finally:
        for client, session in opened:
            await client.close()
            await session.close()


async def test_session_concurrency_and_session_inflight_bytes_hold_back_a_flood(tmp_path: Path) -> None:
    """A peer's requests beyond session_concurrency wait unread (TCP back-pressure); our own requests beyond
    session_inflight_bytes wait before they are sent."""
    association = bytes(range(32))
    server_key, client_key = HubKey.generate(), HubKey.generate()
    release = asyncio.Event()
    seen: list[int] = []

    async def handler(conn: transport.PeerConn, op: str, body: Any) -> Any:
        seen.append(body["n"])
        await release.wait()
        return {"n": body["n"]}

    async def admit(est: sx.Established) -> str:
        return "member"

    async def serve(limits: Any) -> tuple[web.AppRunner, int]:
        async def route(request: web.Request) -> web.StreamResponse:
            ws, conn = await transport.accept(request, server_key, association, limits, sx.ReplayCache(10_000),
                                              admit, handler)
            if conn is not None:
                await conn.run()
            return ws

        app = web.Application()
        app.router.add_get("/fed/v1/session", route)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner, int(runner.addresses[0][1])

    import dataclasses

    for limits, expected in ((dataclasses.replace(DEFAULT_LIMITS, session_concurrency=3), 3),
                             (dataclasses.replace(DEFAULT_LIMITS, session_inflight_bytes=40), 2)):
        release.clear()
        seen.clear()
        runner, port = await serve(limits)
        async with aiohttp.ClientSession() as http:
            conn = await transport.dial(http, f"http://127.0.0.1:{port}", client_key, association, limits,
                                        handler, own_url="")
            reader = asyncio.create_task(conn.run())
            calls = [asyncio.create_task(conn.request("echo", {"n": i})) for i in range(8)]
            await eventually(lambda n=expected: None if len(seen) >= n else f"{len(seen)} seen", "requests arrive")
            await asyncio.sleep(0.2)
            assert len(seen) == expected, (seen, limits.session_concurrency, limits.session_inflight_bytes)
            release.set()
            assert sorted(r["n"] for r in await asyncio.gather(*calls)) == list(range(8))
            await conn.close()
            reader.cancel()
        await runner.cleanup()


async def test_an_inbound_session_from_a_member_carries_pushes_without_a_url(net: Network) -> None:
    """Issue 8 item 5: B dials A, A has no URL for B (none configured, no profile naming one); what A
    publishes reaches B by push over B's session within seconds, with anti-entropy an hour away."""
    a, b = net.hub("inbound-a"), net.hub("inbound-b")
    net.found([a, b])
    for hub in (a, b):
        hub.home.config.limits = {**hub.home.config.limits, "sync_interval_ms": 3_600_000}
        hub.home.save_config()
    await net.start()
    assert len(a.fed.peers) == 0  # A knows no peer at all
    b.fed.add_peer(a.url)  # `coophub peers add` on the running B: it dials A at once
    key = f"session:{b.hub_id}"
    await eventually(lambda: None if key in a.fed.peers and a.fed.client is not None
                     and key in a.fed.client.conns and not a.fed.client.conns[key].closed
                     else "no inbound session from B", "B's session reaches A")
    assert [p.url for p in a.fed.peers] == [key]
    # B's one anti-entropy round (the dial's) has finished: any later one would show in the counters.
    await eventually(lambda: None if b.fed.stats["sync_sessions"] >= 1 else "B's first sync running",
                     "B's first anti-entropy round ends")
    syncs = b.fed.stats["sync_sessions"], a.fed.stats["sync_sessions"]
    guide = await a.publish("guide", guide_body("Pushed over an inbound session"))
    await eventually(lambda: lacking([b], [guide]), "B gets A's guide by push", deadline_s=10)
    assert (b.fed.stats["sync_sessions"], a.fed.stats["sync_sessions"]) == syncs  # not by anti-entropy
    assert a.fed.stats["push_records"] >= 1
    assert a.fed.client.sessions_opened == 0  # A dialed nothing: the push went over B's session
    # What `peers list`, `status` and the network page read (federation/status.py): open, inbound, scored.
    snap = {r["url"]: r for r in a.fed.peer_sessions()}
    assert snap[key]["session_state"] == "open" and snap[key]["direction"] == "inbound", snap
    assert snap[key]["score"] == a.fed.limits.peer_score_start and snap[key]["hub"] == b.hub_id
    await b.stop()
    await eventually(lambda: None if {r["url"]: r for r in a.fed.peer_sessions()}[key]["session_state"]
                     in ("closed", "backoff") else "still open", "A sees B's session end")


async def test_records_of_another_association_cost_the_sender_score_and_are_never_stored(net: Network) -> None:
    """PRODUCT.md §3.2: "another association" is an objective fault. A member whose session is authenticated
    for our association but pushes records signed for another one loses score per record and is dropped when
    it runs out; a peer our anti-entropy fetches such records from is dropped the same way. None is stored.
    Honest refusals and deferrals (an applicant's non-profile record, a not-yet-member's guide) cost nothing."""
    a, b = net.hub("foreign-a"), net.hub("foreign-b")
    charter = net.found([a, b])
    await net.start()
    limits = a.fed.limits
    t = now_ms()
    other = build_record(b.key, bytes(32), "charter", {
        "name": "Another Association", "description": "Not ours.", "founders": [b.key.public],
        "endorsements_needed": 1, "schemes": []}, t - 30_000)
    steps = (limits.peer_score_start - limits.peer_score_drop_at) // limits.peer_score_invalid_cost
    foreign = [other.raw] + [build_record(b.key, other.id, "guide", guide_body(f"Elsewhere {i}"), t - 20_000 + i).raw
                             for i in range(2 * steps)]
    foreign_ids = {hashlib.sha256(raw).hexdigest() for raw in foreign}

    def b_peer() -> Any:
        return next(p for p in a.fed.peers if p.hub_id == b.key.public)

    # Honest first: an applicant's guide on its own session is blocked, relayed by b it is deferred.
    applicant = HubKey.generate()
    early = build_record(applicant, charter.id, "guide", guide_body("Before admission"), t - 10_000).raw
    assert [r[1:] for r in await push_raw(a, [early], applicant)] == [["refused", "blocked"]]
    assert [r[1:] for r in await push_raw(a, [early], b.key)] == [["deferred", "not-a-member"]]
    assert b_peer().score == limits.peer_score_start

    # Records of another association from a member: refused, scored, and at the threshold it is dropped.
    results = await push_raw(a, foreign[:steps - 1], b.key)
    assert {tuple(r[1:]) for r in results} == {("refused", "wrong-association")}, results
    assert b_peer().score == limits.peer_score_drop_at + limits.peer_score_invalid_cost
    assert b_peer().state != "dropped"
    assert (await push_raw(a, foreign[steps - 1:steps], b.key))[0][1:] == ["refused", "wrong-association"]
    assert b_peer().state == "dropped" and b_peer().refused.get("wrong-association") == steps, b_peer()
    with pytest.raises(PeerUnavailable) as refused:
        await push_raw(a, foreign[steps:steps + 1], b.key)
    assert refused.value.close_reason == "dropped"

    # The same records served to our anti-entropy by a peer of our association: it is dropped too.
    hostile = await net.hostile(foreign[steps:], charter.id)
    a.fed.add_peer(hostile.url)

    def hostile_dropped() -> str | None:
        state = a.fed.peers.get(hostile.url)
        return None if state.state == "dropped" else f"state {state.state}, score {state.score}"

    await eventually(hostile_dropped, "the peer serving another association's records is dropped")
    assert a.fed.peers.get(hostile.url).refused.get("wrong-association", 0) >= steps
    assert not a.ids() & foreign_ids, "a record of another association was stored"
    assert a.store is not None
    assert {r["reason"] for r in a.store.refused_summary()} == {"wrong-association"}


async def test_a_member_unreachable_at_its_url_that_dials_in_is_one_row(net: Network) -> None:
    """B's profile names a URL A cannot reach (nothing listens there); B dials A. A's peer table has the URL
    (hub unproven) and ``session:<B>``; GET /api/v1/peers, GET /api/v1/status and the network page show one
    row for B: the URL, with the open inbound session's state and score."""
    a, b = net.hub("alias-a"), net.hub("alias-b")
    net.found([a, b])
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))  # bound, never listening: connections to it are refused
    dead_url = f"http://127.0.0.1:{dead.getsockname()[1]}"
    try:
        await net.start()
        await b.publish("profile", {"name": "Beta Care", "regions": ["Powys"], "services": [],
                                    "peer_urls": [dead_url]})
        b.fed.add_peer(a.url)
        key = f"session:{b.hub_id}"
        await eventually(lambda: None if dead_url in a.fed.peers and key in a.fed.peers
                         and a.fed.peers.get(dead_url).failures > 0 else f"{[p.url for p in a.fed.peers]}",
                         "A learns B's URL, fails to reach it, and has B's inbound session")
        assert a.fed.peers.get(dead_url).hub_id is None  # the two entries of the table are not tied there

        async with net.http.get(f"{a.url}/api/v1/peers") as resp:
            peers = (await resp.json())["peers"]
        mine = [r for r in peers if r["hub"] == b.hub_id or r["url"] in (dead_url, key)]
        assert len(mine) == 1, mine
        row = mine[0]
        assert (row["url"], row["session_key"], row["inbound_only"]) == (dead_url, key, False), row
        assert row["session_state"] == "open" and row["direction"] == "inbound", row
        assert row["score"] == a.fed.limits.peer_score_start and row["name"] == "Beta Care", row
        async with net.http.get(f"{a.url}/api/v1/status") as resp:
            sessions = (await resp.json())["peer_sessions"]
        assert [r["url"] for r in sessions if r["hub"] == b.hub_id or r["url"] in (dead_url, key)] == [dead_url]
        status, page = await a.get("/network")
        assert status == 200 and page.count(dead_url.encode()) == 1 and key.encode() not in page
    finally:
        dead.close()
