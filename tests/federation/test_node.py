"""federation/node.py: the federation node's decisions, events in and actions out, with no I/O and no clock."""

from __future__ import annotations

import dataclasses
import hashlib
import random

from federation.gossip import WANT_PROMISE_MS
from federation.node import (
    AUTHOR_RELAY_DELAY_MS,
    BURST_SPACING,
    DIAL_AT_ONCE,
    ClosePeer,
    DiscoverPeers,
    DropPeer,
    FederationNode,
    NodeAction,
    OpenSession,
    RefreshMembership,
    RetryDeferred,
    ReviewRoles,
    SavePeers,
    SendAnnounce,
    SendRecords,
    StartSync,
)
from protocol.limits import DEFAULT_LIMITS, Limits

SEED = 5
A, B, C, D = (f"https://{name}.example" for name in "abcd")
BATCH = DEFAULT_LIMITS.session_batch_ms
INTERVAL = DEFAULT_LIMITS.sync_interval_ms


def rid(n: int) -> bytes:
    return hashlib.sha256(f"record {n}".encode()).digest()


def node(peers: tuple[str, ...] = (A, B, C), limits: Limits = DEFAULT_LIMITS) -> FederationNode:
    print(f"seed: {SEED}")
    n = FederationNode(limits, random.Random(SEED), self_urls=["https://self.example"])
    n.configured(peers, 0)
    return n


def announces(actions: list[NodeAction]) -> dict[str, tuple[bytes, ...]]:
    out: dict[str, tuple[bytes, ...]] = {}
    for a in actions:
        if isinstance(a, SendAnnounce):
            out[a.peer] = out.get(a.peer, ()) + a.record_ids
    return out


def flush(n: FederationNode, now: int) -> dict[str, tuple[bytes, ...]]:
    """Run the node's timer at ``now`` and report each announce as delivered at once."""
    sent = announces(n.tick(now))
    for peer, ids in sent.items():
        n.push_finished(peer, ids, True, now)
    return sent


# -- refused, deferred, blocked ------------------------------------------------------------------------------


def test_a_refused_id_is_never_fetched_again_from_the_same_peer() -> None:
    n = node()
    n.records_received(A, [(rid(1), "invalid"), (rid(2), "accepted")], 0)
    score = n.peers.get(A).score
    for round_ in range(20):  # every anti-entropy round offers the same ids again
        assert n.fetch_filter(A, [rid(1), rid(3)]) == [rid(3)], round_
    assert n.fetch_filter(B, [rid(1)]) == [rid(1)]  # another peer is asked: it may hold what we lack
    assert n.peers.get(A).score == score == DEFAULT_LIMITS.peer_score_start - DEFAULT_LIMITS.peer_score_invalid_cost


def test_deferred_records_are_never_scored_however_many() -> None:
    n = node()
    for i in range(200):
        reason = ("future", "missing-reference", "not-a-member")[i % 3]
        actions = n.records_received(A, [(rid(i), reason)], i)
        assert not any(isinstance(a, DropPeer) for a in actions)
    peer = n.peers.get(A)
    assert peer.score == DEFAULT_LIMITS.peer_score_start and peer.state != "dropped"
    assert n.fetch_filter(A, [rid(0)]) == [rid(0)]  # deferred, not refused: the store decides when it is held


def test_deferred_records_are_retried_when_time_passes_and_relayed_when_they_land() -> None:
    n = node()
    n.start(0)
    n.records_received(A, [(rid(1), "future"), (rid(2), "missing-reference")], 10)
    due = n.next_deadline_ms()
    assert due is not None and due <= INTERVAL + INTERVAL // 4
    actions = n.tick(due)
    assert RetryDeferred(due) in actions  # the store's retry_due runs every round, whether or not a peer is due
    # Their time came (or the missing reference arrived): the store took them in, reporting A as their source.
    landed = n.records_landed(A, [rid(1), rid(2)], due + 1)
    assert RefreshMembership() in landed and not any(isinstance(a, DropPeer) for a in landed)
    sent = flush(n, due + 1 + BATCH)
    assert A not in sent and sent and all(set(ids) == {rid(1), rid(2)} for ids in sent.values())
    assert n.peers.get(A).score == DEFAULT_LIMITS.peer_score_start


