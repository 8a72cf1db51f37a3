"""Peer sessions over aiohttp WebSockets: the only I/O of ``federation/session.py``'s state machines.

:func:`dial` opens a session to a peer's ``/fed/v1/session``; :func:`accept` answers one. Either way the result
is a :class:`PeerConn`: one WebSocket per peer pair that both sides use for requests (``req``/``rep`` frames,
docs/protocol.md §8), with

- bounded in-flight request bytes per session (``Limits.session_inflight_bytes``): a sender waits;
- at most ``Limits.session_concurrency`` of the peer's requests handled at once: the reader waits, so a
  flooding peer fills its own socket buffers (TCP back-pressure);
- a per-peer bytes-per-second quota (``Limits.peer_bytes_per_s``): the reader waits before the next frame;
- a total timeout per request, and a close reason (a word of ``session.CLOSE_CODES``) for every refusal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

from protocol.errors import ProtocolError
from protocol.identity import HubKey
from protocol.limits import Limits

from . import session as sx

__all__ = ["PeerConn", "PeerUnavailable", "RemoteError", "accept", "dial", "frame_limit", "ws_frame_bytes"]

log = logging.getLogger("coophub.federation")
REQUEST_TIMEOUT_S = 15.0  # a page of 500 records over a slow link; anti-entropy retries later anyway
HEARTBEAT_S = 30.0  # WebSocket ping: a dead peer is noticed within a minute; ~2 small frames a minute idle

Handler = Callable[["PeerConn", str, Any], Awaitable[Any]]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def frame_limit(limits: Limits) -> int:
    """The largest frame a session carries: a maximal body or blob, plus framing."""
    return max(limits.max_fed_body_bytes, limits.max_blob_bytes) + 64 * 1024


class PeerUnavailable(Exception):
    """The peer could not be reached, refused the session, or the session closed; ``close_reason`` is the
    peer's close reason when it gave one."""

    def __init__(self, message: str, close_reason: str = "") -> None:
        super().__init__(message)
        self.close_reason = close_reason


class RemoteError(PeerUnavailable):
    """The peer answered a request with an error frame; ``reason`` is from protocol.errors.REASONS."""

    def __init__(self, op: str, reason: str, detail: str) -> None:
        super().__init__(f"{op}: the peer refused it: {reason}: {detail}")
        self.reason = reason
        self.detail = detail


def ws_frame_bytes(payload: int, *, masked: bool) -> int:
    """Bytes one binary WebSocket message of ``payload`` bytes takes on TCP (RFC 6455 §5.2): 2 header bytes,
    2 or 8 more for a payload of 126 bytes or more, 4 for the mask a client adds; aiohttp sends it unfragmented
    and uncompressed (no permessage-deflate is negotiated)."""
    extra = 0 if payload < 126 else (2 if payload < 65_536 else 8)
    return payload + 2 + extra + (4 if masked else 0)


