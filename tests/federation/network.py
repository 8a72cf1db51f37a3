"""Real hubs on 127.0.0.1 for the federation integration tests (tests/federation/test_network.py).

Each :class:`Hub` is the real application — ``hub.app.make_app(home, store)`` with federation on — with its
own home directory (``hub.home.Home``: key file, config.toml, API token), its own SQLite file and its own
listening socket on a random free port. All hubs run in the test's event loop (several aiohttp ``AppRunner``
instances), which is fast and lets a test reach into a hub's :class:`~federation.driver.Federation`.

Also here: :class:`Proxy`, a cuttable TCP forwarder used to partition a network for real (the only links
between two halves go through it), :class:`HostilePeer`, a fake hub that speaks the peer session but
serves tampered records and blobs, :func:`push_raw` (a push over a session opened with any key), and
:func:`eventually`, the one way these tests wait: a bounded poll.

Limits are short (:data:`FAST_LIMITS`) and reach every part of a hub through config.toml's ``[limits]``:
``Home.limits()`` feeds ``Store(limits=...)``, which the federation driver reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from federation import session, transport, wire
from federation.client import PeerClient
from federation.driver import FED_KEY, Federation
from federation.negentropy import Negentropy, Storage
from hub.app import make_app
from hub.home import Home
from hub.store import Store
from protocol import DEFAULT_LIMITS, HubKey, Record, build_record, format_hub_id

__all__ = [
    "DEADLINE_S", "FAST_LIMITS", "HostilePeer", "Hub", "Network", "Proxy", "eventually", "guide_body",
    "lacking", "now_ms", "tamper",
]

#: Short intervals so that anti-entropy and backoff happen many times within a test (defaults are 5 s and
#: 1 s–5 min). The backoff cap matters most: a peer that was down must be retried within about a second.
FAST_LIMITS = {"sync_interval_ms": 300, "backoff_base_ms": 100, "backoff_max_ms": 1000}
#: How long any wait may take before the test fails. Convergence normally takes well under 2 s; the margin
#: is for a loaded 2-core CI machine.
DEADLINE_S = 20.0
POLL_S = 0.05


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def eventually(check: Callable[[], Awaitable[str | None]] | Callable[[], str | None],
                     what: str, deadline_s: float = DEADLINE_S, poll_s: float = POLL_S) -> float:
    """Poll ``check`` every ``poll_s`` until it returns None (done); return the seconds it took.

    ``check`` returns a short description of what is still missing, which the failure message quotes.
    """
    start = time.monotonic()
    missing: str | None = "not checked yet"
    while time.monotonic() - start < deadline_s:
        result = check()
        missing = await result if asyncio.iscoroutine(result) else result  # type: ignore[assignment]
        if missing is None:
            return time.monotonic() - start
        await asyncio.sleep(poll_s)
    raise AssertionError(f"after {deadline_s:.0f} s, {what}: still missing {missing}")


def lacking(hubs: Iterable[Hub], ids: Iterable[str]) -> str | None:
    """None when every hub holds every id, else which hubs lack which (short) ids: a check for eventually."""
    ids = list(ids)
    gaps = {h.name: h.missing(ids) for h in hubs}
    gaps = {name: short for name, short in gaps.items() if short}
    return str(gaps) if gaps else None


def guide_body(title: str, **extra: Any) -> dict[str, Any]:
    """A guide body as the JSON API takes it."""
    return {"title": title, "summary": f"Notes on {title.lower()}.",
            "body": f"# {title}\n\nWhat we learned.\n",
            "license": "CC-BY-SA-4.0", "tags": ["practice"], "language": "en", **extra}


def tamper(raw: bytes, old: bytes, new: bytes) -> bytes:
    """``raw`` with its first ``old`` replaced by ``new`` (same length): still canonical msgpack, but the
    signature no longer matches."""
    assert len(old) == len(new) and old in raw, (old, new)
    return raw.replace(old, new, 1)


def _listening_socket(port: int = 0) -> socket.socket:
    """A bound (not yet listening) socket on 127.0.0.1; port 0 picks a free one. Binding before the app is
    made means the hub's URL is known without the race of "find a free port, close it, bind it again"."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


