"""The HTTP bounds (docs/protocol.md "HTTP bounds"): what any client can make this hub hold, read and do.

Every number is a field of :class:`protocol.limits.Limits`, published to peers in ``GET /fed/v1/info``, and
tests/hub/test_bounds.py proves each one is enforced exactly (at the limit accepted, one over refused).

Per request — :func:`bounds_middleware`, on every route (``/api``, ``/fed``, pages), just inside the error
boundary (hub.boundary), so each refusal is the usual ``{"error", "detail"}`` or an HTML page:

- ``http_rate_burst`` / ``http_rate_per_s``: a token bucket per client address for requests without the API
  token → 429 ``rate-limited`` with ``Retry-After``;
- ``http_max_requests_in_flight`` → 503 with ``Retry-After``;
- the route's body limit (``max_fed_body_bytes`` on /fed, ``max_blob_bytes`` for an upload with the token,
  ``max_api_body_bytes`` otherwise) is checked against a declared Content-Length before anything is read, and
  counted while a body streams in (chunked too) → 413 as soon as it is passed, never after reading 8 MiB;
- ``http_max_inflight_body_bytes``: the body bytes all requests may hold at once (declared length reserved
  up front, a chunked body its route's limit) → 503;
- ``http_body_timeout_ms`` + 1 s per ``http_body_min_rate_bytes_per_s``: the time a body may take → 408.
  The body is read here, whole, so a handler's ``request.read()`` returns it at once.
- ``max_json_depth``: :func:`check_json_depth`, for every JSON body the API parses.

Per connection — :class:`BoundedRunner` (``coophub serve`` uses it; so can tests): a request handler that
admits a connection only under ``http_max_connections`` and ``http_max_connections_per_address``. Over the
total it closes an *idle* connection of the address holding the most connections (so a flood of idle
connections sheds itself, not the honest client), else it answers the newcomer 503 and closes it at once: the
accept loop never stalls and never runs out of file descriptors, because :func:`fit_to_fd_limit` keeps the cap
below the open-file limit. ``http_header_timeout_ms`` is aiohttp's keep-alive timer, which closes a connection
still waiting for a complete request head (opening or after a reply); ``http_max_header_line_bytes`` and
``http_max_headers`` bound the parser. Errors the parser meets are answered in JSON, logged at debug level only.
Log lines about refused connections, and asyncio's and aiohttp's own, are rate limited (hub.boundary.LineBudget).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import ipaddress
import logging
import math
import resource
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_server import Server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from hub.boundary import (
    BodyTimeout,
    BodyTooLarge,
    Failure,
    LineBudget,
    Overloaded,
    RequestError,
    internal_failure,
    json_error,
    report_unexpected,
)
from protocol.limits import Limits

__all__ = [
    "BOUNDS_KEY",
    "FD_RESERVE",
    "Bounds",
    "BoundedRunner",
    "ConnectionGuard",
    "address_key",
    "body_limit",
    "bounds_middleware",
    "check_json_depth",
    "fit_to_fd_limit",
]

log = logging.getLogger("coophub.bounds")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: File descriptors kept for everything but client connections: SQLite (database, WAL and shared memory for
#: each reader), blobs being read, the decode pool's pipes, outgoing peer connections (aiohttp's client pool
#: holds at most 100), logs. A process that runs out answers nobody; 128 is twice what a busy hub was seen using.
FD_RESERVE = 128
#: Addresses whose token buckets are remembered (least recently seen forgotten first, with a full bucket): a
#: bucket is ~200 bytes, so at most ~1 MiB however many addresses a flood uses.
MAX_TRACKED_ADDRESSES = 4096


def address_key(remote: str | None) -> str:
    """The address a client is counted under: IPv4 as is, IPv6 by its /64 (one host's share of a network)."""
    if not remote:
        return "unknown"
    try:
        ip = ipaddress.ip_address(remote)
    except ValueError:
        return remote[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        if not ip.is_loopback:
            return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def fit_to_fd_limit(limits: Limits) -> Limits:
    """Raise the soft open-file limit towards the hard one as far as the connection cap needs, and lower
    ``http_max_connections`` (and the per-address cap) if even the hard limit is too low. The result is what the
    hub enforces, so it is also what it publishes."""
    need = limits.http_max_connections + FD_RESERVE
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        target = need if hard == resource.RLIM_INFINITY else min(need, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY or soft >= need:
        return limits
    cap = max(1, soft - FD_RESERVE)
    log.warning("the open-file limit is %d; serving at most %d connections (http_max_connections is %d): "
                "raise LimitNOFILE to serve more", soft, cap, limits.http_max_connections)
    return dataclasses.replace(limits, http_max_connections=cap,
                               http_max_connections_per_address=min(cap, limits.http_max_connections_per_address))


# -- JSON depth ---------------------------------------------------------------------------------------------


_OPEN, _CLOSE, _QUOTE, _ESCAPE = frozenset(b"[{"), frozenset(b"]}"), ord('"'), ord("\\")


def check_json_depth(body: bytes, max_depth: int) -> None:
    """Refuse a JSON text nested deeper than ``max_depth`` arrays/objects, before a parser recurses into it.

    Raises:
        RequestError: 400 invalid, saying how deep is allowed.
    """
    if body.count(b"[") + body.count(b"{") <= max_depth:
        return  # cannot be deeper than it has brackets (the common case: no scan)
    depth, in_string, escaped = 0, False, False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == _ESCAPE:
                escaped = True
            elif byte == _QUOTE:
                in_string = False
        elif byte == _QUOTE:
            in_string = True
        elif byte in _OPEN:
            depth += 1
            if depth > max_depth:
                raise RequestError(400, "invalid", f"JSON nested deeper than max_json_depth ({max_depth} levels)")
        elif byte in _CLOSE:
            depth -= 1


# -- per request ---------------------------------------------------------------------------------------------


class TokenBuckets:
    """A token bucket per key (``burst`` tokens, refilled at ``per_s``), for at most ``max_keys`` keys."""

    def __init__(self, burst: int, per_s: int, max_keys: int = MAX_TRACKED_ADDRESSES) -> None:
        self.burst, self.per_s, self.max_keys = burst, per_s, max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, key: str, now: float) -> float:
        """0 if ``key`` may go ahead (one token taken), else the seconds until it may."""
        tokens, at = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.per_s)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / self.per_s if self.per_s > 0 else 3600.0
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return wait


class Bounds:
    """The per-application state of the request bounds: the rate buckets, requests and body bytes in flight."""

    def __init__(self, limits: Limits, token: str) -> None:
        self.limits = limits
        self._token = token.encode()
        self.buckets = TokenBuckets(limits.http_rate_burst, limits.http_rate_per_s)
        self.in_flight = 0
        self.body_bytes = 0
        self.refused: dict[str, int] = {"rate-limited": 0, "busy": 0, "too-large": 0, "timeout": 0}
        self.guard: ConnectionGuard | None = None  # set by the BoundedRunner serving the app, if any

    def metric_families(self) -> Iterator[Metric]:
        """For ``GET /metrics`` (hub.metrics): what the bounds refused, what is in flight, the connections."""
        refused = CounterMetricFamily("coophub_http_refused", "Requests refused by the HTTP bounds, by reason.",
                                      labels=["reason"])
        for reason, n in sorted(self.refused.items()):
            refused.add_metric([reason], n)
        yield refused
        yield GaugeMetricFamily("coophub_http_requests_in_flight", "Requests being handled.", value=self.in_flight)
        yield GaugeMetricFamily("coophub_http_body_bytes_in_flight", "Request body bytes reserved.",
                                value=self.body_bytes)
        if self.guard is not None:
            yield GaugeMetricFamily("coophub_http_connections", "Open client connections.", value=self.guard.total)
            closed = CounterMetricFamily("coophub_http_connections_closed", "Connections refused at once, or "
                                         "closed to make room for another address.", labels=["why"])
            closed.add_metric(["refused"], self.guard.refused)
            closed.add_metric(["shed"], self.guard.shed)
            yield closed

    def authorised(self, request: web.Request) -> bool:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self._token)


