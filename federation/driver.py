"""The one module that runs federation for a hub: drives the sans-IO core (peers, gossip, sync, session) over
aiohttp.

``setup(app, home, store)`` is called by ``hub.app.make_app``; it adds ``/fed/v1/session`` (authenticated peer sessions,
``federation/transport.py``) and ``/fed/v1/info``. Every decision is :class:`~federation.node.FederationNode`'s
(pushes at once, announced ids coalesced for ``session_batch_ms``; anti-entropy with a random peer every
``sync_interval_ms`` ±25 %; retrying deferred records; peers an operator adds or removes in config.toml): this
module feeds it events — records stored, push and sync results, sessions, a timer at the node's next
deadline, config.toml re-read every second — and performs its actions. Records from peers enter through
``Store.ingest_async`` like every other record (STYLE.md "One way in"), with the session's proven hub as
their ``origin``.
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
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import aiohttp
from aiohttp import web

from protocol.limits import Limits

from . import blobs, outgoing, peering
from . import session as sx
from .catchup import catch_up
from .client import PeerClient, PeerUnavailable
from .negentropy import Storage
from .node import (
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
from .peers import PeerTable
from .routes import add_routes
from .status import session_rows
from .store_api import FederationStore
from .sync import Done, Fetch, Offer, SendReconcile, SyncSession
from .transport import PeerConn
from .wire import WireError

__all__ = ["FED_KEY", "Federation", "catch_up", "setup"]

log = logging.getLogger("coophub.federation")
#: How often config.toml is re-read for peers an operator added or removed (`coophub peers add/remove`).
CONFIG_POLL_S = 1.0
_catch_up = catch_up  # sync_with's parameter of that name shadows it
FED_KEY: web.AppKey[Federation] = web.AppKey("federation", t=object)  # type: ignore[arg-type]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Federation:
    """One hub's federation: the I/O around its :class:`~federation.node.FederationNode`.

    Every decision — whom to push to and when, when to reconcile or catch up and with whom, what to skip,
    scoring and dropping — is the node's; this class turns network, store and timer events into node events
    and performs the actions the node returns, nothing else.
    """

    def __init__(self, home: Any, store: FederationStore, limits: Limits, *, rng: random.Random | None = None,
                 now_ms: Callable[[], int] = _now_ms) -> None:
        self.home = home
        self.store = store
        self.limits = limits
        self.now_ms = now_ms
        self.public_url: str = home.config.url.rstrip("/")
        self.rng = rng or random.Random()
        self.stats: Counter[str] = Counter()
        self.node = FederationNode(limits, self.rng, self_urls=[self.public_url] if self.public_url else [],
                                   stats=self.stats)
        self.client: PeerClient | None = None
        self._storage: tuple[int, Storage] | None = None  # (the last row it includes, the storage)
        self._storage_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._lasting: set[asyncio.Task[Any]] = set()  # session readers, the config loop: never drained
        self._blob_fetches: dict[bytes, asyncio.Task[bytes | None]] = {}  # one fetch per hash at a time
        self._ingesting: Counter[bytes] = Counter()  # ids of records receive() is ingesting right now
        self.raws = outgoing.RawCache()  # records received or read lately, for relaying
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0
        self.replay = sx.ReplayCache(2 * limits.max_future_skew_ms)
        self._config_mtime = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped = False

    @property
    def peers(self) -> PeerTable:
        """The node's peer table (``coophub peers list``, status, metrics and tests read it)."""
        return self.node.peers

    # -- lifecycle -------------------------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        now = self.now_ms()
        for row in await self.store.read(self.store.list_peers):
            self._restore_peer(row, now)
        self._act(self.node.configured(self.home.config.peers, now))
        await self.discover_from_profiles()
        self.node.joined = await self.store.read(self.store.association_id) is not None
        self.client = self.make_client(aiohttp.ClientSession())
        self.store.add_listener(self._on_ingested)
        self._act(self.node.start(now))
        self._act(self.node.dial_due(now))
        self._spawn(self._config_loop(), lasting=True)

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
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for task in [*self._tasks, *self._lasting]:
            task.cancel()
        for task in [*self._tasks, *self._lasting]:
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
                "bytes_in": self.client.bytes_in, "wire_bytes_out": self.client.wire_out,
                "wire_bytes_in": self.client.wire_in, "frames": self.client.frames,
                "sessions_opened": self.client.sessions_opened,
                "sessions": self.client.open_peers()} if self.client else {}
        return {**dict(sorted(self.stats.items())), **made}

    async def drain(self, timeout_s: float) -> None:
        """Wait up to ``timeout_s`` for the pushes and fetches already started or queued (a one-shot
        `coophub sync`); the anti-entropy schedule is never among them."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while (remaining := deadline - loop.time()) > 0:
            pending = [t for t in self._tasks if not t.done()]
            if pending:
                await asyncio.wait(pending, timeout=remaining)
            elif self.node.pushes_pending():
                await asyncio.sleep(min(remaining, max(self.limits.session_batch_ms, 1) / 1000))
            else:
                return

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

    def _spawn(self, coro: Any, *, lasting: bool = False) -> None:
        """Run ``coro`` in the background until it ends or federation stops; ``lasting``: it runs as long as
        federation does (a session's reader, the config loop), so :meth:`drain` does not wait for it."""
        if self._stopped:  # a handler still running at shutdown must not start new traffic
            coro.close()
            return
        task = asyncio.create_task(coro)
        tasks = self._lasting if lasting else self._tasks
        tasks.add(task)
        task.add_done_callback(tasks.discard)

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
                     "bytes_in", "bytes_out", "refused", "drop_reason"):
            if name in row and row[name] is not None:
                setattr(peer, name, row[name])
        if isinstance(row.get("hub_id"), str) and row["hub_id"]:
            peer.hub_id = bytes.fromhex(row["hub_id"])

    async def save_peers(self) -> None:
        """Save the peer table, in one write transaction (after each anti-entropy round, and at stop)."""
        rows = []
        for peer in self.peers:
            data = dataclasses.asdict(peer)
            data["hub_id"] = peer.hub_id.hex() if peer.hub_id else ""
            rows.append((peer.url, data))
        if rows:
            await self.store.read(self.store.upsert_peers, rows)

    def add_peer(self, url: str) -> None:
        """An operator added a peer while serving: try it at once.

        Raises:
            ValueError: ``url`` is empty or this hub's own.
        """
        self._act(self.node.peer_added(url, self.now_ms()))

    async def remove_peer(self, url: str) -> None:
        """An operator removed a peer while serving: close its session and forget it."""
        for action in self.node.peer_removed(url):
            if isinstance(action, ClosePeer):
                await self._close(action.peer, "going-away", "the operator removed this peer")

    async def _config_loop(self) -> None:
        """Apply `coophub peers add` / `peers remove` (edits of config.toml) within a second, no restart."""
        path = self.home.config_path
        read_config = type(self.home.config).from_toml  # the home's own config class: federation imports no hub
        with contextlib.suppress(OSError):
            self._config_mtime = path.stat().st_mtime
        while True:
            await asyncio.sleep(CONFIG_POLL_S)
            self._act(self.node.dial_due(self.now_ms()))
            if self.client is not None:
                self.stats["sessions_duplicate_closed"] += await self.client.close_idle_duplicates(self.now_ms())
            try:
                mtime = path.stat().st_mtime
                if mtime == self._config_mtime:
                    continue
                self._config_mtime = mtime
                config = read_config(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:  # a half-written or broken file: keep what we have
                log.info("config.toml not re-read: %s", exc)
                continue
            log.info("config.toml re-read: peers %s", ", ".join(config.peers) or "none")
            await self._apply(self.node.configured(config.peers, self.now_ms()))
            self.home.config.peers = list(config.peers)

    # -- performing the node's actions -----------------------------------------------------------------------

    def _act(self, actions: Iterable[NodeAction]) -> None:
        """Perform actions in the background, then re-arm the node's timer."""
        for action in actions:
            self._perform(action)
        self._arm()

    async def _apply(self, actions: Iterable[NodeAction]) -> None:
        """Like :meth:`_act`, but the store reads the node asked for are done before returning (a receive
        that stored a new profile has learnt its peer URLs when it returns)."""
        for action in actions:
            if isinstance(action, RefreshMembership):
                await self._refresh_membership()
            elif isinstance(action, ReviewRoles):
                await peering.refresh_roles(self)
            elif isinstance(action, DiscoverPeers):
                await self.discover_from_profiles()
            else:
                self._perform(action)
        self._arm()

    def _perform(self, action: NodeAction) -> None:
        if isinstance(action, SendAnnounce):
            self._spawn(self._push(action.peer, list(action.record_ids), announce=True,
                                   unasked=list(action.unasked)))
        elif isinstance(action, OpenSession):
            self._spawn(outgoing.open_session(self, action.peer))
        elif isinstance(action, SendRecords):
            self._spawn(self._push(action.peer, list(action.record_ids), announce=False))
        elif isinstance(action, StartSync):
            self._spawn(self._scheduled_sync(action))
        elif isinstance(action, RetryDeferred):
            self._spawn(self.retry_deferred(action.now_ms))
        elif isinstance(action, DropPeer):
            log.warning("dropped peer %s (%s): score %d", action.peer, action.reason, action.score)
            self._spawn(self._close(action.peer, "dropped", "your score ran out after invalid records"
                                    if action.reason == "score" else f"dropped: {action.reason}"))
        elif isinstance(action, ClosePeer):
            self._spawn(self._close(action.peer, "going-away", "the operator removed this peer"))
        elif isinstance(action, RefreshMembership):
            self._spawn(self._refresh_membership())
        elif isinstance(action, ReviewRoles):
            self._spawn(peering.refresh_roles(self))
        elif isinstance(action, DiscoverPeers):
            self._spawn(self.discover_from_profiles())
        elif isinstance(action, SavePeers):
            self._spawn(self.save_peers())

    def _arm(self) -> None:
        """Call the node's :meth:`~FederationNode.tick` at its next deadline (one timer, moved earlier when a
        new deadline comes before it)."""
        deadline = self.node.next_deadline_ms()
        if deadline is None or self._stopped:
            return
        if self._timer is not None:
            if self._timer_at <= deadline:
                return
            self._timer.cancel()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._timer_at = deadline
        self._timer = loop.call_later(max(0, deadline - self.now_ms()) / 1000, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        try:
            self._act(self.node.tick(self.now_ms()))
        except Exception:  # a bug must not stop federation for good, nor spin: log it, try again in a second
            log.exception("federation timer failed")
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at, self._timer = self.now_ms() + 1000, asyncio.get_running_loop().call_later(1, self._on_timer)

    async def _close(self, peer: str, reason: str, detail: str) -> None:
        conn = self.client.conns.get(peer) if self.client else None
        if conn is not None:
            await conn.close(reason, detail)

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

    # -- sessions (federation/peering.py) ---------------------------------------------------------------------

    async def accept_session(self, request: web.Request) -> web.StreamResponse:
        return await peering.accept_session(self, request)

    def note_inbound(self, conn: PeerConn) -> None:
        peering.note_inbound(self, conn)

    async def wanted(self, conn: PeerConn, ids: list[bytes]) -> list[bytes]:
        return await peering.wanted(self, conn, ids)

    async def receive_push(self, conn: PeerConn, raws: list[bytes]) -> list[Any]:
        return await peering.receive_push(self, conn, raws)

    async def receive(self, source: str, raws: list[bytes], *, relay: bool = True, score: bool = True,
                      origin: bytes | None = None, from_author: bool = False) -> list[Any]:
        """Ingest records from a peer and tell the node what became of each (it scores, relays, skips).

        ``source`` is the peer-table key of the session they came over, so the peer is scored for objective
        faults only (``PeerTable.record_outcomes``); ``origin`` is its proven hub key (quarantine decides on it);
        ``from_author``: that hub signed them all (``FederationNode.records_received`` holds their relays).
        """
        now = self.now_ms()
        ids = [hashlib.sha256(raw).digest() for raw in raws]
        self.raws.add(zip(ids, raws, strict=True))
        self._ingesting.update(ids)
        try:
            results = await self.store.ingest_async(raws, now_ms=now, source=source, origin=origin)
        finally:
            self._ingesting.subtract(ids)
            self._ingesting += Counter()  # drop zero counts
        outcomes = [(bytes.fromhex(r.id) if r.id else b"", _outcome(r)) for r in results]
        await self._apply(self.node.records_received(source, outcomes, now, relay=relay, score=score,
                                                     from_author=from_author))
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
        results = list(results)
        accepted = [bytes.fromhex(r.id) for r in results if r.status == "accepted" and r.id]
        if source in ("local", "api") and any(r.status == "quarantined" for r in results):
            self._spawn(peering.introduce(self))  # this applicant's own profile, held here: show it to members
        if source in ("local", "api", "import"):
            self._act(self.node.local_stored(accepted, self.now_ms(), signed_here=source != "import"))
        else:  # not the batch receive() reports itself: records retried from deferred
            self._act(self.node.records_landed(source, [i for i in accepted if i not in self._ingesting],
                                               self.now_ms()))

    async def _refresh_membership(self) -> None:
        counts = await self.store.read(self.store.counts)
        self.node.joined = self.node.joined or counts.get("charter", 0) > 0  # a charter came: reconcile now
        await self._apply(self.node.membership(counts.get("members", 0), counts.get("profile", 0)))

    async def discover_from_profiles(self) -> None:
        """Learn peer URLs from the current profiles of members (PRODUCT.md §3)."""
        urls = await self.store.read(self.store.member_peer_urls)
        self._act(self.node.discovered(urls, self.now_ms()))

    # -- records out -----------------------------------------------------------------------------------------

    async def _push(self, peer: str, ids: list[bytes], *, announce: bool = True,
                    unasked: list[bytes] | None = None) -> None:
        await outgoing.push(self, peer, ids, announce=announce, unasked=unasked or [])

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
            task = asyncio.create_task(blobs.fetch(self, digest, author))
            self._blob_fetches[digest] = task
            task.add_done_callback(lambda _: self._blob_fetches.pop(digest, None))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await asyncio.shield(task)  # a client that goes away must not cancel the others' fetch

    # -- anti-entropy ----------------------------------------------------------------------------------------

    async def _scheduled_sync(self, action: StartSync) -> None:
        try:
            await self.sync_with(action.peer, catch_up=action.catch_up)
        except Exception:  # a bug must not stop federation for good; log it and try again next round
            log.exception("anti-entropy with %s failed", action.peer)

    async def retry_deferred(self, now_ms: int | None = None) -> None:
        """Store the deferred records whose time has come (``Store.retry_due``); they are relayed like news."""
        try:
            await asyncio.to_thread(self.store.retry_due, self.now_ms() if now_ms is None else now_ms)
        except RuntimeError:  # the store closed under us (shutdown)
            return

    async def sync_with(self, peer: str, *, catch_up: bool | None = None) -> Done | None:
        """One anti-entropy session with ``peer``; a hub with no charter yet pages through the peer's records
        instead (``catch_up``; None: decide from the store). The node hears how it ended.

        The session's handshake proved the peer's key and association, so no ``info`` round trip is made."""
        assert self.client is not None
        ok, done, close_reason = False, None, ""
        need_ids: list[bytes] = []
        try:
            if catch_up is None:
                catch_up = await self.store.read(self.store.association_id) is None
            if catch_up:
                await _catch_up(self.client, self.store, peer, self.limits, now_ms=self.now_ms)
                self.node.joined = await self.store.read(self.store.association_id) is not None
            else:
                done, need_ids = await self._session(peer)
            ok = True
        except (PeerUnavailable, WireError) as exc:
            log.info("anti-entropy with %s failed: %s", peer, exc)
            close_reason = getattr(exc, "close_reason", "")
            if close_reason == "wrong-association":
                log.warning("peer %s belongs to another association; dropping it", peer)
        finally:
            if not self._stopped:
                self._act(self.node.sync_finished(peer, self.now_ms(), ok=ok, need=done.need if done else None,
                                                  need_ids=need_ids, close_reason=close_reason))
        if done is not None:
            self.stats["sync_bytes"] += done.bytes_sent + done.bytes_received
            self.stats["sync_sessions"] += 1
        return done

    async def _session(self, peer: str) -> tuple[Done | None, list[bytes]]:
        assert self.client is not None
        session = SyncSession(await self.sync_storage(), self.limits)
        pending = session.start()
        while pending:
            action = pending.pop(0)
            if isinstance(action, SendReconcile):
                pending.extend(session.on_reply(await self.client.sync(peer, action.msg)))
            elif isinstance(action, Fetch):
                ids = self.node.fetch_filter(peer, action.record_ids)
                held = await self.store.read(self.store.held, ids) if ids else set()
                ids = [i for i in ids if i not in held]  # deferred or quarantined here: waiting, not lacking
                if ids:
                    await self.receive(peer, await self.client.fetch(peer, ids), relay=action.relay)
                if self.node.is_dropped(peer):
                    return None, []  # its records cost it its place: send it nothing more, not even our offer
            elif isinstance(action, Offer):
                self._act(self.node.offer(peer, action.record_ids))
            elif isinstance(action, Done):
                return action, session.need
        return None, []


def _outcome(result: Any) -> str:
    """What the node is told of one ingest result: "accepted", "duplicate", or the refusal/deferral reason."""
    if result.status in ("accepted", "duplicate"):
        return str(result.status)
    return str(result.reason or "invalid")


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


def setup(app: web.Application, home: Any, store: FederationStore) -> Federation:
    """Add federation to a hub app: the ``/fed/v1`` routes, and starting and stopping with the app; return the
    :class:`Federation`. ``hub.app.make_app`` calls it — the one place hub and federation are wired — and hands
    its blob fetcher, traffic counters, peer sessions and metrics to the hub's own app keys, so federation
    imports no hub."""
    fed = Federation(home, store, store.limits)
    app[FED_KEY] = fed
    add_routes(app, fed)
    app.cleanup_ctx.append(_lifecycle)
    app.on_shutdown.append(_on_shutdown)
    return fed
