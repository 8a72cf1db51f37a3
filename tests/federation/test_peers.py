"""federation/peers.py: health table, backoff, scoring, dropping, and peer choice."""

from __future__ import annotations

import dataclasses
import random

import pytest

from federation.peers import (
    HEALTH_TRANSITIONS,
    PENALISED_REASONS,
    PeerTable,
    UnknownPeerError,
    next_health,
)
from protocol.errors import REASONS
from protocol.limits import DEFAULT_LIMITS, Limits

A, B, C = "https://a.example", "https://b.example", "https://c.example"


def table(seed: int = 1, limits: Limits = DEFAULT_LIMITS, **kw: object) -> PeerTable:
    return PeerTable(limits, random.Random(seed), **kw)  # type: ignore[arg-type]


def test_transition_table_is_closed_and_dropped_only_leaves_by_add() -> None:
    for row in HEALTH_TRANSITIONS.values():
        assert set(row.values()) <= set(HEALTH_TRANSITIONS)
    assert HEALTH_TRANSITIONS["dropped"] == {"add": "new"}
    assert next_health("dropped", "ok") == "dropped"
    assert next_health("new", "ok") == "healthy"
    assert next_health("healthy", "fail") == "failing"
    with pytest.raises(ValueError):
        next_health("asleep", "ok")
    with pytest.raises(ValueError):
        next_health("new", "reboot")


def test_backoff_doubles_up_to_the_max() -> None:
    peers = table()
    base, cap = DEFAULT_LIMITS.backoff_base_ms, DEFAULT_LIMITS.backoff_max_ms
    expected = [min(cap, base * 2**i) for i in range(12)]
    assert [peers.backoff_ms(f) for f in range(1, 13)] == expected
    assert expected[-1] == cap and expected[1] == 2 * expected[0]
    assert peers.backoff_ms(10_000) == cap
    with pytest.raises(ValueError):
        peers.backoff_ms(0)


def test_failures_schedule_jittered_backoff_and_success_resets() -> None:
    peers = table()
    peers.add(A, 0)
    now = 1_000_000
    for failures in range(1, 12):
        at = peers.record_failure(A, now)
        delay = peers.backoff_ms(failures)
        assert now + delay - delay // 4 <= at <= now + delay
        assert peers.get(A).state == "failing" and peers.get(A).failures == failures
        assert peers.due(now) == [] and peers.choose_sync_peer(now) is None
        assert peers.due(at) == [peers.get(A)]
        now = at
    assert peers.record_success(A, now) == "healthy"
    assert peers.get(A).failures == 0 and peers.get(A).next_attempt_ms == now


