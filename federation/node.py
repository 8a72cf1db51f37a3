"""The federation node of one hub (sans-IO): every decision federation makes, with events and ``now`` in and
actions out.

The node owns the peer table (:class:`~federation.peers.PeerTable`: health, backoff, score, dropping), push
gossip (:class:`~federation.gossip.Gossip`: which peers to push to, never the one a record came from), the
per-peer outbox that coalesces announced ids for ``Limits.session_batch_ms`` (or ``push_batch`` ids), the
anti-entropy schedule (when to reconcile, and with whom; catch up instead while this hub has no charter), the
skip sets (ids refused as ``blocked``, skipped until membership changes; (peer, id) pairs refused as an
objective fault, never fetched from that peer again) and the peers an operator configured. It never does I/O
and never reads the clock: the driver (``federation/driver.py``, aiohttp) and the simulation
(``federation/sim.py``) feed it the same events and perform the same actions, so what the simulation
measures is what production runs.

Events (methods, each taking ``now_ms`` where time matters) and the actions they return::

    start / tick                -> SendAnnounce (an outbox is due), RetryDeferred + StartSync (a sync is due)
    local_stored                -> (queued; SendAnnounce at the next tick after session_batch_ms)
    records_received            -> DropPeer (score ran out), RefreshMembership (something was accepted);
                                   relays of records their author pushed are held AUTHOR_RELAY_DELAY_MS
    want_candidates / promise   -> (which announced ids to ask for, WANT_PROMISE_MS)
    dial_due / dial_finished    -> OpenSession (a known peer has no session yet)
    records_landed              -> RefreshMembership (deferred records the store took in later are relayed)
    push_finished               -> SendAnnounce (the rest of that peer's outbox, at once)
    sync_finished               -> DropPeer (wrong association), SavePeers (a scheduled round ended)
    offer                       -> SendRecords (the session proved the peer lacks them)
    membership                  -> ReviewRoles (a member was added), DiscoverPeers (a member or a profile)
    configured / peer_added / peer_removed -> ClosePeer (the operator removed it)
    blob_mismatch               -> DropPeer
    session_opened / session_closed / inbound_contact  (peer-table bookkeeping, no action)

The driver calls :meth:`FederationNode.tick` at :meth:`FederationNode.next_deadline_ms` (a timer), and
reports the end of every action it performed (``push_finished``, ``sync_finished``), so nothing here waits.
"""

from __future__ import annotations

import contextlib
import random
from collections import Counter, OrderedDict
from collections.abc import Iterable
from typing import TypeVar

from protocol.errors import DEFERRED_REASONS
from protocol.identity import format_hub_id
from protocol.limits import Limits

