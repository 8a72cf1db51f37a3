"""The requesting side of the peer protocol: calls to peers over authenticated sessions (``/fed/v1/session``).

A :class:`PeerClient` holds at most one open session per peer (keyed by the peer-table key, usually its URL),
dials one on first use, and reuses a session the peer opened to us (the driver files inbound sessions here with
:meth:`PeerClient.attach`). Every call has a total timeout, every reply is decoded with the bounded decoders of
``federation/wire.py``; a peer that fails raises :class:`PeerUnavailable`, one that sends garbage
:class:`~federation.wire.WireError`, which the driver turns into backoff or score. Only ``public_info`` is
plain HTTP (``GET /fed/v1/info``, public and read-only): `coophub join` asks it before it knows anything.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from protocol.identity import HubKey
from protocol.limits import Limits

from . import wire
from .transport import Handler, PeerConn, PeerUnavailable, RemoteError, dial

__all__ = ["PeerClient", "PeerUnavailable", "RemoteError"]

REQUEST_TIMEOUT_S = 15.0


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def refuse_all(conn: PeerConn, op: str, body: Any) -> Any:
    """The handler of a client that serves nothing (the CLI's one-shot `join` and `sync`)."""
    raise wire.WireError(f"{op}: this hub is not serving (a one-shot command)", reason="error")


class PeerClient:
    """Calls to peers. ``association`` and ``key`` are what this hub proves in each handshake."""

    def __init__(self, session: aiohttp.ClientSession, limits: Limits, own_url: str, *, key: HubKey,
                 association: bytes | Callable[[], bytes | None] | None,
                 handler: Handler = refuse_all, expect: Callable[[str], bytes | None] = lambda url: None,
                 on_open: Callable[[PeerConn], Awaitable[None]] | None = None,
                 now_ms: Callable[[], int] = _now_ms) -> None:
        self.session = session
        self.limits = limits
        self.own_url = own_url
        self.key = key
        self._association = association
        self.handler = handler
        self.expect = expect
        self.on_open = on_open
        self.now_ms = now_ms
        self.conns: dict[str, PeerConn] = {}
        self._dialing: dict[str, asyncio.Lock] = {}
        self._retired: list[PeerConn] = []  # sessions of earlier connections, for the traffic counters
        self._readers: set[asyncio.Task[None]] = set()
        self.requests = 0
        self.sessions_opened = 0

    @property
    def bytes_out(self) -> int:
        return sum(c.bytes_out for c in [*self.conns.values(), *self._retired])

    @property
    def bytes_in(self) -> int:
        return sum(c.bytes_in for c in [*self.conns.values(), *self._retired])

    def bytes_out_to(self, peer: str) -> int:
        """Bytes sent so far on the open session filed under ``peer`` (0 if none)."""
        conn = self.conns.get(peer)
        return conn.bytes_out if conn is not None else 0

    @property
    def wire_out(self) -> int:
        """Bytes of WebSocket frames sent on every session (payload and framing; ``PeerConn.wire_out``)."""
        return sum(c.wire_out for c in [*self.conns.values(), *self._retired])

    @property
    def wire_in(self) -> int:
        return sum(c.wire_in for c in [*self.conns.values(), *self._retired])

    @property
    def frames(self) -> int:
        """Frames sent and received on every session."""
        return sum(c.frames_in + c.frames_out for c in [*self.conns.values(), *self._retired])

    def association(self) -> bytes | None:
        a = self._association
        return a() if callable(a) else a

    def attach(self, conn: PeerConn) -> None:
        """Use ``conn`` (a session the peer opened, or one we dialed) for requests to ``conn.key``.

        Two sessions with one peer (both dialed at once): both hubs keep the one whose initiator has the
        smaller key, so they agree without a message; the other stays open until either side closes it.
        """
        old = self.conns.get(conn.key)
        if old is not None and not old.closed and old is not conn:
            mine_first = self.key.public < conn.peer
            keep_old = (old.initiator == mine_first)  # old was initiated by the smaller key
            if keep_old and conn.initiator != old.initiator:
                self._retired.append(conn)
                return
            self._retired.append(old)
        self.conns[conn.key] = conn
        del self._retired[:-64]

    async def close_idle_duplicates(self, now_ms: int, idle_ms: int = 5_000) -> int:
        """Close sessions that lost the tie-break (see :meth:`attach`) once idle for ``idle_ms``: by then the
        peer uses the kept one too. Returns how many were closed."""
        closed = 0
        for conn in self._retired:
            if not conn.closed and conn.idle(now_ms) >= idle_ms:
                await conn.close("duplicate", "another session with this peer is kept")
                closed += 1
        return closed

    def open_conns(self) -> list[PeerConn]:
        """Every open session, the kept ones first (a duplicate not yet closed is listed too)."""
        seen: dict[int, PeerConn] = {}
        for conn in [*self.conns.values(), *self._retired]:
            if not conn.closed:
                seen.setdefault(id(conn), conn)
        return list(seen.values())

    def open_sessions(self) -> int:
        return len(self.open_conns())

    def open_peers(self) -> int:
        """Peers with an open session (a duplicate not yet closed counts once)."""
        return len({c.peer for c in [*self.conns.values(), *self._retired] if not c.closed})

    def detach(self, conn: PeerConn) -> None:
        """``conn`` closed. If another open session with the same hub is at hand (the duplicate the tie-break
        set aside, not yet closed), requests to ``conn.key`` use it instead of dialing a new one."""
        if self.conns.get(conn.key) is conn:
            del self.conns[conn.key]
            self._retired.append(conn)
            spare = next((c for c in reversed(self._retired) if not c.closed and c.peer == conn.peer), None)
            if spare is not None:
                self._retired.remove(spare)
                spare.key = conn.key
                self.conns[conn.key] = spare
            del self._retired[:-64]

    def refile(self, old_key: str, new_key: str) -> None:
        """The session filed under ``old_key`` belongs under ``new_key`` (the driver learnt that the hub that
        dialed us is the one at that URL): file it there, where the tie-break of :meth:`attach` decides which
        of the two sessions with that hub both sides keep."""
        conn = self.conns.pop(old_key, None)
        if conn is not None and not conn.closed:
            conn.key = new_key
            self.attach(conn)

    async def conn(self, peer: str) -> PeerConn:
        """The open session with ``peer``, dialing one if there is none.

        Raises:
            PeerUnavailable: no session could be opened (``close_reason`` says why a handshake was refused).
        """
        conn = self.conns.get(peer)
        if conn is not None and not conn.closed:
            return conn
        lock = self._dialing.setdefault(peer, asyncio.Lock())
        async with lock:
            conn = self.conns.get(peer)
            if conn is not None and not conn.closed:
                return conn
            if not peer.startswith(("http://", "https://")):
                raise PeerUnavailable(f"{peer}: no open session, and no URL to dial")
            association = self.association()
            if association is None:
                raise PeerUnavailable("this hub has no association yet: nothing to prove in a handshake")
            conn = await dial(self.session, peer, self.key, association, self.limits, self.handler,
                              own_url=self.own_url, expect=self.expect(peer), now_ms=self.now_ms)
            conn.key = peer
            self.sessions_opened += 1
            self.attach(conn)
            if self.on_open is not None:
                await self.on_open(conn)  # the driver reads the session's frames (Federation._run_conn)
            else:
                task = asyncio.create_task(conn.run())
                self._readers.add(task)
                task.add_done_callback(self._readers.discard)
            return conn

    async def _call(self, peer: str, op: str, body: Any) -> Any:
        self.requests += 1
        conn = await self.conn(peer)
        return await conn.request(op, body, timeout_s=REQUEST_TIMEOUT_S)

    async def public_info(self, peer: str) -> wire.Info:
        """``GET /fed/v1/info`` over plain HTTP: who the peer is, before any session."""
        try:
            async with self.session.get(f"{peer}/fed/v1/info",
                                        timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)) as resp:
                data = await resp.content.read(1 << 20)
                if resp.status != 200:
                    raise PeerUnavailable(f"{peer}: HTTP {resp.status} {data[:200]!r}")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise PeerUnavailable(f"{peer}: {type(exc).__name__} {exc}") from None
        return wire.decode_info(data)

    async def info(self, peer: str) -> wire.Info:
        return wire.info_from(await self._call(peer, "info", {}))

    async def announce(self, peer: str, ids: list[bytes]) -> list[bytes]:
        """Offer ids; returns those the peer wants."""
        return wire.ids_from(await self._call(peer, "announce", {"ids": ids}), self.limits, what="want")

    async def push(self, peer: str, raws: list[bytes]) -> list[wire.PushResult]:
        return wire.push_results_from(await self._call(peer, "push", {"records": raws}), self.limits)

    async def sync(self, peer: str, message: bytes) -> bytes:
        reply = await self._call(peer, "sync", message)
        if not isinstance(reply, bytes):
            raise wire.WireError("sync: expected one Negentropy message (bin)")
        return reply

    async def fetch(self, peer: str, ids: list[bytes]) -> list[bytes]:
        return wire.records_from(await self._call(peer, "fetch", {"ids": ids}), self.limits)

    async def page(self, peer: str, after: tuple[int, bytes] | None,
                   limit: int) -> tuple[list[bytes], tuple[int, bytes] | None]:
        body = {"after": [after[0], after[1]] if after else [], "limit": limit}
        return wire.page_from(await self._call(peer, "page", body), self.limits)

    async def blob(self, peer: str, digest: bytes) -> bytes:
        """A blob's bytes as the peer sends them (at most ``max_blob_bytes``); the caller checks the hash.

        Raises:
            PeerUnavailable: unreachable; RemoteError with reason "error" when the peer lacks it.
        """
        reply = await self._call(peer, "blob", {"hash": digest})
        data = reply.get("data") if isinstance(reply, dict) else None
        if not isinstance(data, bytes) or len(data) > self.limits.max_blob_bytes:
            raise wire.WireError("blob: expected {data: bin} within max_blob_bytes")
        return data

    async def close(self) -> None:
        for conn in [*self.conns.values(), *self._retired]:
            await conn.close("going-away", "the hub is stopping")
        for task in list(self._readers):
            task.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