@dataclass
class Hub:
    """One real hub: a home directory, a SQLite store and an aiohttp server, which can be stopped and
    restarted on the same home, database and port."""

    name: str
    path: Path
    home: Home
    net: Network
    port: int
    seed: int
    store: Store | None = None
    runner: web.AppRunner | None = None
    _sock: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def key(self) -> HubKey:
        return self.home.key

    @property
    def hub_id(self) -> str:
        return self.home.hub_id

    @property
    def running(self) -> bool:
        return self.runner is not None

    @property
    def fed(self) -> Federation:
        assert self.runner is not None, f"{self.name} is not running"
        return self.runner.app[FED_KEY]

    def add_peers(self, *urls: str) -> None:
        """Name seed peers in config.toml (read when the hub starts)."""
        self.home.config.peers = list(dict.fromkeys([*self.home.config.peers, *urls]))
        self.home.save_config()

    async def start(self) -> None:
        """Open the home and database and serve on this hub's port; federation starts with the app."""
        assert self.runner is None, f"{self.name} is already running"
        self.home = Home.open(self.path)  # as `coophub serve` does: everything from the files
        limits = self.home.limits()
        self.store = Store(self.home.db_path, limits=limits, blobs_dir=self.home.blobs_dir,
                           association=self.home.association)
        if self.net.charter is not None and not self.store.have([self.net.charter.id]):
            # Every hub is set up with the charter, as `coophub join` does before a hub serves.
            await self.store.ingest_async([self.net.charter.raw], now_ms=now_ms(), source="import")
        app = make_app(self.home, self.store)
        # Seed the hub's one Random (shared by its peer table and driver) so peer choices can be replayed
        # from the printed seed as far as timing allows.
        app[FED_KEY].rng.seed(self.seed)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        sock = self._sock or _listening_socket(self.port)
        self._sock = None
        try:
            await web.SockSite(runner, sock).start()
        except BaseException:
            await runner.cleanup()
            raise
        self.runner = runner

    async def stop(self) -> None:
        """Stop serving (federation saves its peers), then close the database: as if the process ended."""
        if self.runner is not None:
            runner, self.runner = self.runner, None
            await runner.cleanup()
            await asyncio.sleep(0)  # the server's closed transports release their sockets on the next turn
        if self.store is not None:
            store, self.store = self.store, None
            await asyncio.to_thread(store.close)
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    # -- reading and publishing -------------------------------------------------------------------------

    def ids(self) -> set[str]:
        """Hex ids of every stored record."""
        assert self.store is not None, f"{self.name} is stopped"
        return {bytes(i).hex() for _, i in self.store.sync_items()}

    def missing(self, ids: Iterable[str]) -> list[str]:
        have = self.ids()
        return [i[:12] for i in ids if i not in have]

    def status(self) -> dict[str, Any]:
        assert self.store is not None
        return self.store.status(self.hub_id, now_ms())

    async def publish(self, kind: str, body: dict[str, Any]) -> str:
        """Publish through the hub's JSON API (signed by the hub, stored, pushed at once); returns the id.

        Raises:
            AssertionError: the hub refused it (the message quotes its answer).
        """
        status, data = await self.try_publish({"kind": kind, "body": body})
        assert status == 200, f"{self.name} refused {kind}: {status} {data}"
        return str(data["id"])

    async def try_publish(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """POST /api/v1/publish; returns (HTTP status, JSON answer)."""
        headers = {"Authorization": f"Bearer {self.home.token}"}
        async with self.net.http.post(f"{self.url}/api/v1/publish", json=request, headers=headers) as resp:
            return resp.status, await resp.json()

    async def upload_blob(self, data: bytes) -> str:
        headers = {"Authorization": f"Bearer {self.home.token}"}
        async with self.net.http.post(f"{self.url}/api/v1/blobs", data=data, headers=headers) as resp:
            assert resp.status == 200, await resp.text()
            return str((await resp.json())["hash"])

    async def get(self, path: str) -> tuple[int, bytes]:
        async with self.net.http.get(f"{self.url}{path}") as resp:
            return resp.status, await resp.read()


class Network:
    """Hubs, proxies and fake peers for one test, all closed by :meth:`close`."""

    def __init__(self, tmp: Path, seed: int) -> None:
        self.tmp = tmp
        self.rng = random.Random(seed)
        self.hubs: list[Hub] = []
        self.charter: Record | None = None
        self.proxies: list[Proxy] = []
        self.fakes: list[HostilePeer] = []
        self.http = aiohttp.ClientSession()

    def hub(self, name: str) -> Hub:
        """A new hub home with its own port (not started). Limits are FAST_LIMITS, in config.toml."""
        sock = _listening_socket()
        port = int(sock.getsockname()[1])
        path = self.tmp / name
        home = Home.create(path, name.title(), url=f"http://127.0.0.1:{port}")
        home.config.limits = dict(FAST_LIMITS)
        home.save_config()
        hub = Hub(name, path, home, self, port, self.rng.randrange(2**32), _sock=sock)
        self.hubs.append(hub)
        return hub

    def found(self, founders: list[Hub], needed: int = 1, *, others: Iterable[Hub] = ()) -> Record:
        """Sign a charter by ``founders[0]`` naming ``founders``; every hub's config joins its association."""
        body = {"name": "Test Care Co-operatives", "description": "Integration test association.",
                "founders": [h.key.public for h in founders], "endorsements_needed": needed, "schemes": []}
        self.charter = build_record(founders[0].key, bytes(32), "charter", body, now_ms() - 60_000)
        for hub in [*founders, *others]:
            hub.home.config.association_id = self.charter.id.hex()
            hub.home.save_config()
        return self.charter

    def link(self, a: Hub, b: Hub) -> None:
        """a and b know each other as peers."""
        a.add_peers(b.url)
        b.add_peers(a.url)

    def mesh(self, hubs: list[Hub]) -> None:
        """Every hub of ``hubs`` knows every other as a peer."""
        for i, a in enumerate(hubs):
            for b in hubs[i + 1:]:
                self.link(a, b)

    async def proxy(self, target: Hub) -> Proxy:
        proxy = Proxy(target.port)
        await proxy.start()
        self.proxies.append(proxy)
        return proxy

    async def hostile(self, forged: list[bytes], association: bytes) -> HostilePeer:
        fake = HostilePeer(forged, association)
        await fake.start()
        self.fakes.append(fake)
        return fake

    async def start(self, hubs: Iterable[Hub] | None = None) -> None:
        await asyncio.gather(*(h.start() for h in (self.hubs if hubs is None else hubs)))

    async def close(self) -> None:
        await asyncio.gather(*(h.stop() for h in self.hubs), return_exceptions=True)
        for proxy in self.proxies:
            await proxy.close()
        for fake in self.fakes:
            await fake.close()
        await self.http.close()

    async def converged(self, hubs: list[Hub] | None = None) -> None:
        """Wait until the given hubs (default: all running) hold exactly the same records."""
        hubs = [h for h in (hubs or self.hubs) if h.running]

        def check() -> str | None:
            union = set().union(*(h.ids() for h in hubs))
            gaps = {h.name: len(union - h.ids()) for h in hubs}
            return None if not any(gaps.values()) else f"records lacking per hub {gaps}"

        await eventually(check, f"{len(hubs)} hubs converge")


class Proxy:
    """A TCP forwarder 127.0.0.1:<port> → 127.0.0.1:<target> that can be cut (new connections are closed at
    once, open ones are closed) and restored. Peers configured with ``url`` reach the target only through it.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.cut_off = False
        self.refused = 0  # connections closed because the link was cut
        self.forwarded = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    def cut(self) -> None:
        self.cut_off = True
        for writer in list(self._writers):
            writer.close()

    def restore(self) -> None:
        self.cut_off = False

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        # A connection accepted just before the close has a handler task that has not run yet (so is not in
        # _tasks): give such tasks a turn, cancel whatever runs, until none is left.
        while True:
            await asyncio.sleep(0)
            tasks = list(self._tasks)
            if not tasks:
                break
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(0)  # closed transports release their sockets on the loop's next turn

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._serve(reader, writer)
        finally:
            self._tasks.discard(task)
            if not writer.is_closing():
                writer.close()  # cancelled before _serve closed it (e.g. while connecting upstream)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut_off:
            self.refused += 1
            await _close(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            await _close(writer)
            return
        if self.cut_off:  # cut while we connected upstream: a persistent session must not slip through
            self.refused += 1
            await _close(writer)
            await _close(up_writer)
            return
        self.forwarded += 1
        self._writers |= {writer, up_writer}
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self._writers -= {writer, up_writer}
            await _close(writer)
            await _close(up_writer)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await reader.read(65536):
            if writer.is_closing():
                return
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(OSError):
        if not writer.is_closing():
            writer.close()  # either side closing ends the whole connection: the cut must be total


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


@dataclass
class HostilePeer:
    """A fake hub that speaks the peer session for ``association`` (a real handshake with its own key) but
    holds only ``forged`` records (tampered bytes), and answers every blob request with the wrong bytes.
    Counts the requests it gets by op, and the sessions opened to it (``requests["session"]``)."""

    forged: list[bytes]
    association: bytes
    key: HubKey = field(default_factory=HubKey.generate)
    requests: dict[str, int] = field(default_factory=dict)
    port: int = 0
    _runner: web.AppRunner | None = None
    _conns: list[Any] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def hub_id(self) -> str:
        return format_hub_id(self.key.public)

    def count(self, name: str) -> int:
        return self.requests.get(name, 0)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/fed/v1/info", self._info)
        app.router.add_get("/fed/v1/session", self._session)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = _listening_socket()
        self.port = int(sock.getsockname()[1])
        await web.SockSite(self._runner, sock).start()

    async def close(self) -> None:
        for conn in self._conns:
            await conn.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def _seen(self, name: str) -> None:
        self.requests[name] = self.requests.get(name, 0) + 1

    def _info_body(self) -> dict[str, Any]:
        return {"version": wire.WIRE_VERSION, "hub": self.key.public, "association": self.association,
                "url": self.url, "records": len(self.forged), "limits": {}}

    async def _info(self, request: web.Request) -> web.Response:
        self._seen("info")
        return web.Response(body=wire.encode(self._info_body()), content_type=wire.CONTENT_TYPE)

    async def _session(self, request: web.Request) -> web.StreamResponse:
        async def admit(est: session.Established) -> str:
            return "member"

        ws, conn = await transport.accept(request, self.key, self.association, DEFAULT_LIMITS,
                                          session.ReplayCache(600_000), admit, self._serve)
        if conn is not None:
            self._seen("session")
            self._conns.append(conn)
            await conn.run()
        return ws

    async def _serve(self, conn: Any, op: str, body: Any) -> Any:
        self._seen(op)
        if op == "info":
            return self._info_body()
        if op == "sync":
            # Negentropy over the forged records' (created_ms, id): the receiver finds ids it lacks, fetches
            # them.
            items = [(_created_ms(raw), hashlib.sha256(raw).digest()) for raw in self.forged]
            return Negentropy(Storage(items), 60 * 1024).reconcile(body)
        if op == "fetch":
            wanted = set(body.get("ids", []))
            return {"records": [r for r in self.forged if hashlib.sha256(r).digest() in wanted]}
        if op == "announce":
            return {"ids": []}
        if op == "push":
            return {"results": []}
        if op == "blob":
            return {"data": b"these are not the bytes you are looking for"}
        return {"records": [], "last": []}


def _created_ms(raw: bytes) -> int:
    import msgpack

    return int(msgpack.unpackb(raw, raw=False)[3])


async def push_raw(to: Hub, raws: list[bytes], key: HubKey, association: bytes | None = None) -> list[list[Any]]:
    """Push records to ``to`` over a peer session opened with ``key`` (a real handshake), as a peer would;
    returns [[id hex, status, reason], ...]."""
    association = association or (to.net.charter.id if to.net.charter is not None else bytes(32))
    async with aiohttp.ClientSession() as http:
        client = PeerClient(http, DEFAULT_LIMITS, "", key=key, association=association)
        try:
            results = await client.push(to.url, raws)
        finally:
            await client.close()
    return [[r.id.hex(), r.status, r.reason] for r in results]


async def open_session(to: Hub, key: HubKey, association: bytes | None = None) -> tuple[Any, Any]:
    """A session to ``to`` opened with ``key``: (the PeerClient, its aiohttp session); close both."""
    association = association or (to.net.charter.id if to.net.charter is not None else bytes(32))
    http = aiohttp.ClientSession()
    client = PeerClient(http, DEFAULT_LIMITS, "", key=key, association=association)
    await client.conn(to.url)
    return client, http