def test_blocked_ids_are_skipped_until_membership_changes() -> None:
    n = node()
    n.membership(3, 3)
    n.records_received(A, [(rid(1), "blocked")], 0)
    assert n.fetch_filter(B, [rid(1)]) == []
    assert n.membership(3, 4) == [DiscoverPeers()] and n.fetch_filter(B, [rid(1)]) == []  # a profile only
    assert n.membership(4, 4) == [ReviewRoles(), DiscoverPeers()] and n.fetch_filter(B, [rid(1)]) == [rid(1)]
    assert n.membership(4, 4) == []


# -- scoring and dropping ------------------------------------------------------------------------------------


def test_a_peer_over_the_score_threshold_gets_a_drop_action_and_is_dropped() -> None:
    n = node()
    n.peers.set_hub_id(A, b"a" * 32)
    cost, start = DEFAULT_LIMITS.peer_score_invalid_cost, DEFAULT_LIMITS.peer_score_start
    faults = (start - DEFAULT_LIMITS.peer_score_drop_at) // cost
    for i in range(faults - 1):
        assert not any(isinstance(a, DropPeer) for a in n.records_received(A, [(rid(i), "invalid")], i))
    actions = n.records_received(A, [(rid(99), "too-large")], 100)
    assert DropPeer(A, "score", DEFAULT_LIMITS.peer_score_drop_at) in actions
    peer = n.peers.get(A)
    assert peer.state == "dropped" and peer.drop_reason == "score" and n.is_dropped(A)
    assert n.hub_dropped(b"a" * 32)  # its next session is refused
    # Once: more faults don't drop it again, and it gets no pushes and no offers.
    assert not any(isinstance(a, DropPeer) for a in n.records_received(A, [(rid(100), "invalid")], 101))
    n.local_stored([rid(200)], 200)
    assert A not in flush(n, 200 + BATCH)
    assert n.offer(A, [rid(200)]) == []
    # Only the operator revives it, with a fresh score.
    n.peer_added(A, 300)
    assert n.peers.get(A).state == "new" and n.peers.get(A).score == start and n.peers.get(A).drop_reason == ""


def test_a_peer_of_another_association_is_dropped_explicitly() -> None:
    n = node()
    n.start(0)
    sync = [a for a in n.tick(INTERVAL * 2) if isinstance(a, StartSync)]
    assert len(sync) == 1
    actions = n.sync_finished(sync[0].peer, INTERVAL * 2, ok=False, close_reason="wrong-association")
    dropped = n.peers.get(sync[0].peer)
    assert dropped.state == "dropped" and dropped.drop_reason == "wrong-association"
    assert DropPeer(sync[0].peer, "wrong-association", dropped.score) in actions and SavePeers() in actions


def test_a_blob_with_the_wrong_hash_costs_score_like_an_invalid_record() -> None:
    n = node()
    n.blob_mismatch(B, 0)
    assert n.peers.get(B).score == DEFAULT_LIMITS.peer_score_start - DEFAULT_LIMITS.peer_score_invalid_cost
    n.peers.set_hub_id(C, b"c" * 32)
    assert n.blob_peers(b"c" * 32, 2)[0] == C and len(n.blob_peers(b"c" * 32, 2)) == 2


def test_an_unproven_sender_is_not_scored() -> None:
    n = node()
    n.records_received(A, [(rid(i), "invalid") for i in range(50)], 0, score=False)
    assert n.peers.get(A).score == DEFAULT_LIMITS.peer_score_start


# -- pushes --------------------------------------------------------------------------------------------------


def test_pushes_avoid_the_origin_peer_and_peers_known_to_hold_the_record() -> None:
    n = node((A, B, C, D))  # fan-out 4: every other peer is a target
    n.records_received(A, [(rid(1), "accepted")], 0)
    n.records_received(B, [(rid(1), "duplicate")], 1)  # B has it too: taken out of B's outbox
    sent = flush(n, BATCH)
    assert set(sent) == {C, D} and all(ids == (rid(1),) for ids in sent.values())
    # Relayed once: the same record from another peer is not pushed again.
    n.records_received(D, [(rid(1), "duplicate")], BATCH + 1)
    assert flush(n, 2 * BATCH + 1) == {}


def test_a_catch_up_is_not_relayed() -> None:
    n = node()
    n.records_received(A, [(rid(1), "accepted")], 0, relay=False)
    assert flush(n, BATCH) == {} and not n.pushes_pending()


