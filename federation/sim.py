"""A deterministic discrete-event simulation of N hubs running the real federation core, in one process.

Every hub is a real :class:`~federation.node.FederationNode` — the class the aiohttp driver runs in production,
with its peer table, push gossip, coalescing outbox, sync schedule, skip sets, scoring and dropping — and, for
each anti-entropy session, a real :class:`~federation.sync.SyncSession` / :class:`~federation.sync.SyncResponder`
over real Negentropy storages of 32-byte ids. The simulation performs the node's actions as the driver does,
with simulated time for its clock and timer. Only the network is simulated: a push or a reconcile round trip
takes a random 20–80 ms, a message may be lost (the sender sees the failure, as an HTTP client would), and
hubs may be split into two partitions. Records are cheap fake ids (SHA-256 of a counter) of an assumed 1 KB,
except in :func:`real_records`, where hubs exchange signed protocol records and every receiver runs
``decode_record``.

Everything random comes from ``random.Random(seed)`` (one per hub, derived from the seed) and nothing iterates
a ``set``, so a run is replayable from its seed across processes (STYLE.md). Run::

    python -m federation.sim --hubs 1000 --seed 7 [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import heapq
import math
import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from protocol.errors import ProtocolError
from protocol.identity import HubKey
from protocol.limits import DEFAULT_LIMITS, Limits
from protocol.records import build_record, decode_record

from .negentropy import Storage
from .node import DropPeer, FederationNode, NodeAction, SendAnnounce, SendRecords, StartSync
from .peers import PeerTable
from .sync import Done, Fetch, Offer, SyncResponder, SyncSession, exchange

__all__ = ["BASE_MS", "RECORD_BYTES", "Network", "SimStats", "dissemination", "fake_id", "idle_bytes", "main",
           "partition_heal", "random_graph", "real_records", "repair_bytes", "run"]

#: 2026-01-01T00:00:00Z: simulated time 0, so record times look real.
BASE_MS = 1_767_225_600_000
#: The assumed encoded size of a fake record (PRODUCT.md's typical guide/profile is around 1 KB).
RECORD_BYTES = 1024
_PUSH, _TICK, _FETCH, _PUBLISH = range(4)
#: Records published per dissemination run; figures are the worst over them.
RECORDS = 5


def _url(idx: int) -> str:
    return f"sim://{idx}"


def _idx(url: str) -> int:
    return int(url[6:])


def fake_id(label: str, n: int) -> bytes:
    """A deterministic 32-byte record id."""
    return hashlib.sha256(f"{label}:{n}".encode()).digest()


def random_graph(n: int, degree: int, rng: random.Random) -> list[list[int]]:
    """A connected random graph of mean degree about ``degree``: a random Hamiltonian cycle (which guarantees
    connectivity) plus ``(degree - 2) // 2`` random chords per node. Returns adjacency lists in seeded order.

    Raises:
        ValueError: ``n`` is below 2.
    """
    if n < 2:
        raise ValueError("a network needs at least 2 hubs")
    order = list(range(n))
    rng.shuffle(order)
    adj: list[dict[int, None]] = [{} for _ in range(n)]  # dicts: ordered, O(1) membership

    def link(a: int, b: int) -> None:
        if a != b:
            adj[a][b] = None
            adj[b][a] = None

    for i in range(n):
        link(order[i], order[(i + 1) % n])
    for a in range(n):
        for _ in range(max(0, (degree - 2) // 2)):
            link(a, rng.randrange(n))
    return [list(d) for d in adj]


class SimHub:
    """One simulated hub: the real federation node, plus its set of (id -> created_ms) items."""

    __slots__ = ("idx", "url", "node", "items", "tick_at", "_storage")

    def __init__(self, idx: int, limits: Limits, seed: int) -> None:
        self.idx = idx
        self.url = _url(idx)
        # The sim tracks a handful of records per run: a small seen set keeps 10k hubs cheap.
        self.node = FederationNode(limits, random.Random(seed * 1_000_003 + idx), self_urls=(self.url,),
                                   seen_capacity=4096)
        self.items: dict[bytes, int] = {}
        self.tick_at: int | None = None  # when this hub's node timer is set to fire
        self._storage: Storage | None = None

    @property
    def peers(self) -> PeerTable:
        return self.node.peers

    def storage(self) -> Storage:
        """The sealed Negentropy storage of this hub's items, rebuilt only after a change."""
        if self._storage is None:
            self._storage = Storage((ts, rid) for rid, ts in self.items.items())
        return self._storage

    def store(self, record_id: bytes, created_ms: int) -> None:
        self.items[record_id] = created_ms
        self._storage = None