from .actions import (
    ClosePeer,
    DiscoverPeers,
    DropPeer,
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
from .gossip import DEFAULT_SEEN_CAPACITY, Gossip, GossipAction, PeerDropped, PushAction
from .peers import ACCEPTED, CONTACTABLE_STATES, PENALISED_REASONS, PeerTable

__all__ = ["AUTHOR_RELAY_DELAY_MS", "BURST_SPACING", "DIAL_AT_ONCE", "REFUSED_SKIP_CAPACITY", "ClosePeer",
           "DiscoverPeers", "DropPeer", "FederationNode", "NodeAction", "OpenSession", "RefreshMembership",
           "RetryDeferred", "ReviewRoles", "SavePeers", "SendAnnounce", "SendRecords", "StartSync"]

#: (peer, record id) pairs whose record that peer sent and we refused as an objective fault: never fetched
#: from that peer again (a bounded LRU; an evicted pair costs one more fetch, scored again).
REFUSED_SKIP_CAPACITY = 10_000
#: Ids refused as ``blocked`` (an applicant's records, a blocked author), skipped in fetches until membership
#: changes; bounded so a peer offering millions of them cannot grow it without limit.
BLOCKED_SKIP_CAPACITY = 10_000
#: A peer sent a batch less than this many ``session_batch_ms`` ago is in a burst: its next batch waits until that
#: long after the last one (50 ms by default), so a burst of records published one by one leaves in a few frames
#: per peer rather than one or two per record; after a quiet spell a record still goes after session_batch_ms.
BURST_SPACING = 10
#: Records pushed by their author's own hub are relayed this much later than others. That hub pushes what it
#: signs to every peer it holds a session with (:meth:`FederationNode.local_stored`), so by then they hold it
#: and the relays' announces are answered from memory; relayed at once, they raced the author's own pushes to
#: hubs that were a little behind, which then received the record twice (a quarter of all pushes in a burst on
#: 10 hubs, bench/burst_bench.py). The relays still reach any hub the author could not.
AUTHOR_RELAY_DELAY_MS = 1_000
#: At most this many ids are remembered as signed here lately (pushed unasked).
AUTHORED_CAPACITY = 2_000
#: Sessions :meth:`FederationNode.dial_due` opens at once (each handshake signs and verifies): a new hub that
#: learns 30 peers from their profiles opens them over a few seconds rather than all at once.
DIAL_AT_ONCE = 4
#: After a failed dial, the next waits this long, doubling up to DIAL_MAX_MS. This is apart from the peer's
#: backoff (kept by pushes and anti-entropy): a hub started a moment after us is not failing.
DIAL_RETRY_MS = 1_000
DIAL_MAX_MS = 60_000
K = TypeVar("K")


class FederationNode:
    """Everything one hub decides about federation, over in-memory state only."""

    def __init__(self, limits: Limits, rng: random.Random, *, self_urls: Iterable[str] = (),
                 seen_capacity: int = DEFAULT_SEEN_CAPACITY, stats: Counter[str] | None = None) -> None:
        """Create a node with an empty peer table; nothing is scheduled until :meth:`start`.

        ``stats`` is the counter the node adds its figures to (the driver shares one with its own).

        Raises:
            ValueError: ``seen_capacity`` is below 1 or ``limits.push_batch`` is 0.
        """
        self.limits = limits
        self.rng = rng
        self.peers = PeerTable(limits, rng, self_urls=self_urls)
        self.gossip = Gossip(self.peers, limits, seen_capacity=seen_capacity)
        self.stats: Counter[str] = Counter() if stats is None else stats
        #: Whether this hub has a charter: until it has, a sync is a catch-up (paging), not a reconciliation.
        self.joined = True
        self._skip: OrderedDict[bytes, None] = OrderedDict()  # see BLOCKED_SKIP_CAPACITY
        self._refused: OrderedDict[tuple[str, bytes], None] = OrderedDict()  # see REFUSED_SKIP_CAPACITY
        self._outbox: dict[str, dict[bytes, None]] = {}  # peer -> ids to announce, coalesced, in order
        self._flush_at: dict[str, int] = {}  # peer -> when its outbox is announced
        self._pushing: set[str] = set()  # peers with an announce in flight (one at a time per peer)
        self._last_batch: dict[str, int] = {}  # peer -> when its last batch left (BURST_SPACING)
        self._held: dict[str, dict[bytes, int]] = {}  # peer -> relays held back, id -> due (AUTHOR_RELAY_DELAY_MS)
        self._authored: OrderedDict[bytes, None] = OrderedDict()  # ids signed here lately: pushed unasked
        self._promised: OrderedDict[bytes, int] = OrderedDict()  # ids asked of a peer -> when (WANT_PROMISE_MS)
        self._dialing: set[str] = set()  # URLs an OpenSession is out for
        self._dial_after: dict[str, tuple[int, int]] = {}  # url -> (when to dial it again, the last wait)
        self._next_sync_ms: int | None = None
        self._syncing: str | None = None
        self._members = -1
        self._profiles = -1
        self._configured: list[str] | None = None

    # -- time ------------------------------------------------------------------------------------------------

    def start(self, now_ms: int, *, first_sync_ms: int | None = None) -> list[NodeAction]:
        """Begin the anti-entropy schedule: the first round one jittered interval from now (or at
        ``first_sync_ms``, the simulation's random phase)."""
        self._next_sync_ms = now_ms + self.peers.next_sync_delay_ms() if first_sync_ms is None else first_sync_ms
        return []

    def next_deadline_ms(self) -> int | None:
        """When :meth:`tick` next has something to do (None: nothing is scheduled)."""
        times = list(self._flush_at.values())
        times.extend(next(iter(held.values())) for held in self._held.values() if held)
        if self._next_sync_ms is not None and self._syncing is None:
            times.append(self._next_sync_ms)
        return min(times) if times else None

    def tick(self, now_ms: int) -> list[NodeAction]:
        """Time passed: announce the outboxes that are due, and start the anti-entropy round if it is due
        (retrying deferred records first, whether or not a peer can be contacted)."""
        actions: list[NodeAction] = []
        for peer, held in list(self._held.items()):
            due = [i for i, t in held.items() if t <= now_ms]  # in order: every id is held equally long
            for i in due:
                del held[i]
            if not held:
                del self._held[peer]
            if due and peer in self.peers and not self.is_dropped(peer):
                self._queue(peer, due, now_ms)
        for peer in [p for p, t in self._flush_at.items() if t <= now_ms]:
            del self._flush_at[peer]
            actions.extend(self._next_batch(peer, now_ms))
        if self._syncing is None and self._next_sync_ms is not None and self._next_sync_ms <= now_ms:
            actions.append(RetryDeferred(now_ms))
            chosen = self.peers.choose_sync_peer(now_ms)
            if chosen is None:
                self._next_sync_ms = now_ms + self.peers.next_sync_delay_ms()
            else:
                self._syncing = chosen.url
                actions.append(StartSync(chosen.url, catch_up=not self.joined))
        return actions

    # -- records in ------------------------------------------------------------------------------------------

    def local_stored(self, record_ids: Iterable[bytes], now_ms: int, *, signed_here: bool = False) -> list[NodeAction]:
        """This hub stored records it published (API, CLI, import): push them to ``push_fanout`` peers.

        ``signed_here``: signed by this hub just now (API, CLI), so no peer can hold them. They go unasked
        (:attr:`SendAnnounce.unasked`) to every peer this hub holds a session with, not only to ``push_fanout``
        of them: one hop to each hub it reaches, instead of a random walk that missed a hub for about one
        record in a hundred (which then waited for anti-entropy), for the same bytes — each hub receives the
        record once either way. Peers relay them as usual (held AUTHOR_RELAY_DELAY_MS, then announced and
        answered from memory), so a hub this one has no session with still hears of them.
        """
        actions: list[GossipAction] = []
        ids = list(record_ids)
        for record_id in ids:
            pushes = self.gossip.on_local_record(record_id, now_ms)
            if signed_here and pushes:
                _remember(self._authored, record_id, AUTHORED_CAPACITY)
                pushes = self._to_every_session(record_id, pushes, now_ms)
            actions.extend(pushes)
        out = self._gossip_actions(actions, now_ms)
        if ids:
            out.append(RefreshMembership())  # a profile published here may name new peer URLs
        return out

    def _meshed(self) -> bool:
        """Whether this hub holds a session with every other member (the store's member count, once known)."""
        sessions = {p.hub_id or p.url for p in self.peers if _session_open(p.session)}
        return self._members > 1 and len(sessions) >= self._members - 1

    def _to_every_session(self, record_id: bytes, pushes: list[PushAction], now_ms: int) -> list[PushAction]:
        chosen = {a.peer for a in pushes}
        reached = {self.peers.get(p).hub_id for p in chosen if p in self.peers} - {None, b""}
        others = []
        for key in self.peers.push_targets(len(self.peers), now_ms, exclude=chosen):
            state = self.peers.get(key)
            if not _session_open(state.session) or (state.hub_id and state.hub_id in reached):
                continue  # no session (dialing one for this is not worth it), or a hub sent to under another key
            if state.hub_id:
                reached.add(state.hub_id)
            others.append(key)
        self.gossip.seen.add(record_id, *others)
        return [*pushes, *(PushAction(key, (record_id,)) for key in others)]

    def records_received(self, peer: str, outcomes: Iterable[tuple[bytes, str]], now_ms: int, *,
                         relay: bool = True, score: bool = True, from_author: bool = False) -> list[NodeAction]:
        """Records from ``peer`` were ingested: ``outcomes`` pairs each id with "accepted", "duplicate" or the
        reason ingest refused or deferred it (``protocol.errors.REASONS``).

        Objective faults (``invalid``, ``too-large``, ``wrong-association``) cost ``peer`` score (only when
        ``score``: the sender is proven) and are never fetched from it again; deferred reasons (``future``,
        ``missing-reference``, ``not-a-member``) cost nothing — the store holds the record and retries it;
        ``blocked`` ids are skipped until membership changes. New accepted records are relayed (unless
        ``relay`` is False: a catch-up), never back to ``peer``; ``from_author``: ``peer`` is the hub that
        signed them all, which sent them to every hub it has a session with, so their relays are held back
        AUTHOR_RELAY_DELAY_MS if this hub holds a session with every other member (as in an association of up
        to ``max_sessions // 2`` members; in a sparser one, holding them would slow every later hop).
        """
        pairs = list(outcomes)
        box, held = self._outbox.get(peer), self._held.get(peer)
        for record_id, outcome in pairs:
            if not record_id:
                continue
            if (box or held) and outcome in (ACCEPTED, "duplicate"):
                # queued for it, but it holds the record: don't announce it there
                if box:
                    box.pop(record_id, None)
                if held:
                    held.pop(record_id, None)
            if outcome == "blocked":
                _remember(self._skip, record_id, BLOCKED_SKIP_CAPACITY)
            elif outcome in PENALISED_REASONS:
                _remember(self._refused, (peer, record_id), REFUSED_SKIP_CAPACITY)
            elif outcome in DEFERRED_REASONS:
                self.stats["records_deferred"] += 1
        accepted = sum(1 for _, o in pairs if o == ACCEPTED)
        self.stats["records_in"] += accepted
        actions = self._gossip_actions(
            self.gossip.on_records_received(peer, pairs, now_ms, relay=relay, score=score), now_ms,
            hold_ms=AUTHOR_RELAY_DELAY_MS if from_author and self._meshed() else 0)
        if accepted:
            actions.append(RefreshMembership())
        return actions

    def records_landed(self, source: str, record_ids: Iterable[bytes], now_ms: int) -> list[NodeAction]:
        """Records the store deferred were accepted later (their reference arrived, their time came, their
        author was admitted): relay them like news, never to ``source``, and never score anyone for them."""
        ids = list(record_ids)
        if not ids:
            return []
        self.stats["deferred_landed"] += len(ids)
        outcomes = [(i, ACCEPTED) for i in ids]
        actions = self._gossip_actions(self.gossip.on_records_received(source, outcomes, now_ms, score=False),
                                       now_ms)
        actions.append(RefreshMembership())
        return actions

    def want_candidates(self, peer: str, record_ids: Iterable[bytes], now_ms: int) -> list[bytes]:
        """Of ids ``peer`` announced, those worth asking for (``Gossip.want_candidates``); the driver leaves out
        what the store holds or is ingesting, then calls :meth:`promise`. ``peer`` holds them all: none is
        announced to it from its outbox any more."""
        ids = list(dict.fromkeys(record_ids))
        for queue in (self._outbox.get(peer), self._held.get(peer)):
            if queue:
                for record_id in ids:
                    queue.pop(record_id, None)
        return self.gossip.want_candidates(ids, now_ms)

    def promise(self, record_ids: Iterable[bytes], now_ms: int) -> list[bytes]:
        """This hub asks one peer for these ids (``Gossip.promise``)."""
        return self.gossip.promise(record_ids, now_ms)

    def fetch_filter(self, peer: str, record_ids: Iterable[bytes]) -> list[bytes]:
        """Of ids an anti-entropy session with ``peer`` found we lack, those worth fetching from it: not
        refused as ``blocked`` (until membership changes), and never an id this peer sent us and we refused."""
        return [i for i in record_ids if i not in self._skip and (peer, i) not in self._refused]

    def membership(self, members: int, profiles: int) -> list[NodeAction]:
        """The store's member and profile counts after records were stored: a new member lifts the skip of
        blocked ids (they may be accepted now); a new member or profile may name new peer URLs."""
        actions: list[NodeAction] = []
        if members != self._members:
            self._skip.clear()
            actions.append(ReviewRoles())
        if (members, profiles) == (self._members, self._profiles):
            return actions
        self._members, self._profiles = members, profiles
        return [*actions, DiscoverPeers()]

    def discovered(self, urls: Iterable[str], now_ms: int) -> list[NodeAction]:
        """Peer URLs read from members' current profiles (PRODUCT.md §3): learn the new ones."""
        for url in urls:
            with contextlib.suppress(ValueError):
                self.peers.discover(url.rstrip("/"), now_ms)
        return []

    # -- records out -----------------------------------------------------------------------------------------

    def push_finished(self, peer: str, record_ids: Iterable[bytes], delivered: bool, now_ms: int, *,
                      announced: bool = True, bytes_out: int = 0) -> list[NodeAction]:
        """A :class:`SendAnnounce` (or, ``announced=False``, a :class:`SendRecords`) to ``peer`` ended;
        ``delivered`` is whether the peer answered. After an announce, the rest of its outbox goes at once."""
        self.gossip.on_push_result(peer, record_ids, delivered, now_ms, bytes_out=bytes_out)
        if not announced:
            return []
        self._pushing.discard(peer)
        if not self._outbox.get(peer):
            self._outbox.pop(peer, None)
            return []
        return self._next_batch(peer, now_ms)

    def queued(self, peer: str) -> int:
        """How many ids wait in ``peer``'s outbox (``peers list`` shows it)."""
        return len(self._outbox.get(peer, ()))

    def pushes_pending(self) -> bool:
        """Whether any announce is queued or in flight (a one-shot ``coophub sync`` waits for them)."""
        return bool(self._flush_at or self._pushing)

    def offer(self, peer: str, record_ids: Iterable[bytes]) -> list[NodeAction]:
        """An anti-entropy session with ``peer`` proved it lacks these records: push them, unannounced."""
        ids = tuple(record_ids)
        if not ids or self.is_dropped(peer):
            return []
        self.gossip.mark_known(peer, ids)
        return [SendRecords(peer, ids)]

    def _gossip_actions(self, actions: Iterable[GossipAction], now_ms: int, *, hold_ms: int = 0) -> list[NodeAction]:
        out: list[NodeAction] = []
        for action in actions:
            if isinstance(action, PushAction) and hold_ms:
                held = self._held.setdefault(action.peer, {})
                for record_id in action.record_ids:
                    held.setdefault(record_id, now_ms + hold_ms)
            elif isinstance(action, PushAction):
                self._queue(action.peer, action.record_ids, now_ms)
            elif isinstance(action, PeerDropped):
                out.extend(self._dropped(action.peer))
        return out

    def _queue(self, peer: str, ids: Iterable[bytes], now_ms: int) -> None:
        """Coalesce ids for ``peer``: one announce per ``session_batch_ms`` (or per ``push_batch`` ids)."""
        box = self._outbox.setdefault(peer, {})
        box.update(dict.fromkeys(ids))
        if peer not in self._pushing and peer not in self._flush_at:
            batch = self.limits.session_batch_ms
            at = now_ms + batch
            last = self._last_batch.get(peer)
            if last is not None and now_ms - last < batch * BURST_SPACING:
                at = max(at, last + batch * BURST_SPACING)  # in a burst: BURST_SPACING
            self._flush_at[peer] = at

    def _next_batch(self, peer: str, now_ms: int) -> list[NodeAction]:
        box = self._outbox.get(peer)
        if not box or self.is_dropped(peer) or peer not in self.peers:
            # Dropped or removed since these were queued: send it nothing more.
            self._outbox.pop(peer, None)
            return []
        ids = list(box)[:self.limits.push_batch]
        for i in ids:
            del box[i]
        self._pushing.add(peer)
        self._last_batch[peer] = now_ms
        authored = self._authored
        return [SendAnnounce(peer, tuple(i for i in ids if i not in authored),
                             tuple(i for i in ids if i in authored))]

    # -- anti-entropy ----------------------------------------------------------------------------------------

    def sync_finished(self, peer: str, now_ms: int, *, ok: bool, need: int | None = None,
                      need_ids: Iterable[bytes] = (), close_reason: str = "", bytes_in: int = 0,
                      bytes_out: int = 0) -> list[NodeAction]:
        """An anti-entropy session (or catch-up) with ``peer`` ended: ``ok`` with ``need`` records we lacked
        (None: a catch-up or a session that did not finish), or failed (``close_reason``: why the peer closed
        the session). A peer of another association is dropped; any other failure backs off. ``need_ids``
        are ids the peer showed it holds (never pushed back to it). The next scheduled round is one jittered
        interval after a scheduled one ends."""
        actions: list[NodeAction] = []
        if peer in self.peers:
            if ok:
                self.peers.record_success(peer, now_ms, bytes_in=bytes_in, bytes_out=bytes_out)
                if need is not None:
                    self.peers.record_sync(peer, now_ms, need=need)
                self.gossip.mark_known(peer, need_ids)
            elif close_reason == "wrong-association":
                if self.peers.drop(peer, "wrong-association"):
                    actions.extend(self._dropped(peer))
            else:
                self.peers.record_failure(peer, now_ms)
        if peer == self._syncing:
            self._syncing = None
            self._next_sync_ms = now_ms + self.peers.next_sync_delay_ms()
            actions.append(SavePeers())
        return actions

    # -- peers -----------------------------------------------------------------------------------------------

    def is_dropped(self, peer: str) -> bool:
        """Whether ``peer`` is in the table and dropped."""
        return peer in self.peers and self.peers.get(peer).state == "dropped"

    def blob_peers(self, author: bytes, limit: int) -> list[str]:
        """The peers to ask for a blob, in order: the hub of the guide that names it first (it surely has
        it), then healthy ones; at most ``limit``, so one download costs a bounded number of requests."""
        peers = sorted((p for p in self.peers if p.state in CONTACTABLE_STATES),
                       key=lambda p: (p.hub_id != author, p.state != "healthy"))
        return [p.url for p in peers[:limit]]

    def blob_mismatch(self, peer: str, now_ms: int) -> list[NodeAction]:
        """``peer`` sent a blob whose hash is not the one asked for: provably wrong bytes, scored like an
        invalid record (we dialed it, so the sender is known)."""
        if peer in self.peers and self.peers.record_outcomes(peer, ["invalid"], now_ms):
            return self._dropped(peer)
        return []

    def _dropped(self, peer: str) -> list[NodeAction]:
        state = self.peers.get(peer)
        self.stats["peers_dropped"] += 1
        self._forget_queues(peer)
        return [DropPeer(peer, state.drop_reason or "score", state.score)]

    def peer_added(self, url: str, now_ms: int) -> list[NodeAction]:
        """An operator added a peer while serving: try it at once (the next round starts now).

        Raises:
            ValueError: ``url`` is empty or this hub's own.
        """
        self.peers.add(url.rstrip("/"), now_ms)
        if self._syncing is None and self._next_sync_ms is not None:  # started, and no round is running
            self._next_sync_ms = now_ms
        return []

    def peer_removed(self, url: str) -> list[NodeAction]:
        """An operator removed a peer while serving: forget it and close its session."""
        url = url.rstrip("/")
        if url in self.peers:
            self.peers.remove(url)
        self._forget_queues(url)
        self._dial_after.pop(url, None)
        return [ClosePeer(url)]

    def _forget_queues(self, peer: str) -> None:
        self._outbox.pop(peer, None)
        self._flush_at.pop(peer, None)
        self._held.pop(peer, None)
        self._last_batch.pop(peer, None)

    def configured(self, urls: Iterable[str], now_ms: int) -> list[NodeAction]:
        """The peers of config.toml, read at start and whenever the file changes: the first call adds them
        all; later calls add those an operator added (``coophub peers add``) and remove those removed."""
        now = list(dict.fromkeys(u.rstrip("/") for u in urls))
        if self._configured is None:
            self._configured = now
            for url in now:
                with contextlib.suppress(ValueError):
                    self.peers.add(url, now_ms)
            return []
        actions: list[NodeAction] = []
        before = set(self._configured)
        for url in sorted(set(now) - before):
            with contextlib.suppress(ValueError):
                actions.extend(self.peer_added(url, now_ms))
        for url in sorted(before - set(now)):
            actions.extend(self.peer_removed(url))
        self._configured = now
        return actions

    def dial_due(self, now_ms: int) -> list[NodeAction]:
        """Sessions to open now: to each contactable peer URL that has none (and whose hub has none under
        another key), at most DIAL_AT_ONCE dials at a time, retried after failures with their own backoff
        (DIAL_RETRY_MS doubling to DIAL_MAX_MS). The driver calls this every second and when a session opens.

        A hub holds one session per peer (PRODUCT.md §3.1), opened before records need it: otherwise the
        first push or anti-entropy round to each peer paid for a handshake, and a peer that dialed us first
        (filed as ``session:<hub id>`` until we dial its URL and learn who is there) was held twice, so one
        record could be pushed to it twice. At most half of ``max_sessions`` are dialed: the rest is left
        for peers that dial us.
        """
        states = list(self.peers)
        open_now = [p for p in states if _session_open(p.session)]
        if len(open_now) + len(self._dialing) >= self.limits.max_sessions // 2:
            return []
        connected = {p.hub_id for p in open_now if p.hub_id}
        actions: list[NodeAction] = []
        for peer in states:
            if len(self._dialing) >= DIAL_AT_ONCE:
                break
            if (peer.url in self._dialing or not peer.url.startswith(("http://", "https://"))
                    or peer.state not in ("new", "healthy") or _session_open(peer.session)
                    or (peer.hub_id and peer.hub_id in connected)
                    or self._dial_after.get(peer.url, (0, 0))[0] > now_ms):
                continue
            self._dialing.add(peer.url)
            actions.append(OpenSession(peer.url))
        return actions

    def dial_finished(self, url: str, ok: bool, now_ms: int) -> None:
        """An :class:`OpenSession` ended: the session is up (``ok``), or the next dial waits (doubling)."""
        self._dialing.discard(url)
        if ok:
            self._dial_after.pop(url, None)
            return
        _, wait = self._dial_after.get(url, (0, DIAL_RETRY_MS // 2))
        wait = min(DIAL_MAX_MS, wait * 2)
        self._dial_after[url] = (now_ms + wait, wait)

    def hub_dropped(self, hub_id: bytes) -> bool:
        """Whether a peer that proved ``hub_id`` was dropped: its new sessions are refused ("dropped")."""
        return any(p.hub_id == hub_id and p.state == "dropped" for p in self.peers)

    def inbound_peer(self, hub_id: bytes, role: str, now_ms: int, claimed_url: str = "") -> str:
        """The peer-table key of an inbound session from ``hub_id``: the entry that proved that key, else
        ``session:<hub id>`` — added to the table when the peer is a member, so it can be scored, pushed to
        and dropped while the session lasts.

        The URL the initiator claims is never dialed on its word: it may be one a partition or a proxy does
        not route, or another hub's; URLs to dial come from the operator and from members' signed profiles.
        But when it is one of those, not reached yet (that hub started after our last try), its dial waits no
        longer (:meth:`dial_due`) if a member claims it — a stranger's claim changes nothing — and the key
        proved there tells whether it is this hub.
        """
        for peer in self.peers:
            if peer.hub_id == hub_id:
                return peer.url
        key = f"session:{format_hub_id(hub_id)}"
        if role == "member" and key not in self.peers:
            self.peers.discover(key, now_ms, hub_id=hub_id)
        claimed_url = claimed_url.rstrip("/")
        if role == "member" and claimed_url in self.peers and not self.peers.get(claimed_url).hub_id:
            self._dial_after.pop(claimed_url, None)
        return key

    def outbound_proved(self, url: str, hub_id: bytes) -> None:
        """A session we dialed to ``url`` proved ``hub_id``: remember it, and merge the ``session:`` entry the
        same hub had when it reached us first (now we know its URL; a drop carries over)."""
        if url not in self.peers:
            return
        self.peers.set_hub_id(url, hub_id)
        alias = f"session:{format_hub_id(hub_id)}"
        if alias in self.peers and alias != url:
            old = self.peers.get(alias)
            if old.state == "dropped":
                self.peers.drop(url, old.drop_reason or "score")
            self.peers.remove(alias)

    def session_opened(self, peer: str, direction: str, role: str, now_ms: int) -> None:
        """A session with ``peer`` is up (``direction`` "in"/"out", the ``role`` the responder gave)."""
        if peer in self.peers:
            state = self.peers.get(peer)
            state.session = f"{direction}:{role}"
            if state.state != "dropped":
                self.peers.record_success(peer, now_ms)

    def session_closed(self, peer: str, reason: str) -> None:
        """The last session with ``peer`` closed (``reason``: its close reason, "" when none was given)."""
        if peer in self.peers:
            self.peers.get(peer).session = f"closed:{reason}" if reason else "closed"

    def inbound_contact(self, peer: str, now_ms: int) -> None:
        """``peer`` made a request over its session: it is up."""
        if peer in self.peers and self.peers.get(peer).state != "dropped":
            self.peers.record_success(peer, now_ms)



def _session_open(session: str) -> bool:
    """Whether a peer's ``PeerState.session`` says a session is open ("in:member", "out:applicant", …)."""
    return session.startswith(("in:", "out:"))


def _remember(lru: OrderedDict[K, None], key: K, capacity: int) -> None:
    """Add ``key`` to a bounded LRU (the oldest entry goes when it is full)."""
    lru[key] = None
    lru.move_to_end(key)
    if len(lru) > capacity:
        lru.popitem(last=False)