BOUNDS_KEY: web.AppKey[Bounds] = web.AppKey("bounds", Bounds)


def body_limit(path: str, authorised: bool, limits: Limits) -> int:
    """The largest request body a route accepts, in bytes."""
    if path.startswith("/fed/"):
        return limits.max_fed_body_bytes
    if path.startswith("/api/v1/blobs") and authorised:  # an upload needs the token; without it, a small body
        return limits.max_blob_bytes
    return limits.max_api_body_bytes


async def _read_body(request: web.Request, limit: int, limits: Limits) -> None:
    """Read the whole body, refusing it as soon as it passes ``limit`` or falls behind its deadline, and leave it
    where ``request.read()`` returns it."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    base_s, rate = limits.http_body_timeout_ms / 1000, max(1, limits.http_body_min_rate_bytes_per_s)
    body = bytearray()
    while True:
        remaining = start + base_s + len(body) / rate - loop.time()
        try:
            if remaining <= 0:
                raise TimeoutError
            async with asyncio.timeout(remaining):
                chunk = await request.content.readany()
        except TimeoutError:
            raise BodyTimeout(f"the request body did not arrive in time: {len(body)} bytes in "
                              f"{loop.time() - start:.0f} s (http_body_timeout_ms {limits.http_body_timeout_ms}, "
                              f"then at least {limits.http_body_min_rate_bytes_per_s} bytes a second)") from None
        if not chunk:
            break
        body.extend(chunk)
        if len(body) > limit:
            raise BodyTooLarge(f"request body is over the limit of {limit} bytes for {request.path[:100]}")
    request._read_bytes = bytes(body)  # what request.read() returns from now on (aiohttp caches it there)


@web.middleware
async def bounds_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    bounds = request.app[BOUNDS_KEY]
    limits = bounds.limits
    authorised = bounds.authorised(request)
    if not authorised:
        wait = bounds.buckets.take(address_key(request.remote), time.monotonic())
        if wait > 0:
            bounds.refused["rate-limited"] += 1
            raise Overloaded(429, f"too many requests from your address: at most {limits.http_rate_burst} at "
                             f"once and {limits.http_rate_per_s} a second without the API token",
                             math.ceil(wait))
    if _is_upgrade(request):
        # A WebSocket (a peer session) lives as long as the session: counted as a request in flight it would
        # hold a slot for hours, and http_max_requests_in_flight open sessions would lock every other request
        # out. Its handler bounds it instead (max_sessions, session_handshake_ms); the connection stays busy,
        # so it is never shed as idle.
        return await _upgraded(request, handler)
    if bounds.in_flight >= limits.http_max_requests_in_flight:
        bounds.refused["busy"] += 1
        raise Overloaded(503, f"this hub is handling {bounds.in_flight} requests, its most "
                         "(http_max_requests_in_flight); try again shortly", 1)
    reserved = 0
    bounds.in_flight += 1
    protocol = request.protocol
    if isinstance(protocol, BoundedRequestHandler):
        protocol.busy = True
    try:
        if request.body_exists:
            limit = body_limit(request.path, authorised, limits)
            declared = request.content_length
            if declared is not None and declared > limit:
                bounds.refused["too-large"] += 1
                raise BodyTooLarge(f"request body is {declared} bytes, over the limit of {limit} for "
                                   f"{request.path[:100]}")
            reserved = limit if declared is None else declared
            if bounds.body_bytes + reserved > limits.http_max_inflight_body_bytes:
                reserved = 0
                bounds.refused["busy"] += 1
                raise Overloaded(503, "this hub is receiving as many request bodies as it holds at once "
                                 "(http_max_inflight_body_bytes); try again shortly", 1)
            bounds.body_bytes += reserved
            try:
                await _read_body(request, limit, limits)
            except BodyTooLarge:
                bounds.refused["too-large"] += 1
                raise
            except BodyTimeout:
                bounds.refused["timeout"] += 1
                raise
        return await handler(request)
    finally:
        bounds.in_flight -= 1
        bounds.body_bytes -= reserved
        if isinstance(protocol, BoundedRequestHandler):
            protocol.busy = False


def _is_upgrade(request: web.Request) -> bool:
    return (request.method == "GET" and not request.body_exists
            and request.headers.get("Upgrade", "").lower() == "websocket")


async def _upgraded(request: web.Request, handler: Handler) -> web.StreamResponse:
    protocol = request.protocol
    if isinstance(protocol, BoundedRequestHandler):
        protocol.busy = True
    try:
        return await handler(request)
    finally:
        if isinstance(protocol, BoundedRequestHandler):
            protocol.busy = False


# -- per connection ------------------------------------------------------------------------------------------


class _LogFilter(logging.Filter):
    """Rate limit a noisy logger (asyncio's "socket.accept() out of system resource", aiohttp's parser errors)
    and keep each of its lines to one: the traceback is left out."""

    def __init__(self) -> None:
        super().__init__()
        self.budget = LineBudget(burst=10, per_s=0.2)

    def filter(self, record: logging.LogRecord) -> bool:
        dropped = self.budget.take()
        if dropped is None:
            return False
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            record.msg = f"{record.getMessage()}: {type(exc).__name__}: {exc}"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        if dropped:
            record.msg = f"{record.getMessage()} ({dropped} similar lines suppressed)"
            record.args = None
        return True


def install_log_limits() -> None:
    """Put a rate limit on the loggers a flood can make write (idempotent)."""
    for name in ("asyncio", "aiohttp.server"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _LogFilter) for f in logger.filters):
            logger.addFilter(_LogFilter())


_CLOSED_RESPONSE = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
                    b"Connection: close\r\nContent-Length: 88\r\n\r\n"
                    b'{"error": "rate-limited", "detail": "too many connections from your address; try again"}')
assert len(_CLOSED_RESPONSE.split(b"\r\n\r\n", 1)[1]) == 88


class ConnectionGuard:
    """Admits connections under ``http_max_connections`` in all and ``http_max_connections_per_address``."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.by_address: dict[str, dict[BoundedRequestHandler, None]] = {}  # oldest first
        self.total = 0
        self.seen = 0  # connections ever offered
        self.refused = 0
        self.shed = 0
        self._budget = LineBudget(burst=5, per_s=0.1)

    def admit(self, conn: BoundedRequestHandler, key: str) -> bool:
        self.seen += 1
        mine = self.by_address.get(key, {})
        if len(mine) >= self.limits.http_max_connections_per_address:
            return self._refuse(key, f"it has {len(mine)} open, its most (http_max_connections_per_address)")
        if self.total >= self.limits.http_max_connections and not self._shed_for(key, len(mine)):
            return self._refuse(key, f"the hub has {self.total} open, its most (http_max_connections)")
        self.by_address.setdefault(key, {})[conn] = None
        self.total += 1
        return True

    def _shed_for(self, key: str, mine: int) -> bool:
        """Close an idle connection of the address holding the most (more than ``key`` would after this one)."""
        biggest = max(self.by_address, key=lambda k: len(self.by_address[k]), default=None)
        if biggest is None or len(self.by_address[biggest]) <= mine + 1:
            return False
        for victim in self.by_address[biggest]:
            if not victim.busy:
                self.release(victim)
                victim.shed()
                self.shed += 1
                return True
        return False

    def _refuse(self, key: str, why: str) -> bool:
        self.refused += 1
        dropped = self._budget.take()
        if dropped is not None:
            more = f" ({dropped} more refused since the last line)" if dropped else ""
            log.warning("refused a connection from %s: %s%s", key, why, more)
        return False

    def release(self, conn: BoundedRequestHandler) -> None:
        mine = self.by_address.get(conn.address)
        if mine is not None and conn in mine:
            del mine[conn]
            self.total -= 1
            if not mine:
                del self.by_address[conn.address]


