"""federation/gossip.py: de-duplicated fan-out, never back to the source, batching, scoring."""

from __future__ import annotations

import dataclasses
import hashlib
import random

import pytest

from federation.gossip import Gossip, PeerDropped, PushAction, SeenSet
from federation.peers import PeerTable
from protocol.limits import DEFAULT_LIMITS, Limits

PEERS = [f"https://h{i}.example" for i in range(8)]


def rid(n: int) -> bytes:
    return hashlib.sha256(b"gossip:%d" % n).digest()


def make(limits: Limits = DEFAULT_LIMITS, seed: int = 5) -> Gossip:
    peers = PeerTable(limits, random.Random(seed))
    for url in PEERS:
        peers.add(url, 0)
    return Gossip(peers, limits)


def pushes(actions: list[object]) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = {}
    for action in actions:
        if isinstance(action, PushAction):
            out.setdefault(action.peer, []).extend(action.record_ids)
    return out


def test_local_record_goes_to_fanout_peers_once() -> None:
    gossip = make()
    sent = pushes(gossip.on_local_record(rid(1), 0))
    assert len(sent) == DEFAULT_LIMITS.push_fanout and all(ids == [rid(1)] for ids in sent.values())
    assert gossip.on_local_record(rid(1), 1) == []


def test_received_record_is_never_pushed_back_to_its_source_or_twice() -> None:
    for seed in range(30):
        gossip = make(seed=seed)
        source = PEERS[seed % 8]
        first = pushes(gossip.on_records_received(source, [(rid(seed), "accepted")], 0))
        assert source not in first and len(first) == DEFAULT_LIMITS.push_fanout
        # The same record from other peers later: already seen, nothing more is pushed.
        for other in PEERS:
            assert gossip.on_records_received(other, [(rid(seed), "duplicate")], 1) == []
        assert set(gossip.seen.holders(rid(seed))) == set(PEERS)


def test_duplicates_mark_holders_so_they_are_skipped() -> None:
    gossip = make()
    gossip.on_records_received(PEERS[0], [(rid(1), "duplicate")], 0)
    gossip.mark_known(PEERS[1], [rid(1)])
    # rid(1) is now seen (we hold it); a local publish of it does nothing.
    assert gossip.on_local_record(rid(1), 0) == []
    assert gossip.seen.holders(rid(1)) == (PEERS[0], PEERS[1])


def test_refused_records_are_not_relayed_and_invalid_ones_drop_the_peer() -> None:
    gossip = make()
    assert gossip.on_records_received(PEERS[0], [(rid(1), "missing-reference")], 0) == []
    assert rid(1) not in gossip.seen  # it may arrive again once its reference does
    outcomes = [(rid(100 + i), "invalid") for i in range(10)] + [(rid(200), "accepted")]
    actions = gossip.on_records_received(PEERS[0], outcomes, 0)
    assert actions[0] == PeerDropped(PEERS[0], DEFAULT_LIMITS.peer_score_drop_at)
    sent = pushes(actions)
    assert all(ids == [rid(200)] for ids in sent.values()) and PEERS[0] not in sent
    # A dropped peer is never a push target again.
    for n in range(20):
        assert PEERS[0] not in pushes(gossip.on_local_record(rid(300 + n), 1))


def test_relay_false_stores_without_pushing() -> None:
    gossip = make()
    assert gossip.on_records_received(PEERS[0], [(rid(1), "accepted")], 0, relay=False) == []
    assert rid(1) in gossip.seen


def test_batching_respects_push_batch() -> None:
    limits = dataclasses.replace(DEFAULT_LIMITS, push_batch=7, push_fanout=8)
    gossip = make(limits)
    batch = [(rid(n), "accepted") for n in range(20)]
    actions = gossip.on_records_received("https://inbound.example", batch, 0)
    assert all(len(a.record_ids) <= 7 for a in actions if isinstance(a, PushAction))
    sent = pushes(actions)
    assert set(sent) == set(PEERS)
    assert all(sorted(ids) == sorted(rid(n) for n in range(20)) for ids in sent.values())


def test_failed_push_backs_off_the_peer_and_forgets_it_as_holder() -> None:
    gossip = make()
    sent = pushes(gossip.on_local_record(rid(1), 0))
    peer = next(iter(sent))
    gossip.on_push_result(peer, [rid(1)], False, 10)
    assert peer not in gossip.seen.holders(rid(1))
    assert gossip.peers.get(peer).state == "failing"
    other = next(p for p in sent if p != peer)
    gossip.on_push_result(other, [rid(1)], True, 10, bytes_out=1024)
    assert gossip.peers.get(other).state == "healthy" and gossip.peers.get(other).bytes_out == 1024


def test_push_disabled_with_fanout_zero() -> None:
    gossip = make(dataclasses.replace(DEFAULT_LIMITS, push_fanout=0))
    assert gossip.on_local_record(rid(1), 0) == []


def test_seen_set_is_a_bounded_lru() -> None:
    seen = SeenSet(3)
    for n in range(3):
        assert seen.add(rid(n))
    seen.add(rid(0))  # refresh
    seen.add(rid(3))  # evicts rid(1), the least recently used
    assert rid(1) not in seen and rid(0) in seen and len(seen) == 3
    assert seen.add(rid(0), "x", "y", "x") is False and seen.holders(rid(0)) == ("x", "y")
    with pytest.raises(ValueError):
        SeenSet(0)


def test_unknown_outcome_is_refused() -> None:
    with pytest.raises(ValueError):
        make().on_records_received(PEERS[0], [(rid(1), "weird")], 0)


def test_unauthenticated_senders_are_not_scored() -> None:
    """An inbound push names its sender in an unauthenticated "from": garbage pushed in an honest peer's name
    must not get that peer dropped (score=False), though it still marks the claimed sender as a holder."""
    gossip = make()
    outcomes = [(rid(100 + i), "invalid") for i in range(50)] + [(rid(1), "duplicate")]
    assert gossip.on_records_received(PEERS[0], outcomes, 0, score=False) == []
    peer = gossip.peers.get(PEERS[0])
    assert peer.state == "new" and peer.score == DEFAULT_LIMITS.peer_score_start and peer.refused == {}
    assert PEERS[0] in gossip.seen.holders(rid(1))
