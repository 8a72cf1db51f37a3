"""The one module that does federation I/O: drives the sans-IO core (peers, gossip, sync) over aiohttp.

``setup(app)`` is called by ``hub.app.make_app``; it adds the ``/fed/v1`` routes and a background task that
pushes new records at once and runs anti-entropy with a random peer every ``sync_interval_ms`` (±25 %).
Records from peers enter through ``Store.ingest_async`` like every other record (STYLE.md "One way in").
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import aiohttp
from aiohttp import web

from protocol.errors import ProtocolError
from protocol.limits import Limits

from .client import PeerClient, PeerUnavailable
from .gossip import Gossip, PeerDropped, PushAction
from .negentropy import Storage
from .peers import CONTACTABLE_STATES, PeerTable
from .routes import add_routes
from .sync import Done, Fetch, Offer, SendReconcile, SyncSession
from .wire import WireError

__all__ = ["FED_KEY", "Federation", "catch_up", "setup"]

log = logging.getLogger("coophub.federation")
#: Peers asked for one missing blob, one after another: the guide's author first, then healthy peers. A blob
#: is asked of a few peers only, so one download request costs this hub a bounded number of requests.
BLOB_PEERS_TRIED = 4
FED_KEY: web.AppKey[Federation] = web.AppKey("federation", t=object)  # type: ignore[arg-type]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Federation:
    """One hub's federation state: its peer table, push gossip and the sessions it runs."""

    def __init__(self, home: Any, store: Any, limits: Limits, *, rng: random.Random | None = None,
                 now_ms: Callable[[], int] = _now_ms) -> None:
        self.home = home
        self.store = store
        self.limits = limits
        self.now_ms = now_ms
        self.public_url: str = home.config.url.rstrip("/")
        self.rng = rng or random.Random()
        self.peers = PeerTable(limits, self.rng, self_urls=[self.public_url] if self.public_url else [])
        self.gossip = Gossip(self.peers, limits)
        self.client: PeerClient | None = None
        self.stats: Counter[str] = Counter()
        self._storage: tuple[int, Storage] | None = None  # (the last row it includes, the storage)
        self._storage_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._blob_fetches: dict[bytes, asyncio.Task[bytes | None]] = {}  # one fetch per hash at a time
        self._wake = asyncio.Event()
        self._skip: set[bytes] = set()  # ids refused as blocked; skipped until membership changes
        self._members = -1
        self._profiles = -1
        self._stopped = False

    # -- lifecycle -------------------------------------------------------------------------------------------

    async def start(self) -> None:
        now = self.now_ms()
        for row in await self.store.read(self.store.list_peers):
            self._restore_peer(row, now)
        for url in self.home.config.peers:
            with contextlib.suppress(ValueError):
                self.peers.add(url.rstrip("/"), now)
        await self.discover_from_profiles()
        self.client = PeerClient(aiohttp.ClientSession(), self.limits, self.public_url)
        self.store.add_listener(self._on_ingested)
        self._spawn(self._sync_loop())

    async def stop(self) -> None:
        """Stop all federation traffic and save the peer table; safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.save_peers()
        if self.client is not None:
            await self.client.session.close()
            # Closed transports release their sockets on the loop's next turn (aiohttp's "graceful shutdown"):
            # give it that turn, or a loop closed right after leaves them to the garbage collector, unclosed.
            await asyncio.sleep(0)

    def traffic(self) -> dict[str, int]:
        """Counters since start: requests this hub served (``served_*``) and made (``requests``, ``bytes_out``,
        ``bytes_in``), records pushed and received, anti-entropy sessions and their Negentropy bytes."""
        made = {"requests": self.client.requests, "bytes_out": self.client.bytes_out,
                "bytes_in": self.client.bytes_in} if self.client is not None else {}
        return {**dict(sorted(self.stats.items())), **made}

    async def drain(self, timeout_s: float) -> None:
        """Wait up to ``timeout_s`` for the pushes and fetches already started (a one-shot `coophub sync`);
        the sync loop is never among them unless :meth:`start` ran."""
        pending = [t for t in self._tasks if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=timeout_s)

    def metric_families(self) -> list[Any]:
        """Peers by health state and score, for ``GET /metrics`` (hub.metrics calls it at scrape time)."""
        from prometheus_client.core import GaugeMetricFamily

        by_state = Counter(peer.state for peer in self.peers)
        peers = GaugeMetricFamily("coophub_peers", "Peers by health state.", labels=["state"])
        for state in ("new", "healthy", "failing", "dropped"):
            peers.add_metric([state], by_state.get(state, 0))
        lag = GaugeMetricFamily("coophub_peer_lag_records", "Records this hub lacked at the last sync with each "
                                "peer.", labels=["peer"])
        for peer in self.peers:
            if peer.lag is not None:
                lag.add_metric([peer.url], peer.lag)
        return [peers, lag]

    def _spawn(self, coro: Any) -> None:
        if self._stopped:  # a handler still running at shutdown must not start new traffic
            coro.close()
            return
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _restore_peer(self, row: dict[str, Any], now: int) -> None:
        url = row.get("url", "")
        if not url or url == self.public_url:
            return
        peer = self.peers.add(url, now) if row.get("source", "operator") == "operator" else None
        if peer is None:
            if not self.peers.discover(url, now):
                return
            peer = self.peers.get(url)
        for name in ("score", "state", "last_contact_ms", "last_sync_ms", "lag", "records_received",
                     "bytes_in", "bytes_out", "refused"):
            if name in row and row[name] is not None:
                setattr(peer, name, row[name])
        if isinstance(row.get("hub_id"), str) and row["hub_id"]:
            peer.hub_id = bytes.fromhex(row["hub_id"])

    async def save_peers(self) -> None:
        for peer in self.peers:
            data = dataclasses.asdict(peer)
            data["hub_id"] = peer.hub_id.hex() if peer.hub_id else ""
            await self.store.read(self.store.upsert_peer, peer.url, data)

    def add_peer(self, url: str) -> None:
        """An operator added a peer while serving: try it at once."""
        self.peers.add(url.rstrip("/"), self.now_ms())
        self._wake.set()

    # -- the negentropy snapshot -----------------------------------------------------------------------------

    async def sync_storage(self) -> Storage:
        """The Negentropy storage of every stored record, kept up to date in place.

        Built once, in a thread (a sorted scan of a covering index, packed as it streams: ~40 MB at 1M
        records, docs/performance.md); afterwards only the rows stored since the last call are read and added
        (``Storage.add``): a newer record is appended, an older one (a catch-up, a healed partition) inserted
        into its chunk — microseconds each. Before, any new record meant a rebuild: seconds at 1M.
        """
        async with self._storage_lock:
            if self._storage is None:
                self._storage = await asyncio.to_thread(self._build_storage)
                self.stats["storage_builds"] += 1
                return self._storage[1]
            last_row, storage = self._storage
            items, last = await self.store.read(self.store.sync_items_after, last_row)
            if items:
                storage.add(items)  # in the event loop: no session reads it half-changed
            self._storage = (last, storage)
            return storage

    def _build_storage(self) -> tuple[int, Storage]:
        """In a thread: pack every stored (created_ms, id) as the index scan yields it (~40 MB at 1M records,
        never a list of a million tuples)."""
        with self.store.sync_items_stream() as (last, rows):
            return last, Storage(rows)

    # -- records in ------------------------------------------------------------------------------------------

    def _dropped(self, peer: str) -> bool:
        return peer in self.peers and self.peers.get(peer).state == "dropped"

    def note_inbound(self, sender: str) -> None:
        if sender and sender in self.peers:
            self.peers.record_success(sender, self.now_ms())

    async def receive(self, source: str, raws: list[bytes], *, relay: bool = True,
                      score: bool = True) -> list[Any]:
        """Ingest records from a peer, score the peer, relay what was new, and learn peers from profiles.

        ``score`` is False for inbound pushes, whose ``source`` is the unauthenticated ``from`` field
        (``Gossip.on_records_received``); their refusals are still counted per source by the store.
        """
        now = self.now_ms()
        results = await self.store.ingest_async(raws, now_ms=now, source=source)
        outcomes = []
        for result in results:
            rid = bytes.fromhex(result.id) if result.id else b""
            outcome = "accepted" if result.status == "accepted" else (
                "duplicate" if result.status == "duplicate" else (result.reason or "invalid"))
            outcomes.append((rid, outcome))
            if outcome == "blocked" and rid:
                self._skip.add(rid)
        self.stats["records_in"] += sum(1 for _, o in outcomes if o == "accepted")
        actions = self.gossip.on_records_received(source, outcomes, now, relay=relay, score=score)
        self._run_actions(actions)
        if any(o == "accepted" for _, o in outcomes):
            await self._after_accept()
        return list(results)

    def _on_ingested(self, results: Iterable[Any], source: str) -> None:
        """Store listener: records this hub published (API, CLI through serve, import) are pushed at once."""
        if source not in ("local", "api", "import"):
            return
        now = self.now_ms()
        for result in results:
            if result.status == "accepted" and result.id:
                self._run_actions(self.gossip.on_local_record(bytes.fromhex(result.id), now))
        self._spawn(self._after_accept())

    async def _after_accept(self) -> None:
        counts = await self.store.read(self.store.counts)
        members, profiles = counts.get("members", 0), counts.get("profile", 0)
        if members != self._members:
            self._skip.clear()  # membership changed: refused records may now be accepted
        if (members, profiles) != (self._members, self._profiles):
            # A new member, or a new profile (which may name new peer URLs): in an association whose members
            # are all founders, membership never changes, and peers are learnt from profiles alone.
            self._members, self._profiles = members, profiles
            await self.discover_from_profiles()

    async def discover_from_profiles(self) -> None:
        """Learn peer URLs from the current profiles of members (PRODUCT.md §3)."""
        now = self.now_ms()
        for url in await self.store.read(self.store.member_peer_urls):
            with contextlib.suppress(ValueError):
                self.peers.discover(url.rstrip("/"), now)

    # -- records out -----------------------------------------------------------------------------------------

    def _run_actions(self, actions: Iterable[Any]) -> None:
        for action in actions:
            if isinstance(action, PushAction):
                self._spawn(self._push(action.peer, list(action.record_ids)))
            elif isinstance(action, PeerDropped):
                log.warning("dropped peer %s: score %d after invalid records", action.peer, action.score)
                self.stats["peers_dropped"] += 1

    async def _push(self, peer: str, ids: list[bytes], *, announce: bool = True) -> None:
        """Announce ids, then send only the records the peer wants (PRODUCT.md §3: only what it lacks)."""
        assert self.client is not None
        if self._dropped(peer):
            return  # dropped after this push was planned (an Offer of the session that dropped it)
        before = self.client.bytes_out
        try:
            want = ids
            if announce:
                want = await self.client.announce(peer, ids)
                self.stats["push_announce"] += 1
            if want:
                raws = await self.store.read(self.store.raws_by_ids, want)
                await self.client.push(peer, raws)
                self.stats["push_records"] += len(raws)
            self.gossip.on_push_result(peer, ids, True, self.now_ms(), bytes_out=self.client.bytes_out - before)
        except (PeerUnavailable, WireError) as exc:
            log.info("push to %s failed: %s", peer, exc)
            self.gossip.on_push_result(peer, ids, False, self.now_ms(), bytes_out=self.client.bytes_out - before)

    # -- blobs on demand -------------------------------------------------------------------------------------

    async def fetch_blob(self, digest: bytes, size: int, author: bytes) -> bytes | None:
        """Fetch a blob this hub lacks from peers by hash, verify the hash, store it and return it; None when
        no peer asked has it (or it is over ``max_blob_bytes``). Concurrent requests for one hash share one
        fetch. ``author`` is the hub of the guide that names it, asked first: it surely has it.
        """
        if size > self.limits.max_blob_bytes or self._stopped:
            return None
        task = self._blob_fetches.get(digest)
        if task is None:
            task = asyncio.create_task(self._fetch_blob(digest, author))
            self._blob_fetches[digest] = task
            task.add_done_callback(lambda _: self._blob_fetches.pop(digest, None))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await asyncio.shield(task)  # a client that goes away must not cancel the others' fetch

    async def _fetch_blob(self, digest: bytes, author: bytes) -> bytes | None:
        assert self.client is not None
        peers = sorted((p for p in self.peers if p.state in CONTACTABLE_STATES),
                       key=lambda p: (p.hub_id != author, p.state != "healthy"))
        for peer in peers[:BLOB_PEERS_TRIED]:
            try:
                data = await self.client.blob(peer.url, digest)
            except PeerUnavailable as exc:
                log.info("blob %s not fetched from %s: %s", digest.hex()[:12], peer.url, exc)
                continue
            if hashlib.sha256(data).digest() != digest:
                # The name is the hash, so the peer provably sent the wrong bytes: refused, and it costs score
                # like an invalid record (we dialed it, so the sender is known).
                log.warning("peer %s sent a blob that does not match its hash %s", peer.url, digest.hex())
                self.stats["blobs_refused"] += 1
                if self.peers.record_outcomes(peer.url, ["invalid"], self.now_ms()):
                    self._run_actions([PeerDropped(peer.url, peer.score)])
                continue
            try:
                await self.store.read(self.store.put_blob, data, digest)
            except (ProtocolError, ValueError, OSError) as exc:  # over max_blob_bytes, or the disk failed
                log.warning("blob %s fetched from %s not stored: %s", digest.hex()[:12], peer.url, exc)
                return None
            self.stats["blobs_fetched"] += 1
            return data
        return None

    # -- anti-entropy ----------------------------------------------------------------------------------------

    async def _sync_loop(self) -> None:
        while True:
            delay = self.peers.next_sync_delay_ms() / 1000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            self._wake.clear()
            peer = self.peers.choose_sync_peer(self.now_ms())
            if peer is None:
                continue
            try:
                await self.sync_with(peer.url)
            except Exception:  # a bug must not stop federation for good; log it and try again next round
                log.exception("anti-entropy with %s failed", peer.url)
            await self.save_peers()

    async def sync_with(self, peer: str) -> Done | None:
        """One anti-entropy session with ``peer``; a new hub pages through the peer's records instead."""
        assert self.client is not None
        now = self.now_ms()
        try:
            info = await self.client.info(peer)
            self.peers.set_hub_id(peer, info.hub)
            own = await self.store.read(self.store.association_id)
            if own is None:
                await catch_up(self.client, self.store, peer, self.limits, now_ms=self.now_ms)
                self.peers.record_success(peer, self.now_ms())
                return None
            if info.association and info.association != own:
                log.warning("peer %s belongs to another association; dropping it", peer)
                self.peers.record_outcomes(peer, ["invalid"] * 100, now)
                return None
            done = await self._session(peer)
        except (PeerUnavailable, WireError) as exc:
            log.info("anti-entropy with %s failed: %s", peer, exc)
            self.peers.record_failure(peer, self.now_ms())
            return None
        self.peers.record_success(peer, self.now_ms())
        if done is not None:
            self.peers.record_sync(peer, self.now_ms(), need=done.need)
            self.stats["sync_bytes"] += done.bytes_sent + done.bytes_received
            self.stats["sync_sessions"] += 1
        return done

    async def _session(self, peer: str) -> Done | None:
        assert self.client is not None
        session = SyncSession(await self.sync_storage(), self.limits)
        pending = session.start()
        while pending:
            action = pending.pop(0)
            if isinstance(action, SendReconcile):
                pending.extend(session.on_reply(await self.client.sync(peer, action.msg)))
            elif isinstance(action, Fetch):
                ids = [i for i in action.record_ids if i not in self._skip]
                if ids:
                    await self.receive(peer, await self.client.fetch(peer, ids), relay=action.relay)
                if self._dropped(peer):
                    return None  # its records cost it its place: send it nothing more, not even our offer
            elif isinstance(action, Offer):
                # The session proved the peer lacks these: send them without announcing first.
                self._spawn(self._push(peer, list(action.record_ids), announce=False))
            elif isinstance(action, Done):
                return action
        return None


