"""The hub's one error boundary: every exception a request raises becomes a response here, and only here.

The exception tree it maps (STYLE.md: errors become HTTP responses in exactly one place):

    ProtocolError (protocol/errors.py)   reason from protocol.errors.REASONS
    ├── DecodeError, SchemaError, ...     400 invalid             a record or body the protocol refuses
    ├── TooLargeError                     413 too-large
    ├── federation.wire.WireError         400 invalid / 413       a malformed peer message
    ├── hub.publishing.PublishRefused     422 <reason>            what this hub will not publish for its user
    └── RequestError (below)              its own status          an HTTP request this hub will not serve
        ├── hub.app.ApiError              400 401 404 405 409 413 422 ...
        ├── hub.webrender.PageError       an HTML page's 400/404
        ├── BodyTooLarge                  413 too-large           over the route's body limit (hub.bounds)
        ├── BodyTimeout                   408 timeout             the body did not arrive in time
        └── Overloaded                    429 / 503 rate-limited  with Retry-After
    aiohttp.web.HTTPException             its own status          404/405 from routing, 413 from aiohttp
    anything else                         500 error               a bug: one log line with an error id

:func:`classify` is that table. :func:`boundary_middleware` — the application's outermost middleware, so it
covers every route — answers ``/api/`` and ``/fed/`` with JSON ``{"error": reason, "detail": one line}`` and
anything else with a small HTML page; the pages' own middleware (hub.webrender) renders its errors in the page's
language through the same :func:`classify` and :func:`report_unexpected`. A client can never get a traceback,
and an unexpected exception is exactly one log line, ``internal error <id> ...``, whose id the 500 shows.
Those lines are rate limited (:class:`LineBudget`), so even a bug a stranger can trigger cannot flood the log.
"""

from __future__ import annotations

import html
import json
import logging
import os
import secrets
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from protocol.errors import REASONS, ProtocolError

__all__ = [
    "HTTP_REASONS",
    "JSON_PREFIXES",
    "BodyTimeout",
    "BodyTooLarge",
    "Failure",
    "LineBudget",
    "Overloaded",
    "RequestError",
    "boundary_middleware",
    "classify",
    "error_response",
    "json_error",
    "report_unexpected",
]

log = logging.getLogger("coophub.boundary")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Reasons an HTTP error may carry: the protocol's, plus what only HTTP has.
HTTP_REASONS = REASONS | {"unauthorized", "not-found", "method-not-allowed", "timeout"}
#: Paths answered in JSON; everything else is a page (HTML).
JSON_PREFIXES = ("/api/", "/fed/")
_STATUS_REASONS = {400: "invalid", 401: "unauthorized", 404: "not-found", 405: "method-not-allowed",
                   408: "timeout", 413: "too-large", 429: "rate-limited", 503: "rate-limited"}
_MAX_DETAIL = 500


class RequestError(ProtocolError):
    """An HTTP request this hub will not serve: ``status``, a ``reason`` from :data:`HTTP_REASONS`, one line of
    ``detail``, and ``headers`` for the response (``Retry-After``, ...)."""

    def __init__(self, status: int, reason: str, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        if reason not in HTTP_REASONS:
            raise ValueError(f"unknown reason {reason!r}")
        self.reason = reason
        self.status = status
        self.detail = detail
        self.headers = dict(headers or {})


class BodyTooLarge(RequestError):
    def __init__(self, detail: str) -> None:
        super().__init__(413, "too-large", detail, headers={"Connection": "close"})


class BodyTimeout(RequestError):
    def __init__(self, detail: str) -> None:
        super().__init__(408, "timeout", detail, headers={"Connection": "close"})


class Overloaded(RequestError):
    """429 (this client is over its share) or 503 (the hub is over its own), with ``Retry-After`` seconds."""

    def __init__(self, status: int, detail: str, retry_after_s: int) -> None:
        super().__init__(status, "rate-limited", detail, headers={"Retry-After": str(max(1, retry_after_s))})
        self.retry_after_s = max(1, retry_after_s)


@dataclass(frozen=True)
class Failure:
    """What a client is told: status, reason, one line of detail and extra headers."""

    status: int
    reason: str
    detail: str
    headers: dict[str, str] = field(default_factory=dict)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())[:_MAX_DETAIL]


def classify(exc: BaseException, request: web.Request | None = None) -> Failure | None:
    """The response an exception stands for, or None when it is a bug (an unexpected exception)."""
    from hub.publishing import PublishRefused  # imported here: hub.publishing imports the store

    if isinstance(exc, RequestError):
        return Failure(exc.status, exc.reason, _one_line(exc.detail), exc.headers)
    if isinstance(exc, PublishRefused):
        return Failure(422, exc.reason, _one_line(str(exc)))
    if isinstance(exc, ProtocolError):
        status = {"too-large": 413, "rate-limited": 429}.get(exc.reason, 400)
        return Failure(status, exc.reason, _one_line(str(exc)))
    if isinstance(exc, web.HTTPException) and exc.status >= 400:
        reason = _STATUS_REASONS.get(exc.status, "invalid" if exc.status < 500 else "error")
        return Failure(exc.status, reason, _one_line(_http_detail(exc, request)))
    return None