def test_invalid_records_lower_the_score_and_drop_at_the_threshold() -> None:
    limits = DEFAULT_LIMITS
    peers = table()
    peers.add(A, 0)
    steps = (limits.peer_score_start - limits.peer_score_drop_at) // limits.peer_score_invalid_cost
    for i in range(steps - 1):
        assert peers.record_outcomes(A, ["invalid" if i % 2 else "too-large"], 0) is False
    assert peers.get(A).score == limits.peer_score_drop_at + limits.peer_score_invalid_cost
    assert peers.record_outcomes(A, ["invalid"], 0) is True
    peer = peers.get(A)
    assert peer.state == "dropped" and peer.score == limits.peer_score_drop_at
    assert peer.refused == {"invalid": steps // 2, "too-large": (steps - 1) // 2 + (steps - 1) % 2}
    # Dropped: never chosen again, even after a late success.
    peers.record_success(A, 10)
    assert peers.get(A).state == "dropped"
    assert peers.choose_sync_peer(10**9) is None
    assert peers.push_targets(4, 10**9) == []
    assert peers.record_outcomes(A, ["invalid"], 20) is False  # already dropped: reported once


def test_records_of_another_association_cost_score_like_invalid_ones() -> None:
    """PRODUCT.md §3.2: "another association" is an objective fault (the record alone shows it)."""
    assert PENALISED_REASONS == {"invalid", "too-large", "wrong-association"} and PENALISED_REASONS <= REASONS
    limits = DEFAULT_LIMITS
    peers = table()
    peers.add(A, 0)
    steps = (limits.peer_score_start - limits.peer_score_drop_at) // limits.peer_score_invalid_cost
    assert peers.record_outcomes(A, ["wrong-association"] * (steps - 1), 0) is False
    assert peers.get(A).score == limits.peer_score_drop_at + limits.peer_score_invalid_cost
    assert peers.record_outcomes(A, ["wrong-association"], 0) is True
    assert peers.get(A).state == "dropped" and peers.get(A).refused == {"wrong-association": steps}


def test_harmless_reasons_cost_nothing() -> None:
    peers = table()
    peers.add(A, 0)
    harmless = sorted(REASONS - PENALISED_REASONS)
    assert {"missing-reference", "not-a-member", "future", "blocked", "duplicate", "rate-limited"} <= set(harmless)
    peers.record_outcomes(A, harmless * 50 + ["accepted"] * 3, 0)
    peer = peers.get(A)
    assert peer.score == DEFAULT_LIMITS.peer_score_start and peer.state == "new"
    assert peer.records_received == 3 and peer.refused["missing-reference"] == 50
    with pytest.raises(ValueError):
        peers.record_outcomes(A, ["rude"], 0)


def test_dropped_peer_is_not_rediscovered_but_operator_add_revives_it() -> None:
    peers = table()
    peers.add(A, 0)
    peers.record_outcomes(A, ["invalid"] * 10, 0)
    assert peers.get(A).state == "dropped"
    assert peers.discover(A, 5) is False
    assert peers.get(A).state == "dropped"
    revived = peers.add(A, 7)
    assert revived.state == "new" and revived.score == DEFAULT_LIMITS.peer_score_start
    assert peers.choose_sync_peer(7) is revived


def test_discover_bounds_and_self_urls() -> None:
    peers = table(self_urls=[C], max_discovered=1)
    assert peers.discover(C, 0) is False
    with pytest.raises(ValueError):
        peers.add(C, 0)
    assert peers.discover(A, 0) is True
    assert peers.discover(A, 0) is False
    assert peers.discover(B, 0) is False  # over max_discovered
    peers.add(B, 0)  # operators are not bounded
    assert [p.url for p in peers] == [A, B]
    assert peers.get(A).source == "profile" and peers.get(B).source == "operator"
    peers.remove(A)
    assert A not in peers
    with pytest.raises(UnknownPeerError):
        peers.get(A)


def test_sync_choice_is_random_among_due_peers_and_seeded() -> None:
    def picks(seed: int) -> list[str]:
        peers = table(seed)
        for url in (A, B, C):
            peers.add(url, 0)
        peers.record_failure(B, 0)
        return [p.url for p in (peers.choose_sync_peer(10) for _ in range(200)) if p is not None]

    first = picks(3)
    assert set(first) == {A, C}
    assert first == picks(3)
    assert 60 < first.count(A) < 140


def test_push_targets_exclude_sources_and_failing_peers() -> None:
    peers = table()
    urls = [f"https://h{i}.example" for i in range(8)]
    for url in urls:
        peers.add(url, 0)
    peers.record_failure(urls[0], 0)
    peers.record_outcomes(urls[1], ["invalid"] * 10, 0)
    for _ in range(50):
        chosen = peers.push_targets(4, 10, exclude={urls[2]})
        assert len(chosen) == 4 and len(set(chosen)) == 4
        assert not set(chosen) & {urls[0], urls[1], urls[2]}
    assert sorted(peers.push_targets(10, 10)) == sorted(urls[2:])
    assert peers.push_targets(0, 10) == []


def test_sync_delay_is_jittered_within_a_quarter() -> None:
    peers = table(limits=dataclasses.replace(DEFAULT_LIMITS, sync_interval_ms=4000))
    delays = {peers.next_sync_delay_ms() for _ in range(500)}
    assert min(delays) >= 3000 and max(delays) <= 5000 and len(delays) > 100


def test_counters_and_lag() -> None:
    peers = table()
    peers.add(A, 0, hub_id=b"\x01" * 32)
    peers.record_success(A, 50, bytes_in=100, bytes_out=20)
    peers.record_sync(A, 60, need=3)
    peer = peers.get(A)
    assert (peer.bytes_in, peer.bytes_out, peer.last_contact_ms) == (100, 20, 50)
    assert (peer.last_sync_ms, peer.lag) == (60, 3)
    assert peers.next_due_ms() == 50