class PeerConn:
    """One established session with one peer hub (``peer`` is its proven key)."""

    def __init__(self, ws: web.WebSocketResponse | aiohttp.ClientWebSocketResponse, est: sx.Established,
                 limits: Limits, handler: Handler, *, initiator: bool, url: str,
                 now_ms: Callable[[], int] = _now_ms) -> None:
        self.ws = ws
        self.peer = est.peer
        #: What the peer may do here: "member" (everything) or "applicant" (read, push its own profile). On an
        #: inbound session the handshake's admit decided; on one we dialed the driver decides (on_open).
        self.role = "applicant" if initiator else est.role
        #: What the responder let us do on a session we dialed ("" on an inbound one).
        self.granted = est.role if initiator else ""
        self.version = est.version
        self.initiator = initiator
        self.url = url  # the URL we dialed, or the one the initiator claimed (signed in the transcript)
        self.key = url  # the peer-table key the driver files this session under
        self.limits = limits
        self._frame_limits = sx_limit(limits)  # made once: dataclasses.replace per frame was a visible cost
        self.handler = handler
        self.now_ms = now_ms
        self.opened_ms = now_ms()
        self.last_frame_ms = self.last_sent_ms = self.opened_ms
        self.bytes_in = self.bytes_out = self.frames_in = self.frames_out = 0
        #: The same frames as sent on TCP: payload plus WebSocket framing (ws_frame_bytes); the initiator is the
        #: WebSocket client, whose frames carry a mask. Pings and the HTTP upgrade are not counted.
        self.wire_in = self.wire_out = 0
        self.closed = False
        self.close_reason = ""
        self._seq = 0
        self._pending: dict[int, asyncio.Future[sx.Reply]] = {}
        self._inflight = 0
        self._room = asyncio.Condition()
        self._handling = asyncio.Semaphore(max(1, limits.session_concurrency))
        self._tasks: set[asyncio.Task[Any]] = set()
        now = self.opened_ms
        self.bytes_quota = sx.TokenBucket(limits.peer_bytes_per_s, limits.peer_bytes_per_s, now)
        self.records_quota = sx.TokenBucket(limits.peer_records_per_s, limits.peer_records_per_s, now)
        self._send_lock = asyncio.Lock()

    def idle(self, now_ms: int) -> int:
        """How long since any frame went either way, 0 while requests are open either way."""
        if self._pending or self._tasks:
            return 0
        return now_ms - max(self.last_frame_ms, self.last_sent_ms)

    # -- sending ---------------------------------------------------------------------------------------------

    async def _send(self, data: bytes) -> None:
        async with self._send_lock:
            await self.ws.send_bytes(data)
        self.bytes_out += len(data)
        self.wire_out += ws_frame_bytes(len(data), masked=self.initiator)
        self.frames_out += 1
        self.last_sent_ms = self.now_ms()

    async def request(self, op: str, body: Any, *, timeout_s: float = REQUEST_TIMEOUT_S) -> Any:
        """Send one request and wait for its reply body.

        Raises:
            PeerUnavailable: the session is closed or closes, or no reply within ``timeout_s``.
            RemoteError: the peer answered with an error frame.
        """
        if self.closed:
            raise PeerUnavailable(f"session with {self.url} is closed ({self.close_reason})", self.close_reason)
        self._seq += 1
        seq = self._seq
        data = sx.request_frame(seq, op, body)
        cap = self.limits.session_inflight_bytes
        async with self._room:
            # One request larger than the whole window still goes, alone.
            await self._room.wait_for(lambda: self.closed or self._inflight == 0 or self._inflight + len(data) <= cap)
            self._inflight += len(data)
        future: asyncio.Future[sx.Reply] = asyncio.get_running_loop().create_future()
        self._pending[seq] = future
        try:
            if self.closed:
                raise PeerUnavailable(f"session with {self.url} closed", self.close_reason)
            try:
                await self._send(data)
                reply = await asyncio.wait_for(future, timeout_s)
            except (ConnectionError, RuntimeError, aiohttp.ClientError) as exc:
                raise PeerUnavailable(f"{self.url}: {type(exc).__name__} {exc}") from None
            except TimeoutError:
                raise PeerUnavailable(f"{self.url}: no answer to {op} within {timeout_s:.0f} s") from None
        finally:
            self._pending.pop(seq, None)
            async with self._room:
                self._inflight -= len(data)
                self._room.notify_all()
        if reply.reason:
            raise RemoteError(op, reply.reason, reply.detail)
        return reply.body

    # -- receiving -------------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Read frames until the session closes: replies resolve requests, requests go to the handler."""
        try:
            while not self.closed:
                msg = await self.ws.receive()
                if msg.type != aiohttp.WSMsgType.BINARY:
                    if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED,
                                    aiohttp.WSMsgType.ERROR):
                        self.close_reason = self.close_reason or _close_reason(self.ws, msg)
                        break
                    await self.close("invalid", "text frames are not part of the protocol")
                    break
                data: bytes = msg.data
                self.bytes_in += len(data)
                self.wire_in += ws_frame_bytes(len(data), masked=not self.initiator)
                self.frames_in += 1
                self.last_frame_ms = self.now_ms()
                try:
                    message = sx.decode_message(data, self._frame_limits)
                except sx.SessionRefused as exc:
                    await self.close(exc.close_reason, exc.detail)
                    break
                if isinstance(message, sx.Reply):
                    future = self._pending.get(message.seq)
                    if future is not None and not future.done():
                        future.set_result(message)
                    continue
                wait_ms = self.bytes_quota.delay_ms(len(data), self.last_frame_ms)
                if wait_ms:
                    await asyncio.sleep(min(wait_ms, 5_000) / 1000)  # back-pressure: don't read on yet
                await self._handling.acquire()
                task = asyncio.create_task(self._handle(message))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        except (asyncio.CancelledError, GeneratorExit):
            raise
        except Exception as exc:  # a transport error ends this session only
            log.info("session with %s ended: %s %s", self.url, type(exc).__name__, exc)
        finally:
            await self._closed()

    async def _handle(self, message: sx.Request) -> None:
        try:
            try:
                body = await self.handler(self, message.op, message.body)
                frame = sx.reply_frame(message.seq, body)
            except ProtocolError as exc:
                frame = sx.error_frame(message.seq, exc.reason, str(exc))
            except PeerUnavailable as exc:
                frame = sx.error_frame(message.seq, "error", str(exc))
            except Exception:
                log.exception("handling %s from %s failed", message.op, self.url)
                frame = sx.error_frame(message.seq, "error", "internal error")
            if not self.closed:
                with contextlib.suppress(ConnectionError, RuntimeError, aiohttp.ClientError):
                    await self._send(frame)
        finally:
            self._handling.release()

    async def close(self, reason: str = "going-away", detail: str = "") -> None:
        """Close the session with a reason of ``session.CLOSE_CODES``; safe to call twice."""
        if not self.closed:
            self.close_reason = reason
            with contextlib.suppress(Exception):
                await self.ws.close(code=sx.CLOSE_CODES.get(reason, 4000),
                                    message=f"{reason}: {detail}".encode()[:120])
        await self._closed()

    async def _closed(self) -> None:
        if self.closed:
            return
        self.closed = True
        for future in list(self._pending.values()):
            if not future.done():
                future.set_exception(PeerUnavailable(f"session with {self.url} closed ({self.close_reason})",
                                                     self.close_reason))
        async with self._room:
            self._room.notify_all()
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await self.ws.close()