def _http_detail(exc: web.HTTPException, request: web.Request | None) -> str:
    path = request.path if request is not None else "this path"
    if exc.status == 404:
        where = "API route" if path.startswith("/api/") else "route"
        return f"no such {where}: {path[:200]}" + ("; see docs/api.md" if path.startswith("/api/") else "")
    if exc.status == 405:
        method = request.method if request is not None else "this method"
        return f"{method} is not allowed on {path[:200]}"
    if exc.status == 413:
        return "request body is too large"
    return exc.reason or exc.text or "bad request"


# -- unexpected exceptions: one line with an id, rate limited ------------------------------------------------


class LineBudget:
    """At most ``burst`` lines at once, refilled at ``per_s``; what is held back is counted and said on the next
    line let through ("N similar lines suppressed"), as syslog says "last message repeated N times"."""

    def __init__(self, burst: int = 20, per_s: float = 1.0) -> None:
        self.burst, self.per_s = burst, per_s
        self._tokens = float(burst)
        self._at = time.monotonic()
        self.suppressed = 0

    def take(self) -> int | None:
        """None if this line must be dropped, else how many were dropped before it (and resets that count)."""
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.per_s)
        self._at = now
        if self._tokens < 1:
            self.suppressed += 1
            return None
        self._tokens -= 1
        dropped, self.suppressed = self.suppressed, 0
        return dropped


_UNEXPECTED = LineBudget()


def _where(exc: BaseException) -> str:
    """The innermost frames of the exception's traceback, as ``file:line fn`` (enough to find the bug)."""
    frames = traceback.extract_tb(exc.__traceback__)[-3:]
    return " < ".join(f"{os.path.basename(f.filename)}:{f.lineno} {f.name}" for f in reversed(frames))


def report_unexpected(request: web.Request, exc: BaseException) -> str:
    """Log one line for a bug met while serving ``request`` and return its error id (12 hex digits)."""
    error_id = secrets.token_hex(6)
    dropped = _UNEXPECTED.take()
    if dropped is not None:
        more = f" ({dropped} similar lines suppressed)" if dropped else ""
        log.error("internal error %s serving %s %s: %s: %s at %s%s", error_id, request.method,
                  request.path[:200], type(exc).__name__, _one_line(str(exc))[:200], _where(exc), more,
                  extra={"error_id": error_id})
    return error_id


# -- responses -----------------------------------------------------------------------------------------------


def json_error(failure: Failure) -> web.Response:
    text = json.dumps({"error": failure.reason, "detail": failure.detail}, ensure_ascii=False)
    response = web.Response(text=text, status=failure.status, content_type="application/json")
    response.headers.update(failure.headers)
    if failure.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="coophub"'
    return response


def _html_error(failure: Failure) -> web.Response:
    from hub.webrender import SECURITY_HEADERS  # imported here: it imports hub.app, which imports this module

    title = {404: "Page not found", 405: "Not allowed", 429: "Too many requests", 503: "Busy"}.get(
        failure.status, "Something went wrong")
    page = (f"<!doctype html><html lang='en'><meta charset='utf-8'><title>{failure.status} {title}</title>"
            f"<h1>{title}</h1><p>{html.escape(failure.detail)}</p></html>")
    response = web.Response(text=page, status=failure.status, content_type="text/html", charset="utf-8",
                            headers=SECURITY_HEADERS)
    response.headers.update(failure.headers)
    return response


def error_response(request: web.Request, failure: Failure) -> web.Response:
    """``failure`` as JSON on /api and /fed, else as a small HTML page."""
    if request.path.startswith(JSON_PREFIXES):
        return json_error(failure)
    return _html_error(failure)


def internal_failure(error_id: str) -> Failure:
    return Failure(500, "error", f"internal error {error_id}; the hub's log has the details under this id")


@web.middleware
async def boundary_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The outermost middleware: whatever a handler (or an inner middleware) raises becomes a response."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise  # redirects and the like are responses, not errors
        failure = classify(exc, request)
        assert failure is not None
        return error_response(request, failure)
    except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
        # The client went away mid-request: nobody reads this answer, and it is no bug to log.
        return web.Response(status=400, headers={"Connection": "close"})
    except Exception as exc:
        failure = classify(exc, request)
        if failure is None:
            failure = internal_failure(report_unexpected(request, exc))
        return error_response(request, failure)
