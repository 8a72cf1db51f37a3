"""Push gossip: which new records to send to which peers, at once (sans-IO: events in, actions out).

PRODUCT.md §3: "New records are pushed to peers at once (fan-out, de-duplicated by record id)". A hub that
stores a record it had not seen — published locally, pushed by a peer, or fetched by anti-entropy while it
is still news — forwards it to ``Limits.push_fanout`` random healthy peers, never to the peer it came from
and never to a peer already known to have it. Each record is forwarded at most once per hub (the "seen"
set), so one record costs at most N · fan-out pushes across the association; the few hubs push misses are
reached by anti-entropy (``federation/sync.py``). This is "infect and die" rumour spreading plus pull, the
combination gossip_theory.py calls push-pull.

The driver turns :class:`PushAction` into push requests of at most ``Limits.push_batch`` records and reports
the result with :meth:`Gossip.on_push_result`. Nothing here does I/O or reads the clock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from protocol.errors import REASONS
from protocol.limits import Limits

from .peers import ACCEPTED, PeerTable

__all__ = ["DEFAULT_SEEN_CAPACITY", "WANT_PROMISE_MS", "GossipAction", "Gossip", "PeerDropped", "PushAction", "SeenSet"]

#: Record ids remembered for de-duplication. 100k ids of 32 bytes plus a few holder URLs is ~30 MB of Python
#: objects at most; records older than that are still de-duplicated by storage, they just aren't relayed.
DEFAULT_SEEN_CAPACITY = 100_000


@dataclass(frozen=True, slots=True)
class PushAction:
    """Send these records (by id, at most ``Limits.push_batch``) to ``peer``."""

    peer: str
    record_ids: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class PeerDropped:
    """``peer`` sent too many invalid records and was dropped; close its connections and log it."""

    peer: str
    score: int


GossipAction = PushAction | PeerDropped


class SeenSet:
    """A bounded LRU of record ids, each with the peers known to hold it (source, pushed-to, pushed-from)."""

    __slots__ = ("_capacity", "_entries")

    def __init__(self, capacity: int = DEFAULT_SEEN_CAPACITY) -> None:
        """Create an empty set holding at most ``capacity`` ids.

        Raises:
            ValueError: ``capacity`` is below 1.
        """
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._capacity = capacity
        # Holders are a tuple: a handful of URLs, and a tuple is far smaller than a set per id.
        self._entries: OrderedDict[bytes, tuple[str, ...]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, record_id: object) -> bool:
        return record_id in self._entries

    def holders(self, record_id: bytes) -> tuple[str, ...]:
        """The peers known to hold ``record_id`` (empty when unknown)."""
        return self._entries.get(record_id, ())

    def add(self, record_id: bytes, *holders: str) -> bool:
        """Remember ``record_id`` (refreshing its recency) and that ``holders`` have it; True if new."""
        entries = self._entries
        known = entries.get(record_id)
        if known is None:
            entries[record_id] = tuple(dict.fromkeys(holders))
            if len(entries) > self._capacity:
                entries.popitem(last=False)
            return True
        entries.move_to_end(record_id)
        extra = tuple(h for h in dict.fromkeys(holders) if h not in known)
        if extra:
            entries[record_id] = known + extra
        return False

    def forget_holder(self, record_id: bytes, peer: str) -> None:
        """``peer`` turned out not to have ``record_id`` (the push failed)."""
        known = self._entries.get(record_id)
        if known is not None and peer in known:
            self._entries[record_id] = tuple(h for h in known if h != peer)


#: An id this hub asked one peer for (answered "want" to its announce) is not asked of another peer for this
#: long: that peer's push is on its way. In a burst every hub hears of a record from several peers within
#: milliseconds; wanting it from each made each hub receive ~3 copies of every record. If the promised push
#: never comes, an announce after this, or anti-entropy, brings the record.
WANT_PROMISE_MS = 3_000
#: At most this many promises are remembered (oldest forgotten first).
WANT_PROMISE_CAPACITY = 50_000


class Gossip:
    """The push half of federation for one hub, over its :class:`~federation.peers.PeerTable`."""

    def __init__(self, peers: PeerTable, limits: Limits, *,
                 seen_capacity: int = DEFAULT_SEEN_CAPACITY) -> None:
        """Create the push logic; ``limits.push_fanout`` of 0 disables push (pull-only anti-entropy).

        Raises:
            ValueError: ``seen_capacity`` is below 1 or ``limits.push_batch`` is 0.
        """
        if limits.push_batch < 1:
            raise ValueError("push_batch must be at least 1")
        self.peers = peers
        self.limits = limits
        self.seen = SeenSet(seen_capacity)
        self._promised: OrderedDict[bytes, int] = OrderedDict()  # ids asked of a peer -> when (WANT_PROMISE_MS)

    def on_local_record(self, record_id: bytes, now_ms: int) -> list[PushAction]:
        """This hub stored a record it published (or imported); return the pushes to make.

        A record already seen (published twice, or received before) is not pushed again.
        """
        if not self.seen.add(record_id):
            return []
        return self._fan_out([record_id], now_ms)

    def on_records_received(self, from_peer: str, outcomes: Iterable[tuple[bytes, str]], now_ms: int, *,
                            relay: bool = True, score: bool = True) -> list[GossipAction]:
        """Records arrived from ``from_peer`` and ingest decided each one's outcome; return what to do next.

        ``outcomes`` pairs each record id with ``"accepted"`` (stored, new) or a refusal reason of
        ``protocol.errors.REASONS`` (``duplicate`` means we already had it). Accepted records not seen
        before are pushed onward unless ``relay`` is False (a catch-up fetch: ``sync.Fetch.relay``). The
        outcomes also score the peer; a :class:`PeerDropped` action says it was dropped. ``from_peer`` may be
        a hub that is not in the peer table (an inbound push from a hub we don't dial): it is not scored.
        ``score`` is False when ``from_peer`` is only what the sender claims (an inbound push names itself in
        an unauthenticated ``from`` field): scoring it would let anyone get an honest peer dropped by pushing
        garbage in its name, so only records we fetched from a peer we dialed cost score.

        Raises:
            ValueError: an outcome is neither ``"accepted"`` nor a known reason.
        """
        fresh: list[bytes] = []
        reasons: list[str] = []
        for record_id, outcome in outcomes:
            reasons.append(outcome)
            if outcome == ACCEPTED:
                if self.seen.add(record_id, from_peer) and relay:
                    fresh.append(record_id)
            elif outcome == "duplicate":
                # We hold it already; remember that the sender does too, so we never push it there.
                self.seen.add(record_id, from_peer)
            elif outcome not in REASONS:
                raise ValueError(f"unknown record outcome {outcome!r}")
        actions: list[GossipAction] = []
        if score and from_peer in self.peers and self.peers.record_outcomes(from_peer, reasons, now_ms):
            actions.append(PeerDropped(from_peer, self.peers.get(from_peer).score))
        actions.extend(self._fan_out(fresh, now_ms))
        return actions

    def on_push_result(self, peer: str, record_ids: Iterable[bytes], delivered: bool, now_ms: int, *,
                       bytes_out: int = 0) -> None:
        """Report whether a :class:`PushAction` reached ``peer`` (any per-record answer counts as delivered).

        A failed push is not retried elsewhere: anti-entropy repairs it, and retrying would let one dead peer
        multiply traffic. The peer is marked failing (backoff) and no longer counted as a holder.
        """
        if peer not in self.peers:
            return
        if delivered:
            self.peers.record_success(peer, now_ms, bytes_out=bytes_out)
            return
        for record_id in record_ids:
            self.seen.forget_holder(record_id, peer)
        self.peers.record_failure(peer, now_ms, bytes_out=bytes_out)

    def want_candidates(self, record_ids: Iterable[bytes], now_ms: int) -> list[bytes]:
        """Of announced ids, those worth asking for: not seen here (stored, or sent to us before) and not asked
        of another peer in the last WANT_PROMISE_MS (its push is on its way)."""
        promised = self._promised
        while promised and next(iter(promised.values())) < now_ms - WANT_PROMISE_MS:
            promised.popitem(last=False)
        seen = self.seen
        return [i for i in dict.fromkeys(record_ids) if i not in seen and i not in promised]

    def promise(self, record_ids: Iterable[bytes], now_ms: int) -> list[bytes]:
        """This hub is asking one peer for these ids: return those no other peer was asked for meanwhile (two
        announces answered at once), and remember them as promised for WANT_PROMISE_MS."""
        promised = self._promised
        out = [i for i in dict.fromkeys(record_ids) if i not in promised]
        for record_id in out:
            promised[record_id] = now_ms
        while len(promised) > WANT_PROMISE_CAPACITY:
            promised.popitem(last=False)
        return out

    def mark_known(self, peer: str, record_ids: Iterable[bytes]) -> None:
        """``peer`` is known to hold ``record_ids`` (an anti-entropy session found it, or we sent them)."""
        for record_id in record_ids:
            self.seen.add(record_id, peer)

    def _fan_out(self, record_ids: list[bytes], now_ms: int) -> list[PushAction]:
        """Choose fan-out targets per record (independently, so load spreads) and batch them per peer."""
        k = self.limits.push_fanout
        if not record_ids or k == 0:
            return []
        per_peer: dict[str, list[bytes]] = {}
        for record_id in record_ids:
            targets = self.peers.push_targets(k, now_ms, exclude=self.seen.holders(record_id))
            if not targets:
                continue
            # Optimistically count targets as holders so a later duplicate can't make us push twice.
            self.seen.add(record_id, *targets)
            for peer in targets:
                per_peer.setdefault(peer, []).append(record_id)
        batch = self.limits.push_batch
        return [PushAction(peer, tuple(ids[i:i + batch]))
                for peer, ids in per_peer.items() for i in range(0, len(ids), batch)]