def test_announces_are_coalesced_per_peer_one_in_flight_at_a_time() -> None:
    limits = dataclasses.replace(DEFAULT_LIMITS, push_batch=3)
    n = node((A,), limits)
    n.local_stored([rid(i) for i in range(2)], 0)
    n.local_stored([rid(i) for i in range(2, 7)], 1)
    assert n.next_deadline_ms() == BATCH  # the first id opened the window
    assert n.tick(BATCH - 1) == []
    first = n.tick(BATCH)
    assert first == [SendAnnounce(A, (rid(0), rid(1), rid(2)))]
    assert n.pushes_pending() and n.tick(BATCH + 100) == []  # one announce in flight per peer
    second = n.push_finished(A, first[0].record_ids, True, BATCH + 40)
    assert second == [SendAnnounce(A, (rid(3), rid(4), rid(5)))]  # the rest goes at once, batched
    third = n.push_finished(A, second[0].record_ids, False, BATCH + 80)  # a failure does not stop the queue
    assert third == [SendAnnounce(A, (rid(6),))]
    assert n.push_finished(A, third[0].record_ids, True, BATCH + 90) == [] and not n.pushes_pending()


def test_an_offer_is_pushed_unannounced_and_never_announced_again() -> None:
    n = node((A, B))
    assert n.offer(A, [rid(1)]) == [SendRecords(A, (rid(1),))]
    assert n.push_finished(A, [rid(1)], True, 0, announced=False) == []
    n.local_stored([rid(1)], 1)
    assert A not in flush(n, 1 + BATCH)


# -- anti-entropy schedule and peers -------------------------------------------------------------------------


def test_one_sync_at_a_time_on_a_jittered_schedule() -> None:
    n = node()
    assert n.next_deadline_ms() is None  # nothing before start
    n.start(0)
    first = n.next_deadline_ms()
    assert first is not None and INTERVAL * 3 // 4 <= first <= INTERVAL * 5 // 4
    actions = n.tick(first)
    starts = [a for a in actions if isinstance(a, StartSync)]
    assert actions[0] == RetryDeferred(first) and len(starts) == 1 and not starts[0].catch_up
    assert n.next_deadline_ms() is None and n.tick(first + 10 * INTERVAL) == []  # the session still runs
    done = n.sync_finished(starts[0].peer, first + 500, ok=True, need=3, need_ids=[rid(1)])
    assert done == [SavePeers()]
    peer = n.peers.get(starts[0].peer)
    assert peer.lag == 3 and peer.last_sync_ms == first + 500 and peer.state == "healthy"
    after = n.next_deadline_ms()
    assert after is not None and first + 500 + INTERVAL * 3 // 4 <= after
    n.local_stored([rid(1)], after)  # the peer showed it holds rid(1): never pushed back to it
    assert starts[0].peer not in flush(n, after + BATCH)


def test_a_hub_without_a_charter_catches_up_and_a_failed_sync_backs_off() -> None:
    n = node((A,))
    n.joined = False
    n.start(0, first_sync_ms=100)
    assert StartSync(A, catch_up=True) in n.tick(100)
    n.sync_finished(A, 200, ok=False)
    assert n.peers.get(A).state == "failing" and n.peers.get(A).next_attempt_ms > 200
    # The next round contacts A only once its backoff has passed; the deferred retry runs either way.
    due = n.next_deadline_ms()
    assert due is not None
    backoff_over = n.peers.get(A).next_attempt_ms <= due
    assert n.tick(due) == [RetryDeferred(due)] + ([StartSync(A, catch_up=True)] if backoff_over else [])


def test_config_changes_add_peers_at_once_and_close_removed_ones() -> None:
    n = node((A, B))
    n.start(0)
    assert n.configured([A, B], 10) == []
    assert n.configured([A, C + "/"], 20) == [ClosePeer(B)]
    assert B not in n.peers and C in n.peers
    assert n.next_deadline_ms() == 20  # a peer the operator just added is tried now, not a round later
    assert n.configured(["https://self.example"], 30) == [ClosePeer(A), ClosePeer(C)]  # own URL ignored