def sx_limit(limits: Limits) -> Limits:
    """Limits whose frame bound is :func:`frame_limit` (session.decode_* read ``max_fed_body_bytes``)."""
    import dataclasses

    return dataclasses.replace(limits, max_fed_body_bytes=frame_limit(limits))


def _close_reason(ws: Any, msg: aiohttp.WSMessage) -> str:
    extra = msg.extra if msg.type == aiohttp.WSMsgType.CLOSE else None
    text = extra if isinstance(extra, str) else ""
    return text.split(":", 1)[0] if text else f"closed ({ws.close_code})"


async def _receive_handshake(ws: Any, deadline_s: float, what: str) -> bytes:
    try:
        msg = await asyncio.wait_for(ws.receive(), deadline_s)
    except TimeoutError:
        raise sx.SessionRefused("busy", f"no {what} within {deadline_s:.0f} s") from None
    if msg.type == aiohttp.WSMsgType.BINARY:
        return bytes(msg.data)
    if msg.type == aiohttp.WSMsgType.CLOSE:
        text = msg.extra if isinstance(msg.extra, str) else ""
        raise PeerUnavailable(f"the peer closed the session: {text or msg.data}", text.split(":", 1)[0])
    raise PeerUnavailable(f"the session ended during the handshake ({msg.type.name})")


