"""The one module that runs federation for a hub: drives the sans-IO core (peers, gossip, sync, session) over
aiohttp.

``setup(app)`` is called by ``hub.app.make_app``; it adds ``/fed/v1/session`` (authenticated peer sessions,
``federation/transport.py``) and ``/fed/v1/info``, and a background task that pushes new records at once
(announced ids coalesced for ``session_batch_ms``), runs anti-entropy with a random peer every
``sync_interval_ms`` (±25 %), retries deferred records whose time has come, and picks up peers an operator
added or removed in config.toml within a second. Records from peers enter through ``Store.ingest_async`` like
every other record (STYLE.md "One way in"), with the session's proven hub as their ``origin``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import hashlib
import logging
import random
import time
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import aiohttp
from aiohttp import web

from protocol.errors import ProtocolError
from protocol.limits import Limits

from . import peering
from . import session as sx
from .catchup import catch_up
from .client import PeerClient, PeerUnavailable
from .gossip import Gossip, PeerDropped, PushAction
from .negentropy import Storage
from .peers import CONTACTABLE_STATES, PENALISED_REASONS, PeerTable
from .routes import add_routes
from .status import session_rows
from .sync import Done, Fetch, Offer, SendReconcile, SyncSession
from .transport import PeerConn
from .wire import WireError

__all__ = ["FED_KEY", "Federation", "catch_up", "setup"]

log = logging.getLogger("coophub.federation")
#: Peers asked for one missing blob, one after another: the guide's author first, then healthy peers. A blob
#: is asked of a few peers only, so one download request costs this hub a bounded number of requests.
BLOB_PEERS_TRIED = 4
#: (peer, record id) pairs whose record that peer sent and we refused as an objective fault: never fetched
#: from that peer again (a bounded LRU; an evicted pair costs one more fetch, scored again).
REFUSED_SKIP_CAPACITY = 10_000
#: How often config.toml is re-read for peers an operator added or removed (`coophub peers add/remove`).
CONFIG_POLL_S = 1.0
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
        self._refused: OrderedDict[tuple[str, bytes], None] = OrderedDict()  # see REFUSED_SKIP_CAPACITY
        self._ingesting: Counter[bytes] = Counter()  # ids of records receive() is ingesting right now
        self._outbox: dict[str, dict[bytes, None]] = {}  # peer -> ids to announce, coalesced
        self._flushing: set[str] = set()
        self.replay = sx.ReplayCache(2 * limits.max_future_skew_ms)
        self._config_mtime = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._members = -1
        self._profiles = -1
        self._stopped = False

    # -- lifecycle -------------------------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        now = self.now_ms()
        for row in await self.store.read(self.store.list_peers):
            self._restore_peer(row, now)
        for url in self.home.config.peers:
            with contextlib.suppress(ValueError):
                self.peers.add(url.rstrip("/"), now)
        await self.discover_from_profiles()
        self.client = self.make_client(aiohttp.ClientSession())
        self.store.add_listener(self._on_ingested)
        self._spawn(self._sync_loop())
        self._spawn(self._config_loop())

    def make_client(self, http: aiohttp.ClientSession) -> PeerClient:
        """The peer client of this hub: its key and association proven in every handshake, this federation
        answering the requests peers make over sessions we dialed."""
        return PeerClient(http, self.limits, self.public_url, key=self.home.key, association=self._association,
                          handler=functools.partial(peering.serve, self), expect=self._expected_key,
                          on_open=functools.partial(peering.on_open, self),
                          now_ms=self.now_ms)

    def _association(self) -> bytes | None:
        association: bytes | None = self.store.expected_association or self.store.association_id()
        return association

    def _expected_key(self, url: str) -> bytes | None:
        return self.peers.get(url).hub_id if url in self.peers else None

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
            await self.client.close()
            await self.client.session.close()
            # Closed transports release their sockets on the loop's next turn (aiohttp's "graceful shutdown"):
            # give it that turn, or a loop closed right after leaves them to the garbage collector, unclosed.
            await asyncio.sleep(0)

    def traffic(self) -> dict[str, int]:
        """Counters since start: requests this hub served (``served_*``) and made (``requests``, ``bytes_out``,
        ``bytes_in``), records pushed and received, anti-entropy sessions and their Negentropy bytes."""
        made = {"requests": self.client.requests, "bytes_out": self.client.bytes_out,
                "bytes_in": self.client.bytes_in, "sessions_opened": self.client.sessions_opened,
                "sessions": self.client.open_peers()} if self.client else {}
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

    def peer_sessions(self) -> list[dict[str, Any]]:
        """Every peer's session state, score, last contact and lag, read-only (federation/status.py)."""
        return session_rows(self)

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

    async def remove_peer(self, url: str) -> None:
        """An operator removed a peer while serving: close its session and forget it."""
        url = url.rstrip("/")
        if url in self.peers:
            self.peers.remove(url)
        conn = self.client.conns.get(url) if self.client else None
        if conn is not None:
            await conn.close("going-away", "the operator removed this peer")

    async def _config_loop(self) -> None:
        """Apply `coophub peers add` / `peers remove` (edits of config.toml) within a second, no restart."""
        from hub.home import HubConfig

        path = self.home.config_path
        with contextlib.suppress(OSError):
            self._config_mtime = path.stat().st_mtime
        configured = {u.rstrip("/") for u in self.home.config.peers}
        while True:
            await asyncio.sleep(CONFIG_POLL_S)
            if self.client is not None:
                self.stats["sessions_duplicate_closed"] += await self.client.close_idle_duplicates(self.now_ms())
            try:
                mtime = path.stat().st_mtime
                if mtime == self._config_mtime:
                    continue
                self._config_mtime = mtime
                config = HubConfig.from_toml(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:  # a half-written or broken file: keep what we have
                log.info("config.toml not re-read: %s", exc)
                continue
            now = {u.rstrip("/") for u in config.peers}
            for url in sorted(now - configured):
                with contextlib.suppress(ValueError):
                    self.add_peer(url)
                    log.info("peer %s added by the operator", url)
            for url in sorted(configured - now):
                await self.remove_peer(url)
                log.info("peer %s removed by the operator", url)
            configured = now
            self.home.config.peers = list(config.peers)

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

    # -- sessions (federation/peering.py) ---------------------------------------------------------------------

    async def accept_session(self, request: web.Request) -> web.StreamResponse:
        return await peering.accept_session(self, request)

    def note_inbound(self, conn: PeerConn) -> None:
        peering.note_inbound(self, conn)

    async def wanted(self, ids: list[bytes]) -> list[bytes]:
        return await peering.wanted(self, ids)

    async def receive_push(self, conn: PeerConn, raws: list[bytes]) -> list[Any]:
        return await peering.receive_push(self, conn, raws)

    async def receive(self, source: str, raws: list[bytes], *, relay: bool = True,
                      score: bool = True, origin: bytes | None = None) -> list[Any]:
        """Ingest records from a peer, score the peer, relay what was new, and learn peers from profiles.

        ``source`` is the peer-table key of the session they came over, so the peer is scored for objective
        faults only (``PeerTable.record_outcomes``); ``origin`` is its proven hub key (quarantine decides on it).
        """
        now = self.now_ms()
        ids = [hashlib.sha256(raw).digest() for raw in raws]
        self._ingesting.update(ids)
        try:
            results = await self.store.ingest_async(raws, now_ms=now, source=source, origin=origin)
        finally:
            self._ingesting.subtract(ids)
            self._ingesting += Counter()  # drop zero counts
        outcomes = []
        for result in results:
            rid = bytes.fromhex(result.id) if result.id else b""
            outcome = "accepted" if result.status == "accepted" else (
                "duplicate" if result.status == "duplicate" else (result.reason or "invalid"))
            outcomes.append((rid, outcome))
            if outcome == "blocked" and rid:
                self._skip.add(rid)
            elif outcome in PENALISED_REASONS and rid:
                self._refused[(source, rid)] = None
                if len(self._refused) > REFUSED_SKIP_CAPACITY:
                    self._refused.popitem(last=False)
        self.stats["records_in"] += sum(1 for _, o in outcomes if o == "accepted")
        actions = self.gossip.on_records_received(source, outcomes, now, relay=relay, score=score)
        self._run_actions(actions)
        if any(o == "accepted" for _, o in outcomes):
            await self._after_accept()
        return list(results)

    def _on_ingested(self, results: Iterable[Any], source: str) -> None:
        """Store listener: records this hub published (API, CLI through serve, import) are pushed at once, and
        so are deferred records the store took in later (their reference arrived, or their time came).
        ``Store.retry_due`` runs in a worker thread and calls listeners there: hop to the event loop."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            if self._loop is not None and not self._stopped:
                self._loop.call_soon_threadsafe(self._on_ingested, list(results), source)
            return
        now = self.now_ms()
        local = source in ("local", "api", "import")
        fresh = False
        for result in results:
            if result.status != "accepted" or not result.id:
                continue
            rid = bytes.fromhex(result.id)
            if local:
                self._run_actions(self.gossip.on_local_record(rid, now))
                fresh = True
            elif rid not in self._ingesting:  # not the batch receive() relays itself: a retried record
                self.stats["deferred_landed"] += 1
                self._run_actions(self.gossip.on_records_received(source, [(rid, "accepted")], now, score=False))
                fresh = True
        if fresh:
            self._spawn(self._after_accept())

    async def _after_accept(self) -> None:
        counts = await self.store.read(self.store.counts)
        members, profiles = counts.get("members", 0), counts.get("profile", 0)
        if members != self._members:
            self._skip.clear()  # membership changed: refused records may now be accepted
            await peering.refresh_roles(self)
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
                self._queue_push(action.peer, action.record_ids)
            elif isinstance(action, PeerDropped):
                log.warning("dropped peer %s: score %d after invalid records", action.peer, action.score)
                self.stats["peers_dropped"] += 1
                conn = self.client.conns.get(action.peer) if self.client else None
                if conn is not None:
                    self._spawn(conn.close("dropped", "your score ran out after invalid records"))

    def _queue_push(self, peer: str, ids: Iterable[bytes]) -> None:
        """Coalesce ids for ``peer``: one announce per ``session_batch_ms`` (or per ``push_batch`` ids)."""
        box = self._outbox.setdefault(peer, {})
        box.update(dict.fromkeys(ids))
        if peer not in self._flushing:
            self._flushing.add(peer)
            self._spawn(self._flush(peer))

    async def _flush(self, peer: str) -> None:
        try:
            await asyncio.sleep(self.limits.session_batch_ms / 1000)
            while self._outbox.get(peer):
                box = self._outbox[peer]
                ids = list(box)[:self.limits.push_batch]
                for i in ids:
                    del box[i]
                await self._push(peer, ids)
        finally:
            self._flushing.discard(peer)
            if not self._outbox.get(peer):
                self._outbox.pop(peer, None)
            elif not self._stopped:  # queued while the last push ran
                self._flushing.add(peer)
                self._spawn(self._flush(peer))

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
            await self.retry_deferred()
            peer = self.peers.choose_sync_peer(self.now_ms())
            if peer is None:
                continue
            try:
                await self.sync_with(peer.url)
            except Exception:  # a bug must not stop federation for good; log it and try again next round
                log.exception("anti-entropy with %s failed", peer.url)
            await self.save_peers()

    async def retry_deferred(self) -> None:
        """Store the deferred records whose time has come (``Store.retry_due``); they are relayed like news."""
        try:
            await asyncio.to_thread(self.store.retry_due, self.now_ms())
        except RuntimeError:  # the store closed under us (shutdown)
            return

    async def sync_with(self, peer: str) -> Done | None:
        """One anti-entropy session with ``peer``; a new hub pages through the peer's records instead.

        The session's handshake proved the peer's key and association, so no ``info`` round trip is made."""
        assert self.client is not None
        now = self.now_ms()
        try:
            own = await self.store.read(self.store.association_id)
            if own is None:
                await catch_up(self.client, self.store, peer, self.limits, now_ms=self.now_ms)
                self.peers.record_success(peer, self.now_ms())
                return None
            done = await self._session(peer)
        except (PeerUnavailable, WireError) as exc:
            log.info("anti-entropy with %s failed: %s", peer, exc)
            if getattr(exc, "close_reason", "") == "wrong-association" and peer in self.peers:
                log.warning("peer %s belongs to another association; dropping it", peer)
                self.peers.record_outcomes(peer, ["invalid"] * 100, now)
                return None
            if peer in self.peers:
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
                ids = [i for i in action.record_ids if i not in self._skip and (peer, i) not in self._refused]
                held = await self.store.read(self.store.held, ids) if ids else set()
                ids = [i for i in ids if i not in held]  # deferred or quarantined here: waiting, not lacking
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
    from hub.app import BLOB_FETCH_KEY, HOME_KEY, PEER_SESSIONS_KEY, STORE_KEY, TRAFFIC_KEY
    from hub.metrics import COLLECTORS_KEY

    home, store = app[HOME_KEY], app[STORE_KEY]
    fed = Federation(home, store, store.limits if hasattr(store, "limits") else home.limits())
    app[FED_KEY] = fed
    app[BLOB_FETCH_KEY] = fed.fetch_blob  # the API and web pages fetch missing attachments through it
    app[TRAFFIC_KEY] = fed.traffic
    app[PEER_SESSIONS_KEY] = fed.peer_sessions  # peers list, status and the network page read it
    app[COLLECTORS_KEY].append(fed.metric_families)
    add_routes(app, fed)
    app.cleanup_ctx.append(_lifecycle)
    app.on_shutdown.append(_on_shutdown)
