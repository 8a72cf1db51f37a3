"""The peer table: who a hub gossips with, how healthy each peer is, and whom to contact next (sans-IO).

PRODUCT.md §3: hubs find each other from configured seed peers and from the peer URLs in members' profiles;
new records are pushed to a few peers at once and pulled by periodic anti-entropy with a random peer. This
module decides *which* peers; it never opens a connection and never reads the clock — every method takes
``now_ms`` and the randomness comes from an injected :class:`random.Random`, so the same code runs in the
deterministic simulation (``federation/sim.py``) and behind the aiohttp driver.

A peer's health is a state machine declared as data (:data:`HEALTH_TRANSITIONS`, STYLE.md "State machines as
data")::

    new ──ok──▶ healthy ◀──ok── failing
     │             │               ▲  │
     └────fail─────┴─────fail──────┘  │fail (backoff doubles, up to Limits.backoff_max_ms)
    any state ──exhausted (score ≤ peer_score_drop_at)──▶ dropped ──add (operator)──▶ new
    any state ──drop (wrong association, a blob that fails its hash…)──▶ dropped

Dropping is an explicit event of that table (:meth:`PeerTable.drop`), with its reason kept in
:attr:`PeerState.drop_reason`; :class:`~federation.node.FederationNode` turns it into a ``DropPeer`` action.
A dropped peer is never chosen again and never re-added from a profile; only an operator's explicit
:meth:`PeerTable.add` revives it. Refusal reasons follow ``protocol.errors.REASONS``: only the objective faults
of PRODUCT.md §3.2 cost score (:data:`PENALISED_REASONS`: ``invalid``, ``too-large``, ``wrong-association``) —
``missing-reference`` means "retry once the referenced record arrives" and
``duplicate``/``blocked``/``rate-limited`` are not the sender's fault.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field

from protocol.errors import REASONS
from protocol.limits import Limits

__all__ = [
    "ACCEPTED",
    "CONTACTABLE_STATES",
    "HEALTH_EVENTS",
    "HEALTH_STATES",
    "HEALTH_TRANSITIONS",
    "PENALISED_REASONS",
    "PUSH_STATES",
    "PeerState",
    "PeerTable",
    "UnknownPeerError",
    "next_health",
]

#: The outcome of an incoming record that was stored; any other outcome is one of ``protocol.errors.REASONS``.
ACCEPTED = "accepted"

#: state -> {event: next state}. An event missing from a state's row leaves the state unchanged: a late reply
#: from a dropped peer ("ok") must not revive it.
HEALTH_TRANSITIONS: dict[str, dict[str, str]] = {
    "new": {"ok": "healthy", "fail": "failing", "exhausted": "dropped", "drop": "dropped", "add": "new"},
    "healthy": {"ok": "healthy", "fail": "failing", "exhausted": "dropped", "drop": "dropped", "add": "healthy"},
    # An operator re-adding a failing peer means "try it now": back to new, backoff cleared.
    "failing": {"ok": "healthy", "fail": "failing", "exhausted": "dropped", "drop": "dropped", "add": "new"},
    "dropped": {"add": "new"},
}
HEALTH_STATES = frozenset(HEALTH_TRANSITIONS)
HEALTH_EVENTS = frozenset(event for row in HEALTH_TRANSITIONS.values() for event in row)

#: States whose peers may be contacted for anti-entropy once their backoff has passed.
CONTACTABLE_STATES = frozenset({"new", "healthy", "failing"})
#: States whose peers receive pushes. "new" is included on purpose: a peer from the config or a profile has
#: not failed yet, and waiting for a first sync before pushing would delay news by up to a sync interval.
#: A failing peer is skipped; anti-entropy catches it up once it answers again.
PUSH_STATES = frozenset({"new", "healthy"})
#: Refusal reasons that cost score: the peer sent something no honest hub would relay — bytes that are not a
#: valid record, over a published limit, or signed for another association (PRODUCT.md §3.2). Each depends on
#: the record alone, never on what the receiver holds yet.
PENALISED_REASONS = frozenset({"invalid", "too-large", "wrong-association"})


class UnknownPeerError(KeyError):
    """A method was called with a URL that is not in the table."""


def next_health(state: str, event: str) -> str:
    """Return the state after ``event`` (unchanged when the table has no such transition).

    Raises:
        ValueError: ``state`` or ``event`` is not in :data:`HEALTH_TRANSITIONS`.
    """
    if state not in HEALTH_TRANSITIONS:
        raise ValueError(f"unknown peer state {state!r}")
    if event not in HEALTH_EVENTS:
        raise ValueError(f"unknown peer event {event!r}")
    return HEALTH_TRANSITIONS[state].get(event, state)


@dataclass(slots=True)
class PeerState:
    """Everything the hub knows about one peer; shown by ``coophub peers list`` and ``status``."""

    url: str
    score: int
    #: "operator" (``coophub peers add``/``join``/config seeds) or "profile" (found in a member's profile).
    source: str = "operator"
    hub_id: bytes | None = None
    state: str = "new"
    #: The last time any exchange with the peer succeeded (None: never).
    last_contact_ms: int | None = None
    #: The last completed anti-entropy session, and how many records we lacked then (0: in sync).
    last_sync_ms: int | None = None
    lag: int | None = None
    #: Consecutive failed contacts; reset by any success.
    failures: int = 0
    #: Not contacted before this time (backoff); 0 means at once.
    next_attempt_ms: int = 0
    records_received: int = 0
    #: reason -> count of records from this peer that we refused.
    refused: dict[str, int] = field(default_factory=dict)
    bytes_in: int = 0
    bytes_out: int = 0
    #: The authenticated session with the peer: "" (none yet), "out:member" / "in:applicant" (open: who
    #: dialed, and the role the responder gave), or "closed:<reason>" (docs/protocol.md §8 close reasons).
    session: str = ""
    #: Why the peer was dropped ("score", "wrong-association", …); "" while it is not dropped.
    drop_reason: str = ""


class PeerTable:
    """The peers of one hub, keyed by URL.

    Every method is a decision over in-memory state: no I/O, no clock. Iteration order is insertion order, so
    a seeded run is replayable (never iterate a ``set`` of URLs: str hashing is randomised per process).
    """

    def __init__(self, limits: Limits, rng: random.Random, *, self_urls: Iterable[str] = (),
                 max_discovered: int = 256) -> None:
        """Create an empty table.

        ``self_urls`` are this hub's own URLs, never added as peers. ``max_discovered`` bounds peers learnt
        from profiles, so a flood of profiles cannot grow the table without limit (operator peers don't
        count).

        Raises:
            ValueError: ``max_discovered`` is negative.
        """
        if max_discovered < 0:
            raise ValueError("max_discovered must be non-negative")
        self._limits = limits
        self._rng = rng
        self._self_urls = frozenset(self_urls)
        self._max_discovered = max_discovered
        self._peers: dict[str, PeerState] = {}

    # -- membership of the table -----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._peers)

    def __contains__(self, url: object) -> bool:
        return url in self._peers

    def __iter__(self) -> Iterator[PeerState]:
        return iter(list(self._peers.values()))

    def get(self, url: str) -> PeerState:
        """Return the state of one peer.

        Raises:
            UnknownPeerError: ``url`` is not in the table.
        """
        try:
            return self._peers[url]
        except KeyError:
            raise UnknownPeerError(url) from None

    def add(self, url: str, now_ms: int, *, hub_id: bytes | None = None) -> PeerState:
        """Add a peer on an operator's say-so (``peers add``, ``join``, configured seeds).

        An existing peer keeps its counters; a dropped or failing one is revived as "new" with a fresh score
        and no backoff, because the operator explicitly asked for it.

        Raises:
            ValueError: ``url`` is empty or one of this hub's own URLs.
        """
        self._check_url(url)
        peer = self._peers.get(url)
        if peer is None:
            peer = PeerState(url=url, score=self._limits.peer_score_start, hub_id=hub_id,
                             next_attempt_ms=now_ms)
            self._peers[url] = peer
            return peer
        peer.source = "operator"
        if hub_id is not None:
            peer.hub_id = hub_id
        before = peer.state
        peer.state = next_health(peer.state, "add")
        if before != peer.state:
            peer.drop_reason = ""
            peer.score = self._limits.peer_score_start
            peer.failures = 0
            peer.next_attempt_ms = now_ms
        return peer

    def discover(self, url: str, now_ms: int, *, hub_id: bytes | None = None) -> bool:
        """Learn a peer URL from a member's profile; return True when it was new to the table.

        A dropped peer stays dropped (only :meth:`add` revives it); own URLs and URLs beyond
        ``max_discovered`` profile peers are ignored.

        Raises:
            ValueError: ``url`` is empty.
        """
        if not url:
            raise ValueError("a peer URL must not be empty")
        if url in self._self_urls:
            return False
        peer = self._peers.get(url)
        if peer is not None:
            if hub_id is not None and peer.hub_id is None:
                peer.hub_id = hub_id
            return False
        if sum(1 for p in self._peers.values() if p.source == "profile") >= self._max_discovered:
            return False
        self._peers[url] = PeerState(url=url, score=self._limits.peer_score_start, source="profile",
                                     hub_id=hub_id, next_attempt_ms=now_ms)
        return True

    def remove(self, url: str) -> None:
        """Forget a peer entirely (an operator's ``peers remove``); a profile may re-add it later.

        Raises:
            UnknownPeerError: ``url`` is not in the table.
        """
        if url not in self._peers:
            raise UnknownPeerError(url)
        del self._peers[url]

    def _check_url(self, url: str) -> None:
        if not url:
            raise ValueError("a peer URL must not be empty")
        if url in self._self_urls:
            raise ValueError(f"{url} is this hub's own URL")

    # -- events ----------------------------------------------------------------------------------------------

    def record_success(self, url: str, now_ms: int, *, bytes_in: int = 0, bytes_out: int = 0) -> str:
        """A request to or from the peer succeeded; return its new health state.

        Raises:
            UnknownPeerError: ``url`` is not in the table.
        """
        peer = self.get(url)
        peer.state = next_health(peer.state, "ok")
        peer.bytes_in += bytes_in
        peer.bytes_out += bytes_out
        if peer.state != "dropped":
            peer.last_contact_ms = now_ms
            peer.failures = 0
            peer.next_attempt_ms = now_ms
        return peer.state

    def record_failure(self, url: str, now_ms: int, *, bytes_out: int = 0) -> int:
        """A request to the peer failed (refused, timed out, 5xx); return when it may be tried again.

        The wait doubles with each consecutive failure, from ``backoff_base_ms`` up to ``backoff_max_ms``,
        less up to a quarter of random jitter so that hubs which lost the same peer don't all retry in step.

        Raises:
            UnknownPeerError: ``url`` is not in the table.
        """
        peer = self.get(url)
        peer.bytes_out += bytes_out
        peer.state = next_health(peer.state, "fail")
        if peer.state == "dropped":
            return peer.next_attempt_ms
        peer.failures += 1
        delay = self.backoff_ms(peer.failures)
        peer.next_attempt_ms = now_ms + delay - self._rng.randint(0, delay // 4)
        return peer.next_attempt_ms

    def backoff_ms(self, failures: int) -> int:
        """The backoff before jitter after ``failures`` consecutive failures: base · 2^(failures−1), capped.

        Raises:
            ValueError: ``failures`` is below 1.
        """
        if failures < 1:
            raise ValueError("backoff needs at least one failure")
        base, cap = self._limits.backoff_base_ms, self._limits.backoff_max_ms
        # Cap the exponent as well as the result: 2**failures of a peer down for a year would be a huge int.
        return min(cap, base << min(failures - 1, 62))

    def record_outcomes(self, url: str, outcomes: Iterable[str], now_ms: int) -> bool:
        """Count the outcomes of records the peer sent (``"accepted"`` or a refusal reason); True if it was
        dropped by this call.

        Each refusal in :data:`PENALISED_REASONS` costs ``peer_score_invalid_cost``; at or below
        ``peer_score_drop_at`` the peer is dropped. Other reasons are counted but cost nothing.

        Raises:
            UnknownPeerError: ``url`` is not in the table.
            ValueError: an outcome is neither ``"accepted"`` nor one of ``protocol.errors.REASONS``.
        """
        peer = self.get(url)
        cost = 0
        for outcome in outcomes:
            if outcome == ACCEPTED:
                peer.records_received += 1
                continue
            if outcome not in REASONS:
                raise ValueError(f"unknown record outcome {outcome!r}")
            peer.refused[outcome] = peer.refused.get(outcome, 0) + 1
            if outcome in PENALISED_REASONS:
                cost += self._limits.peer_score_invalid_cost
        if cost == 0 or peer.state == "dropped":
            return False
        peer.score -= cost
        if peer.score > self._limits.peer_score_drop_at:
            return False
        return self._drop(peer, "exhausted", "score")

    def drop(self, url: str, reason: str) -> bool:
        """Drop the peer for a fault other than its score (``reason``, e.g. "wrong-association"); True when
        this call dropped it (False: it was dropped already). Only an operator's :meth:`add` revives it.

        Raises:
            UnknownPeerError: ``url`` is not in the table.
            ValueError: ``reason`` is empty.
        """
        if not reason:
            raise ValueError("a drop needs a reason")
        return self._drop(self.get(url), "drop", reason)

    def _drop(self, peer: PeerState, event: str, reason: str) -> bool:
        if peer.state == "dropped":
            return False
        peer.state = next_health(peer.state, event)
        peer.drop_reason = reason
        return True

    def record_sync(self, url: str, now_ms: int, *, need: int) -> None:
        """An anti-entropy session with the peer completed; ``need`` is how many records we lacked (the lag).

        Raises:
            UnknownPeerError: ``url`` is not in the table.
        """
        peer = self.get(url)
        peer.last_sync_ms = now_ms
        peer.lag = need

    def set_hub_id(self, url: str, hub_id: bytes) -> None:
        """Remember the hub id a peer proved (from its ``/fed/v1/info`` or signed profile).

        Raises:
            UnknownPeerError: ``url`` is not in the table.
        """
        self.get(url).hub_id = hub_id

    # -- decisions -------------------------------------------------------------------------------------------

    def due(self, now_ms: int) -> list[PeerState]:
        """Peers that may be contacted for anti-entropy now: not dropped and out of backoff."""
        return [p for p in self._peers.values()
                if p.state in CONTACTABLE_STATES and p.next_attempt_ms <= now_ms]

    def choose_sync_peer(self, now_ms: int) -> PeerState | None:
        """Pick the peer for the next anti-entropy session, uniformly among :meth:`due`; None if none."""
        candidates = self.due(now_ms)
        if not candidates:
            return None
        return candidates[self._rng.randrange(len(candidates))]

    def push_targets(self, k: int, now_ms: int, exclude: Collection[str] = ()) -> list[str]:
        """Choose up to ``k`` peers to push a record to: random among healthy and new peers out of backoff,
        never one in ``exclude`` (the record's source and peers known to have it).

        Raises:
            ValueError: ``k`` is negative.
        """
        if k < 0:
            raise ValueError("fan-out must be non-negative")
        if k == 0:
            return []
        candidates = [p.url for p in self._peers.values()
                      if p.state in PUSH_STATES and p.next_attempt_ms <= now_ms and p.url not in exclude]
        if len(candidates) <= k:
            return candidates
        return self._rng.sample(candidates, k)

    def next_sync_delay_ms(self) -> int:
        """How long to wait before the next anti-entropy session: ``sync_interval_ms`` ± 25 % jitter, so that
        hubs started together drift apart instead of syncing in lockstep."""
        interval = self._limits.sync_interval_ms
        return interval + self._rng.randint(-(interval // 4), interval // 4)

    def next_due_ms(self) -> int | None:
        """The earliest time any contactable peer leaves backoff (None when no peer can be contacted)."""
        times = [p.next_attempt_ms for p in self._peers.values() if p.state in CONTACTABLE_STATES]
        return min(times) if times else None