def test_sessions_file_under_the_proven_peer() -> None:
    n = node((A,))
    hub = b"h" * 32
    alias = n.inbound_peer(hub, "member", 0)
    assert alias.startswith("session:") and alias in n.peers  # a member is scored while its session lasts
    assert n.inbound_peer(b"x" * 32, "applicant", 0) not in n.peers
    n.records_received(alias, [(rid(i), "invalid") for i in range(10)], 1)
    assert n.is_dropped(alias)
    n.outbound_proved(A, hub)  # we dialed A and it proved that key: the alias merges into A, drop included
    assert alias not in n.peers and n.is_dropped(A) and n.inbound_peer(hub, "member", 2) == A
    n.session_opened(A, "out", "member", 3)
    assert n.peers.get(A).session == "out:member" and n.peers.get(A).state == "dropped"  # no revival
    n.session_closed(A, "dropped")
    assert n.peers.get(A).session == "closed:dropped"


def test_the_same_events_give_the_same_actions() -> None:
    """Replayable from the seed: the simulation depends on it."""
    def run() -> list[NodeAction]:
        n = node((A, B, C, D))
        n.start(0)
        out: list[NodeAction] = []
        for i in range(30):
            out += n.local_stored([rid(i)], i * 7)
            out += n.tick(i * 7 + BATCH)
        return out

    assert run() == run()


# -- the burst hot path (bench/burst_bench.py) -----------------------------------------------------------------


def open_sessions(n: FederationNode, *peers: str) -> None:
    for i, peer in enumerate(peers):
        n.outbound_proved(peer, bytes([i + 1]) * 32)
        n.session_opened(peer, "out", "member", 0)


def test_a_record_signed_here_goes_unasked_to_every_peer_with_a_session() -> None:
    n = node((A, B, C, D), dataclasses.replace(DEFAULT_LIMITS, push_fanout=1))
    open_sessions(n, A, B, C)  # D has no session: it hears of the record from the others' relays
    n.local_stored([rid(1)], 0, signed_here=True)
    sent = n.tick(BATCH)
    assert {a.peer for a in sent if isinstance(a, SendAnnounce) and a.peer != D} == {A, B, C}
    for action in sent:
        assert isinstance(action, SendAnnounce)
        assert (action.record_ids, action.unasked) == ((), (rid(1),))  # no announce round trip: it is new
        n.push_finished(action.peer, action.unasked, True, BATCH)
    # Imported (or received) records are announced to push_fanout peers, as before.
    n.local_stored([rid(2)], 1)
    later = n.tick(10_000)
    assert [(a.record_ids, a.unasked) for a in later if isinstance(a, SendAnnounce)] == [((rid(2),), ())]


def test_a_hub_with_two_keys_in_the_table_gets_a_record_signed_here_once() -> None:
    n = node((A, B), dataclasses.replace(DEFAULT_LIMITS, push_fanout=1))
    hub = b"h" * 32
    n.outbound_proved(A, hub)
    n.outbound_proved(B, hub)  # the same hub at two URLs (a proxy and its own address)
    n.session_opened(A, "out", "member", 0)
    n.session_opened(B, "out", "member", 0)
    n.local_stored([rid(1)], 0, signed_here=True)
    assert len(announces(n.tick(BATCH))) == 1


def test_relays_of_records_from_their_author_are_held_and_dropped_where_the_peer_has_them() -> None:
    n = node((A, B, C))
    # From a relay (not the author): relayed after session_batch_ms, as before.
    n.records_received(A, [(rid(1), "accepted")], 0)
    assert set(announces(n.tick(BATCH))) == {B, C}
    # From the author, in an association where this hub holds a session with every other member (4 members):
    # the author pushed to every hub it reaches, so the relay waits AUTHOR_RELAY_DELAY_MS.
    n = node((A, B, C))
    open_sessions(n, A, B, C)
    n.membership(4, 4)
    n.records_received(A, [(rid(2), "accepted")], 0, from_author=True)
    assert n.tick(BATCH) == [] and n.next_deadline_ms() == AUTHOR_RELAY_DELAY_MS
    n.records_received(B, [(rid(2), "duplicate")], 10)  # B got it from the author too: not announced there
    n.want_candidates(C, [rid(2)], 20)  # C announced it to us: it has it
    assert n.next_deadline_ms() is None  # nothing is left to relay: no timer
    assert n.tick(AUTHOR_RELAY_DELAY_MS) == [] and n.next_deadline_ms() is None
    # A held relay nobody sent us meanwhile still goes (a hub the author cannot reach hears of it).
    n.records_received(A, [(rid(3), "accepted")], 2_000, from_author=True)
    n.tick(2_000 + AUTHOR_RELAY_DELAY_MS)
    assert set(flush(n, 2_000 + AUTHOR_RELAY_DELAY_MS + BATCH)) == {B, C}
    # In a larger association (10 members, sessions with 3 of them) the author reached only some hubs: the
    # relays go at once, so no later hop waits.
    n.membership(10, 10)
    n.records_received(A, [(rid(4), "accepted")], 5_000, from_author=True)
    assert set(flush(n, 5_000 + BATCH)) == {B, C}