async def catch_up(client: PeerClient, store: Any, peer: str, limits: Limits, *,
                   now_ms: Callable[[], int] = _now_ms,
                   progress: Callable[[int, int], None] | None = None) -> int:
    """Stream every record of ``peer`` in (created_ms, id) pages of ``limits.fetch_batch`` and ingest them.

    For a new or long-offline hub this is cheaper than reconciliation: no id lists, one request per page.
    ``progress(done, total)`` is called after each page (the CLI draws a bar with it). Returns records accepted.
    Bounded: at most ``total / fetch_batch + 10`` pages, so a peer that keeps growing cannot hold us forever.

    Raises:
        PeerUnavailable, WireError: the peer failed or sent a malformed page.
    """
    info = await client.info(peer)
    total = max(info.records, 1)
    after: tuple[int, bytes] | None = None
    accepted = done = 0
    # The charter first, by id: every other record is checked against it, and pages come in creation-time
    # order, where a record from a hub whose clock runs slow (or an archive imported later) may sort first.
    expected = getattr(store, "expected_association", None)
    if expected is not None and await store.read(store.charter) is None:
        charter = await client.fetch(peer, [expected])
        if charter:
            results = await store.ingest_async(charter, now_ms=now_ms(), source=peer)
            accepted += sum(1 for r in results if r.status == "accepted")
    for _ in range(total // max(limits.fetch_batch, 1) + 10):
        raws, after = await client.page(peer, after, limits.fetch_batch)
        if raws:
            results = await store.ingest_async(raws, now_ms=now_ms(), source=peer)
            accepted += sum(1 for r in results if r.status == "accepted")
            done += len(raws)
        if progress is not None:
            progress(done, total)
        if after is None:
            break
    return accepted


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    fed = app[FED_KEY]
    await fed.start()
    yield
    await fed.stop()


async def _on_shutdown(app: web.Application) -> None:
    """Stop gossip before aiohttp waits for in-flight requests (its shutdown order: stop listening,
    on_shutdown, wait for handlers, cleanup): otherwise sync rounds and pushes to peers that are shutting down
    too keep the wait busy."""
    await app[FED_KEY].stop()


def setup(app: web.Application) -> None:
    """Add federation to a hub app made by ``hub.app.make_app``: routes and the background gossip task."""
    from hub.app import BLOB_FETCH_KEY, HOME_KEY, STORE_KEY, TRAFFIC_KEY
    from hub.metrics import COLLECTORS_KEY

    home, store = app[HOME_KEY], app[STORE_KEY]
    fed = Federation(home, store, store.limits if hasattr(store, "limits") else home.limits())
    app[FED_KEY] = fed
    app[BLOB_FETCH_KEY] = fed.fetch_blob  # the API and web pages fetch missing attachments through it
    app[TRAFFIC_KEY] = fed.traffic
    app[COLLECTORS_KEY].append(fed.metric_families)
    add_routes(app, fed)
    app.cleanup_ctx.append(_lifecycle)
    app.on_shutdown.append(_on_shutdown)