class BoundedRequestHandler(RequestHandler):
    """aiohttp's connection handler, admitted by a :class:`ConnectionGuard`, answering parser errors in JSON."""

    def __init__(self, manager: Server, *, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self.guard = guard
        self.address = ""
        self.peer_port = 0
        self.admitted = False
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        self.address = address_key(peer[0] if isinstance(peer, tuple) and peer else None)
        self.peer_port = int(peer[1]) if isinstance(peer, tuple) and len(peer) > 1 else 0
        if not self.guard.admit(self, self.address):
            assert isinstance(transport, asyncio.Transport)
            transport.write(_CLOSED_RESPONSE)
            transport.close()  # its descriptor is free as soon as the 200-byte answer is flushed
            return
        self.admitted = True
        super().connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self.admitted:
            return
        self.guard.release(self)
        super().connection_lost(exc)

    def shed(self) -> None:
        """Closed to make room for another address's connection."""
        self.force_close()

    def handle_error(self, request: Any, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        """A request the parser refused (a malformed line, a header over its limit) or a bug outside the
        middlewares: JSON like every other error, one log line at most, and the connection closed."""
        if request.writer.output_size > 0:
            raise ConnectionError("the response has started; it cannot become an error response")
        if status >= 500:
            failure = internal_failure(report_unexpected(request, exc or RuntimeError(message or "error")))
        else:
            detail = message or (str(exc) if exc is not None else "") or "bad request"
            failure = Failure(status, {413: "too-large", 431: "too-large"}.get(status, "invalid"),
                              " ".join(detail.split())[:300])
            self.logger.debug("refused a malformed request from %s: %s", self.address, failure.detail)
        response = json_error(failure)
        response.force_close()
        return response


class BoundedServer(Server):
    def __init__(self, handler: Any, *, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.guard = guard

    def __call__(self) -> RequestHandler:
        return BoundedRequestHandler(self, guard=self.guard, loop=self._loop, **self._kwargs)


class BoundedRunner(web.AppRunner):
    """An AppRunner whose connections are bounded by ``limits`` (the app's, if not given)."""

    def __init__(self, app: web.Application, limits: Limits | None = None, **kwargs: Any) -> None:
        limits = limits or app[BOUNDS_KEY].limits
        kwargs.setdefault("keepalive_timeout", limits.http_header_timeout_ms / 1000)
        kwargs.setdefault("max_line_size", limits.http_max_header_line_bytes)
        kwargs.setdefault("max_field_size", limits.http_max_header_line_bytes)
        kwargs.setdefault("max_headers", limits.http_max_headers)
        super().__init__(app, **kwargs)
        self.guard = ConnectionGuard(limits)
        if BOUNDS_KEY in app:
            app[BOUNDS_KEY].guard = self.guard  # for /metrics
        install_log_limits()

    async def _make_server(self) -> Server:
        plain = await super()._make_server()  # the app's startup and freezing happen there
        return BoundedServer(plain.request_handler, guard=self.guard, request_factory=plain.request_factory,
                             handler_cancellation=plain.handler_cancellation, loop=plain._loop, **plain._kwargs)