async def dial(http: aiohttp.ClientSession, url: str, key: HubKey, association: bytes, limits: Limits,
               handler: Handler, *, own_url: str, expect: bytes | None = None,
               now_ms: Callable[[], int] = _now_ms) -> PeerConn:
    """Open a session to ``url`` (a hub's base URL) and run the initiator's handshake.

    Raises:
        PeerUnavailable: unreachable, or the handshake was refused by either side (``close_reason`` says why).
    """
    deadline = limits.session_handshake_ms / 1000
    try:
        ws = await http.ws_connect(f"{url}/fed/v1/session", max_msg_size=frame_limit(limits),
                                   heartbeat=HEARTBEAT_S, timeout=aiohttp.ClientWSTimeout(ws_close=2.0),
                                   autoping=True)
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise PeerUnavailable(f"{url}: {type(exc).__name__} {exc}") from None
    hs = sx.Initiator(key, association, own_url, sx_limit(limits), expect=expect)
    try:
        await ws.send_bytes(hs.hello(now_ms()))
        auth = hs.on_challenge(await _receive_handshake(ws, deadline, "challenge"), now_ms())
        await ws.send_bytes(auth)
        est = hs.on_ready(await _receive_handshake(ws, deadline, "ready"))
    except sx.SessionRefused as exc:
        with contextlib.suppress(Exception):
            await ws.close(code=exc.code, message=f"{exc.close_reason}: {exc.detail}".encode()[:120])
        raise PeerUnavailable(f"{url}: refused the session: {exc}", exc.close_reason) from None
    except PeerUnavailable:
        with contextlib.suppress(Exception):
            await ws.close()
        raise
    except (aiohttp.ClientError, ConnectionError, RuntimeError) as exc:
        with contextlib.suppress(Exception):
            await ws.close()
        raise PeerUnavailable(f"{url}: {type(exc).__name__} {exc}") from None
    return PeerConn(ws, est, limits, handler, initiator=True, url=url, now_ms=now_ms)


async def accept(request: web.Request, key: HubKey, association: bytes | None, limits: Limits,
                 replay: sx.ReplayCache, admit: Callable[[sx.Established], Awaitable[str]], handler: Handler, *,
                 now_ms: Callable[[], int] = _now_ms) -> tuple[web.WebSocketResponse, PeerConn | None]:
    """Answer a session request: the responder's handshake, then ``admit(established)`` names the role
    ("member" or "applicant") or raises SessionRefused ("dropped", "busy"). Returns the WebSocket and the
    session (None when the handshake was refused: the socket is closed with the reason)."""
    ws = web.WebSocketResponse(max_msg_size=frame_limit(limits), heartbeat=HEARTBEAT_S, autoping=True)
    await ws.prepare(request)
    deadline = limits.session_handshake_ms / 1000
    hs = sx.Responder(key, association, sx_limit(limits), replay)
    try:
        await ws.send_bytes(hs.on_hello(await _receive_handshake(ws, deadline, "hello"), now_ms()))
        est = hs.on_auth(await _receive_handshake(ws, deadline, "auth"), now_ms())
        role = await admit(est)
        await ws.send_bytes(hs.ready(role))
    except sx.SessionRefused as exc:
        log.info("refused a session from %s: %s", request.remote, exc)
        with contextlib.suppress(Exception):
            await ws.close(code=exc.code, message=f"{exc.close_reason}: {exc.detail}".encode()[:120])
        return ws, None
    except (PeerUnavailable, ConnectionError, RuntimeError):
        with contextlib.suppress(Exception):
            await ws.close()
        return ws, None
    est = sx.Established(est.peer, est.version, est.url, role)
    return ws, PeerConn(ws, est, limits, handler, initiator=False, url=est.url, now_ms=now_ms)
