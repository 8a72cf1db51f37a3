"""A real hub for the boundary and bounds tests: the whole app (API, pages, federation) behind
:class:`hub.bounds.BoundedRunner` — exactly what ``coophub serve`` runs — on 127.0.0.1, port 0, plus raw-socket
helpers for what an HTTP client library will not send (slow heads, stalled or chunked bodies)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from hub.app import LIMITS_KEY, make_app
from hub.bounds import BoundedRunner
from hub.home import Home
from hub.store import Store
from protocol import Limits

__all__ = ["LiveHub", "Raw", "live_hub", "raw_close", "raw_connect", "until"]


@dataclass
class LiveHub:
    home: Home
    store: Store
    app: web.Application
    runner: BoundedRunner
    port: int
    session: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def limits(self) -> Limits:
        return self.app[LIMITS_KEY]

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.home.token}"}

    async def request(self, method: str, path: str, **kwargs: Any) -> tuple[int, dict[str, str], bytes]:
        async with self.session.request(method, self.url + path, **kwargs) as resp:
            return resp.status, dict(resp.headers), await resp.read()

    async def json(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        status, headers, body = await self.request(method, path, **kwargs)
        assert headers.get("Content-Type", "").startswith("application/json"), (status, body[:200])
        return status, json.loads(body)


@asynccontextmanager
async def live_hub(tmp_path: Path, limits: dict[str, int] | None = None, *, name: str = "hub",
                   now_ms: Callable[[], int] | None = None,
                   setup: Callable[[web.Application], None] | None = None) -> AsyncIterator[LiveHub]:
    home = Home.create(tmp_path / name, "Alpha Care", region="Leeds")
    home.config.limits = dict(limits or {})
    store = Store(home.db_path, limits=home.limits(), blobs_dir=home.blobs_dir)
    app = make_app(home, store, now_ms=now_ms, limits=store.limits)
    if setup is not None:
        setup(app)  # e.g. a route that fails, to see the error boundary answer a bug
    runner = BoundedRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = int(runner.addresses[0][1])
    # Each test request on its own connection unless a test says otherwise: connection caps stay predictable.
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))
    try:
        yield LiveHub(home, store, app, runner, port, session)
    finally:
        await session.close()
        await runner.cleanup()
        store.close()


@dataclass
class Raw:
    """A raw TCP connection to the hub."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def response(self, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
        """Read one HTTP response (status, headers, body by Content-Length)."""
        async with asyncio.timeout(timeout):
            head = await self.reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:] if x)}
            body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        return status, headers, body

    async def closed(self, timeout: float = 10.0) -> bool:
        """True once the hub closes the connection (anything it sends first is skipped)."""
        try:
            async with asyncio.timeout(timeout):
                while await self.reader.read(65536):
                    pass
            return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            return False

    def close(self) -> None:
        self.writer.close()


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until ``condition()`` holds (the hub has seen a connection open or close)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


async def raw_connect(hub: LiveHub, source: str = "127.0.0.1") -> Raw:
    """Connect from ``source`` (any 127.0.0.0/8 address works on Linux) once the hub has admitted or refused it."""
    guard = hub.runner.guard
    seen = guard.seen
    reader, writer = await asyncio.open_connection("127.0.0.1", hub.port, local_addr=(source, 0))
    await until(lambda: guard.seen > seen)
    return Raw(reader, writer)


async def raw_close(hub: LiveHub, raw: Raw) -> None:
    """Close ``raw`` and wait until the hub has let it go."""
    guard = hub.runner.guard
    port = raw.writer.get_extra_info("sockname")[1]

    def gone() -> bool:
        return not any(conn.peer_port == port for conns in guard.by_address.values() for conn in conns)

    raw.close()
    await until(gone)