@dataclass
class Tracker:
    """When and how each hub first got one tracked record."""

    published_ms: int
    arrival: list[int]
    hop: list[int]
    via: list[str]
    reached: int = 0
    done_ms: int | None = None


@dataclass
class SimStats:
    push_messages: int = 0
    push_lost: int = 0
    push_records: int = 0
    push_duplicates: int = 0
    sync_sessions: int = 0
    sync_failed: int = 0
    sync_bytes: int = 0
    idle_sessions: int = 0
    idle_bytes: int = 0
    fetched: int = 0
    dropped: list[tuple[int, int]] = field(default_factory=list)


class Network:
    """N simulated hubs on a random graph, driven by one event queue in simulated milliseconds."""

    def __init__(self, hubs: int, seed: int, *, limits: Limits = DEFAULT_LIMITS, degree: int = 8,
                 loss: float = 0.0, latency_ms: tuple[int, int] = (20, 80),
                 wire: dict[bytes, bytes] | None = None) -> None:
        """Build the hubs and their peer tables; every hub's first sync fires at a random phase.

        ``wire`` switches to real records: id -> canonical bytes, decoded by every receiver.

        Raises:
            ValueError: ``hubs`` is below 2.
        """
        self.seed = seed
        self.limits = limits
        self.loss = loss
        self.latency_ms = latency_ms
        self.rng = random.Random(seed)
        self.hubs = [SimHub(i, limits, seed) for i in range(hubs)]
        self.graph = random_graph(hubs, degree, self.rng)
        for hub, neighbours in zip(self.hubs, self.graph, strict=True):
            hub.node.configured([_url(j) for j in neighbours], 0)
            for j in neighbours:  # each edge is a session, open from the start, as a hub holds one per peer
                hub.node.outbound_proved(_url(j), j.to_bytes(32, "big"))
                hub.node.session_opened(_url(j), "out", "member", 0)
        self.now = 0
        self._queue: list[tuple[int, int, int, tuple[Any, ...]]] = []
        self._seq = 0
        self.side: list[int] | None = None
        self.partitioned = False
        self.wire = wire
        self.created: dict[bytes, int] = {}
        self.origin: dict[bytes, int] = {}  # record id -> the hub that signed it
        self.tracked: dict[bytes, Tracker] = {}
        self.stats = SimStats()
        for hub in self.hubs:
            self._dispatch(hub.idx, hub.node.start(0, first_sync_ms=self.rng.randrange(limits.sync_interval_ms)))

    # -- scheduling ------------------------------------------------------------------------------------------

    def _at(self, t: int, kind: int, *args: Any) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (t, self._seq, kind, args))

    def _latency(self) -> int:
        return self.rng.randint(*self.latency_ms)

    def _cut(self, a: int, b: int) -> bool:
        return self.partitioned and self.side is not None and self.side[a] != self.side[b]

    def publish(self, origin: int, record_id: bytes, created_ms: int, at_ms: int, *,
                track: bool = True) -> None:
        """Schedule ``origin`` to publish a record at ``at_ms``; tracked records are measured."""
        self.created[record_id] = created_ms
        self.origin[record_id] = origin
        if track:
            n = len(self.hubs)
            self.tracked[record_id] = Tracker(at_ms, [-1] * n, [-1] * n, [""] * n)
        self._at(at_ms, _PUBLISH, origin, record_id)

    def pending(self) -> int:
        """Hub-record pairs still missing among tracked records."""
        return sum(len(self.hubs) - t.reached for t in self.tracked.values())

    def run(self, until_ms: int, stop: Callable[[], bool] | None = None) -> None:
        """Process events up to ``until_ms`` (or until ``stop()`` is true after an event)."""
        handlers = (self._on_push, self._on_tick, self._on_fetch, self._on_publish)
        while self._queue and self._queue[0][0] <= until_ms:
            t, _, kind, args = heapq.heappop(self._queue)
            self.now = t
            handlers[kind](*args)
            if stop is not None and stop():
                return
        self.now = max(self.now, until_ms)

    # -- hub behaviour ---------------------------------------------------------------------------------------

    def _arrive(self, dst: int, src: int, record_id: bytes, via: str) -> None:
        tracker = self.tracked.get(record_id)
        if tracker is None or tracker.arrival[dst] >= 0:
            return
        tracker.arrival[dst] = self.now
        tracker.hop[dst] = 0 if via == "origin" else tracker.hop[src] + 1
        tracker.via[dst] = via
        tracker.reached += 1
        if tracker.reached == len(self.hubs):
            tracker.done_ms = self.now

    def _ingest(self, dst: SimHub, src: int, record_id: bytes, via: str) -> str:
        """The hub's one way in: check (real records are decoded and verified), de-duplicate, store."""
        created = self.created[record_id]
        if self.wire is not None:
            try:
                created = decode_record(self.wire[record_id], now_ms=BASE_MS + self.now).created_ms
            except ProtocolError as exc:
                return exc.reason
        if record_id in dst.items:
            return "duplicate"
        dst.store(record_id, created)
        self._arrive(dst.idx, src, record_id, via)
        return "accepted"

    def _dispatch(self, src: int, actions: Sequence[NodeAction]) -> None:
        """Perform a node's actions as the driver does (store reads and persistence have nothing to do here:
        simulated hubs publish no profiles and defer nothing), then set its timer."""
        for action in actions:
            if isinstance(action, SendAnnounce | SendRecords):
                # One message carries the records: the announce / want round of the session is folded in, so
                # record copies count every record announced (an upper bound on record bytes).
                dst = _idx(action.peer)
                lost = self._cut(src, dst) or self.rng.random() < self.loss
                self.stats.push_messages += 1
                announced = isinstance(action, SendAnnounce)
                ids = action.record_ids + action.unasked if isinstance(action, SendAnnounce) else action.record_ids
                self._at(self.now + self._latency(), _PUSH, src, dst, ids, lost,
                         "push" if announced else "pull", announced)
            elif isinstance(action, StartSync):
                self._sync(src, action.peer)
            elif isinstance(action, DropPeer):
                self.stats.dropped.append((src, _idx(action.peer)))
        self._arm(self.hubs[src])

    def _arm(self, hub: SimHub) -> None:
        """Schedule the node's next tick if it comes before the one already scheduled."""
        deadline = hub.node.next_deadline_ms()
        if deadline is not None and (hub.tick_at is None or deadline < hub.tick_at):
            hub.tick_at = deadline
            self._at(deadline, _TICK, hub.idx, deadline)

    def _on_tick(self, idx: int, deadline: int) -> None:
        hub = self.hubs[idx]
        if hub.tick_at != deadline:  # superseded by an earlier tick, which re-armed the timer
            return
        hub.tick_at = None
        self._dispatch(idx, hub.node.tick(self.now))

    def _on_publish(self, origin: int, record_id: bytes) -> None:
        hub = self.hubs[origin]
        hub.store(record_id, self.created[record_id])
        self._arrive(origin, origin, record_id, "origin")
        self._dispatch(origin, hub.node.local_stored([record_id], self.now, signed_here=True))

    def _on_push(self, src: int, dst: int, ids: tuple[bytes, ...], lost: bool, via: str, announced: bool) -> None:
        sender, receiver = self.hubs[src], self.hubs[dst]
        if lost:
            self.stats.push_lost += 1
            self._dispatch(src, sender.node.push_finished(receiver.url, ids, False, self.now, announced=announced))
            return
        outcomes = [(rid, self._ingest(receiver, src, rid, via)) for rid in ids]
        self.stats.push_records += len(ids)
        self.stats.push_duplicates += sum(1 for _, o in outcomes if o == "duplicate")
        receiver.node.inbound_contact(sender.url, self.now)  # an inbound request proves the sender is up
        # As in the driver: a push comes over an authenticated session, so the sender is scored for it.
        from_author = all(self.origin.get(rid) == src for rid in ids)
        self._dispatch(dst, receiver.node.records_received(sender.url, outcomes, self.now, from_author=from_author))
        self._dispatch(src, sender.node.push_finished(receiver.url, ids, True, self.now, announced=announced,
                                                      bytes_out=len(ids) * RECORD_BYTES))

    def _sync(self, idx: int, peer: str) -> None:
        """Run the anti-entropy session the node started, in one go; its fetches and offer arrive later."""
        hub = self.hubs[idx]
        other = self.hubs[_idx(peer)]
        if self._cut(idx, other.idx) or self.rng.random() < self.loss:
            self.stats.sync_failed += 1
            self._dispatch(idx, hub.node.sync_finished(peer, self.now, ok=False))
            return
        session = SyncSession(hub.storage(), self.limits)
        actions = exchange(session, SyncResponder(other.storage(), self.limits))
        done = actions[-1]
        assert isinstance(done, Done)
        self._account(done)
        other.node.inbound_contact(hub.url, self.now)
        rtt = 2 * self._latency()
        t_done = self.now + done.rounds * rtt
        for action in actions:
            if isinstance(action, Fetch):
                ids = tuple(hub.node.fetch_filter(peer, action.record_ids))
                if ids:
                    self._at(t_done + rtt, _FETCH, idx, other.idx, ids, action.relay)
            elif isinstance(action, Offer):
                for offer in hub.node.offer(peer, action.record_ids):
                    if isinstance(offer, SendRecords):
                        self.stats.push_messages += 1
                        # Pushed to the responder, but it is anti-entropy's doing: counted as "pull".
                        self._at(t_done + rtt // 2, _PUSH, idx, other.idx, offer.record_ids, False, "pull", False)
        self._dispatch(idx, hub.node.sync_finished(peer, self.now, ok=True, need=done.need, need_ids=session.need,
                                                   bytes_in=done.bytes_received, bytes_out=done.bytes_sent))

    def _account(self, done: Done) -> None:
        total = done.bytes_sent + done.bytes_received
        self.stats.sync_sessions += 1
        self.stats.sync_bytes += total
        if done.have == 0 and done.need == 0:
            self.stats.idle_sessions += 1
            self.stats.idle_bytes += total

    def _on_fetch(self, dst: int, src: int, ids: tuple[bytes, ...], relay: bool) -> None:
        receiver = self.hubs[dst]
        outcomes = [(rid, self._ingest(receiver, src, rid, "pull")) for rid in ids]
        self.stats.fetched += len(ids)
        self._dispatch(dst, receiver.node.records_received(_url(src), outcomes, self.now, relay=relay))


# -- experiments ---------------------------------------------------------------------------------------------


def _summarise(net: Network, hubs: int) -> dict[str, Any]:
    interval = net.limits.sync_interval_ms
    trackers = list(net.tracked.values())
    done = [t.done_ms - t.published_ms for t in trackers if t.done_ms is not None]
    by_push = [sum(1 for v in t.via if v in ("push", "origin")) / hubs for t in trackers]
    push_hops = [max((h for h, v in zip(t.hop, t.via, strict=True) if v == "push"), default=0)
                 for t in trackers]
    all_hops = [max(t.hop) for t in trackers]
    # When push stopped making progress: the last arrival by push (the rest is anti-entropy's).
    push_ms = [max((a for a, v in zip(t.arrival, t.via, strict=True) if v == "push"), default=t.published_ms)
               - t.published_ms for t in trackers]
    return {
        "hubs": hubs, "records": len(trackers), "converged": len(done) == len(trackers),
        "push_coverage": min(by_push), "push_hops": max(push_hops), "hops": max(all_hops),
        "push_ms": max(push_ms),
        "median_ms": statistics.median(done) if done else None, "max_ms": max(done) if done else None,
        "rounds": (max(done) / interval) if done else None,
        "copies_per_hub": net.stats.push_records / max(1, hubs * len(trackers)),
        "sync_sessions": net.stats.sync_sessions, "sync_failed": net.stats.sync_failed,
        "idle_bytes_avg": net.stats.idle_bytes / max(1, net.stats.idle_sessions),
    }


def dissemination(hubs: int, seed: int, *, push: bool = True, records: int = 5, loss: float = 0.0,
                  horizon_ms: int = 600_000) -> dict[str, Any]:
    """Publish ``records`` records from random hubs (100 ms apart) and run until every hub has all of them.

    With ``push=False`` the fan-out is 0: records spread only by anti-entropy (push-pull exchange with one
    random peer per sync interval). Returns the figures of :func:`_summarise`.
    """
    limits = DEFAULT_LIMITS if push else dataclasses.replace(DEFAULT_LIMITS, push_fanout=0)
    net = Network(hubs, seed, limits=limits, loss=loss)
    for r in range(records):
        at = 1000 + 100 * r
        net.publish(net.rng.randrange(hubs), fake_id(f"rec{seed}", r), BASE_MS + at, at)
    net.run(horizon_ms, stop=lambda: net.pending() == 0)
    return _summarise(net, hubs)


def partition_heal(hubs: int, seed: int, *, records: int = 5, split_ms: int = 60_000,
                   horizon_ms: int = 900_000) -> dict[str, Any]:
    """Split the hubs in two random halves for ``split_ms``; each side publishes ``records`` records
    meanwhile; heal, and run until every hub has every record. Reports time and sync rounds from the heal."""
    net = Network(hubs, seed)
    order = list(range(hubs))
    net.rng.shuffle(order)
    net.side = [0] * hubs
    for i in order[hubs // 2:]:
        net.side[i] = 1
    net.partitioned = True
    sides = (order[:hubs // 2], order[hubs // 2:])
    for r in range(2 * records):
        origin = net.rng.choice(sides[r % 2])
        at = 5_000 + r * (split_ms - 20_000) // (2 * records)
        net.publish(origin, fake_id(f"part{seed}", r), BASE_MS + at, at)
    net.run(split_ms)
    side = net.side
    before = 0
    for t in net.tracked.values():
        origin_side = side[t.via.index("origin")]
        before += sum(1 for i, a in enumerate(t.arrival) if a >= 0 and side[i] == origin_side)
    net.partitioned = False
    net.run(horizon_ms, stop=lambda: net.pending() == 0)
    converged = net.pending() == 0
    heal_ms = net.now - split_ms if converged else None
    return {"hubs": hubs, "records": 2 * records, "split_ms": split_ms, "converged": converged,
            "own_side_reached": before / (len(net.tracked) * hubs / 2), "heal_ms": heal_ms,
            "heal_rounds": heal_ms / net.limits.sync_interval_ms if heal_ms is not None else None}


def idle_bytes(n: int, *, whole_range: bool = True) -> tuple[int, int, int]:
    """Bytes (sent, received) and rounds of one session between two hubs holding the same ``n`` records."""
    items = [(BASE_MS + i * 997, fake_id("idle", i)) for i in range(n)]
    session = SyncSession(Storage(items), DEFAULT_LIMITS, whole_range=whole_range)
    done = exchange(session, SyncResponder(Storage(items), DEFAULT_LIMITS))[-1]
    assert isinstance(done, Done) and done.complete
    return done.bytes_sent, done.bytes_received, done.rounds


def repair_bytes(n: int, ds: Sequence[int], seed: int) -> list[dict[str, Any]]:
    """For each d: one session where the initiator lacks d of the responder's n records (chosen at random)."""
    rng = random.Random(seed)
    items = [(BASE_MS + i * 997, fake_id("repair", i)) for i in range(n)]
    full = SyncResponder(Storage(items), DEFAULT_LIMITS)
    rows = []
    for d in ds:
        missing = set(rng.sample(range(n), d))
        mine = Storage(item for i, item in enumerate(items) if i not in missing)
        full.rounds = full.bytes_sent = full.bytes_received = 0  # reuse the sealed 100k storage
        session = SyncSession(mine, DEFAULT_LIMITS)
        actions = exchange(session, full)
        done = actions[-1]
        assert isinstance(done, Done) and done.complete and done.need == d
        fetch_ids = 32 * sum(len(a.record_ids) for a in actions if isinstance(a, Fetch))
        recon = done.bytes_sent + done.bytes_received
        record_bytes = d * RECORD_BYTES
        rows.append({"n": n, "d": d, "rounds": done.rounds, "recon": recon, "fetch_ids": fetch_ids,
                     "records": record_bytes, "overhead_pct": 100 * (recon + fetch_ids) / record_bytes,
                     "merkle_est": d * max(1.0, math.log2(n / d)) * 64})
    return rows


def real_records(hubs: int, seed: int, *, records: int = 4, spam: int = 40) -> dict[str, Any]:
    """Hubs exchange real signed records (every receiver decodes and verifies them); one faulty hub pushes
    ``spam`` records with broken signatures. Returns whether honest records reached every hub and how many
    of the faulty hub's neighbours dropped it."""
    keys = [HubKey.from_seed(hashlib.sha256(f"sim-key:{seed}:{i}".encode()).digest()) for i in range(hubs)]
    association = hashlib.sha256(b"sim-association").digest()
    wire: dict[bytes, bytes] = {}
    net = Network(hubs, seed, wire=wire)
    bad = net.rng.randrange(hubs)
    honest = [i for i in range(hubs) if i != bad]
    for r in range(records + spam):
        origin = net.rng.choice(honest) if r < records else bad
        body = {"title": f"Guide {r}", "summary": "How we run shared kitchens.", "body": "x" * 700,
                "license": "CC-BY-4.0", "tags": ["kitchens"], "language": "en"}
        record = build_record(keys[origin], association, "guide", body, BASE_MS + 1000 + r)
        raw = record.raw if r < records else record.raw[:-1] + bytes([record.raw[-1] ^ 1])
        rid = hashlib.sha256(raw).digest()
        wire[rid] = raw
        net.publish(origin, rid, record.created_ms, 1000 + 10 * r, track=r < records)
    net.run(120_000)
    neighbours = net.graph[bad]
    dropped = sum(1 for j in neighbours if net.hubs[j].peers.get(_url(bad)).state == "dropped")
    return {"hubs": hubs, "records": records, "reached_all": net.pending() == 0,
            "bad_neighbours": len(neighbours), "dropped_bad": dropped,
            "record_bytes": statistics.mean(len(wire[t]) for t in net.tracked)}


# -- report --------------------------------------------------------------------------------------------------


def _fmt(v: float | None, digits: int = 1) -> str:
    return "—" if v is None else f"{v:,.{digits}f}"


def report(hub_counts: Sequence[int], seed: int, *, quick: bool, loss_hubs: int) -> str:
    """Run every experiment and return a markdown section."""
    flag = " --quick" if quick else ""
    limits = DEFAULT_LIMITS
    out = [f"## Federation simulation (seed {seed})", "",
           f"Replay: `python -m federation.sim --hubs {max(hub_counts)} --seed {seed}{flag}`."
           f" Limits: fan-out {limits.push_fanout}, sync every {limits.sync_interval_ms} ms ±25 %,"
           " random graph of mean degree 8, link latency 20–80 ms.", "",
           f"### (a) Dissemination of a new record ({RECORDS} records, worst of {RECORDS})", "",
           "| hubs | mode | reached by push | push hops (max) | log2 N | push phase | time to all hubs |"
           " sync rounds to all | record copies received per hub |", "|---|---|---|---|---|---|---|---|---|"]
    for n in hub_counts:
        for push in (True, False):
            r = dissemination(n, seed, push=push)
            r_push, r_cover = r["push_ms"], r["push_coverage"]
            out.append(f"| {n:,} | {'push + anti-entropy' if push else 'anti-entropy only'} | "
                       f"{f'{100 * r_cover:.1f} %' if push else '—'} | {r['push_hops'] if push else '—'} | "
                       f"{math.log2(n):.1f} | {f'{r_push} ms' if push else '—'} | "
                       f"{_fmt(r['max_ms'], 0)} ms | {_fmt(r['rounds'])} | {r['copies_per_hub']:.2f} |")
    sizes = (1_000, 10_000) if quick else (1_000, 10_000, 100_000)
    out += ["", "### (b) One anti-entropy exchange between two hubs in sync", "",
            "| records n | whole-range opening: bytes up / down (rounds) | reference 16-bucket opening |",
            "|---|---|---|"]
    for n in sizes:
        up, down, rounds = idle_bytes(n)
        up2, down2, rounds2 = idle_bytes(n, whole_range=False)
        out.append(f"| {n:,} | {up} / {down} ({rounds}) | {up2} / {down2} ({rounds2}) |")
    out += ["", "### (c) Repairing d missing records (1 KB each)", "",
            "| n | d | rounds | reconciliation bytes | fetch request ids | record bytes |"
            " overhead / record bytes | range/Merkle estimate d·log2(n/d)·64 |",
            "|---|---|---|---|---|---|---|---|"]
    for n in sizes[1:]:
        for row in repair_bytes(n, (1, 10, 100, 1000), seed):
            out.append(f"| {n:,} | {row['d']:,} | {row['rounds']} | {row['recon']:,} | "
                       f"{row['fetch_ids']:,} | {row['records']:,} | {row['overhead_pct']:.1f} % | "
                       f"{row['merkle_est']:,.0f} |")
    lossy = dissemination(loss_hubs, seed, loss=0.2)
    part = partition_heal(loss_hubs, seed)
    out += ["", f"### (d) Faults ({loss_hubs:,} hubs)", "",
            "| scenario | reached by push | time to all hubs | sync rounds | sessions failed |",
            "|---|---|---|---|---|",
            f"| 20 % of pushes and sync sessions lost | {100 * lossy['push_coverage']:.1f} % | "
            f"{_fmt(lossy['max_ms'], 0)} ms | {_fmt(lossy['rounds'])} | {lossy['sync_failed']:,} |",
            f"| partition into halves for {part['split_ms'] // 1000} s, {part['records']} records published "
            f"during it, then healed | {100 * part['own_side_reached']:.1f} % of own side before heal | "
            f"{_fmt(part['heal_ms'], 0)} ms after heal | {_fmt(part['heal_rounds'])} after heal | — |"]
    real = real_records(30, seed)
    out += ["", "### Real signed records (30 hubs, one faulty hub pushing 40 records with broken signatures)",
            "", f"{real['records']} guides of {real['record_bytes']:.0f} B reached every hub: "
            f"{real['reached_all']}; the faulty hub was dropped by {real['dropped_bad']} of its "
            f"{real['bad_neighbours']} peers.", ""]
    return "\n".join(out)


def run(quick: bool) -> str:
    """The benchmark runner's entry point: a markdown section (quick: 100 and 1,000 hubs; else to 10,000)."""
    counts = (100, 1_000) if quick else (100, 1_000, 10_000)
    return report(counts, 7, quick=quick, loss_hubs=1_000 if quick else 10_000)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m federation.sim --hubs N --seed S [--quick]``: print the figures and the seed."""
    parser = argparse.ArgumentParser(prog="python -m federation.sim", description=__doc__.split("\n")[0])
    parser.add_argument("--hubs", type=int, default=1000, help="largest number of hubs (default 1000)")
    parser.add_argument("--seed", type=int, default=7, help="random seed; the same seed replays the same run")
    parser.add_argument("--quick", action="store_true", help="smaller record sets for (b) and (c)")
    args = parser.parse_args(argv)
    print(f"seed: {args.seed}")
    counts = sorted({n for n in (100, 1_000, 10_000) if n < args.hubs} | {args.hubs})
    print(report(counts, args.seed, quick=args.quick, loss_hubs=args.hubs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