def test_an_id_asked_of_one_peer_is_not_asked_of_another_until_the_promise_expires() -> None:
    n = node((A, B))
    assert n.promise(n.want_candidates(A, [rid(1), rid(2), rid(1)], 0), 0) == [rid(1), rid(2)]
    assert n.want_candidates(B, [rid(1), rid(3)], 5) == [rid(3)]  # A's push of rid(1) is on its way
    assert n.promise([rid(3), rid(3)], 5) == [rid(3)]
    assert n.promise([rid(3)], 6) == []  # two announces answered at once: only one asks
    assert n.want_candidates(B, [rid(1)], WANT_PROMISE_MS + 1) == [rid(1)]  # it never came: ask again
    n.records_received(A, [(rid(4), "accepted")], 7)
    assert n.want_candidates(B, [rid(4)], 8) == []  # seen: answered from memory


def test_a_burst_to_one_peer_leaves_in_few_batches() -> None:
    n = node((A,))
    batches = 0
    for t in range(0, 200):  # a record a millisecond for 200 ms
        n.local_stored([rid(t)], t)
        for action in n.tick(t):
            assert isinstance(action, SendAnnounce)
            batches += 1
            n.push_finished(A, action.record_ids, True, t)
    assert batches <= 200 // (BATCH * BURST_SPACING) + 2
    assert batches >= 2  # not held for the whole burst


def test_known_peers_are_dialed_a_few_at_a_time_and_retried_with_backoff() -> None:
    peers = tuple(f"https://p{i}.example" for i in range(DIAL_AT_ONCE + 2))
    n = node(peers)
    first = n.dial_due(0)
    assert len(first) == DIAL_AT_ONCE and all(isinstance(a, OpenSession) for a in first)
    assert n.dial_due(1) == []  # every dial slot is taken
    failed, up = first[0].peer, first[1].peer
    n.dial_finished(failed, False, 10)
    n.outbound_proved(up, b"u" * 32)
    n.session_opened(up, "out", "member", 10)
    n.dial_finished(up, True, 10)
    for action in first[2:]:
        n.dial_finished(action.peer, False, 10)
    second = {a.peer for a in n.dial_due(20)}
    assert second == set(peers[DIAL_AT_ONCE:])  # the failed ones wait; the open one is never dialed again
    for peer in second:
        n.dial_finished(peer, True, 20)
    assert failed in {a.peer for a in n.dial_due(10 + 1_000)}  # retried after its wait
    n.dial_finished(failed, False, 1_010)
    assert failed not in {a.peer for a in n.dial_due(1_010 + 1_500)}  # the wait doubled


def test_a_peer_that_dialed_us_first_is_not_dialed_again_under_its_url() -> None:
    n = node((A, B))
    hub = b"h" * 32
    n.outbound_proved(A, hub)  # known from an earlier session
    n.session_closed(A, "")
    key = n.inbound_peer(hub, "member", 0, "https://a.example")
    n.session_opened(key, "in", "member", 0)
    assert {a.peer for a in n.dial_due(1)} == {B}


def test_only_a_member_claiming_a_known_url_cuts_its_dial_wait() -> None:
    n = node((A,))
    assert [a.peer for a in n.dial_due(0)] == [A]
    n.dial_finished(A, False, 0)  # A is down: the next dial waits
    assert n.dial_due(10) == []
    n.inbound_peer(b"s" * 32, "applicant", 20, A)  # a stranger says it is A: nothing changes
    assert n.dial_due(30) == []
    n.inbound_peer(b"m" * 32, "member", 40, A)  # a member says so: dial A now, and see who answers
    assert [a.peer for a in n.dial_due(50)] == [A]
