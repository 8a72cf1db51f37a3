"""The hub's aiohttp application: the JSON API under ``/api/v1/`` (docs/api.md), plus the hooks through which
the web pages (``hub.web.setup``) and the peer protocol (``federation.driver.setup``, wired in ``_add_federation``)
add their routes.

Errors on ``/api/`` become responses in exactly one place, the error boundary (hub.boundary, the app's outermost
middleware, for every route): ``{"error": reason, "detail": one line}`` with a 4xx status. Reasons are the
protocol's vocabulary (protocol.errors.REASONS) plus ``unauthorized``, ``not-found``, ``method-not-allowed`` and
``timeout`` for HTTP-level problems. The HTTP bounds (body sizes, rates, timeouts) are hub.bounds'.

Status codes:
    400 invalid            malformed JSON, a bad query parameter, a body that fails its kind's schema
    401 unauthorized       POST without the right bearer token
    404 not-found          unknown record, hub, offer, blob or route
    405 method-not-allowed
    409 missing-reference  publishing before the hub has joined an association
    408 timeout            the body did not arrive within http_body_timeout_ms (and its minimum rate)
    413 too-large          a request body over limits.max_api_body_bytes (or max_blob_bytes for blobs)
    429 rate-limited       over this address's token bucket without the API token (Retry-After says when)
    503 rate-limited       the hub's own request or body-bytes cap (Retry-After)
    503 error              the database failed while storing a publish (a full disk): try again (Retry-After)
    422 <ingest reason>    a record the store refused (invalid, too-large, wrong-association), or that hub.publishing's
                           checks refuse before signing (it would have no effect, or could not be stored yet:
                           not-a-member, missing-reference, ...)
    202                    held, not stored yet: deferred (a reference or sponsorship it waits for) or an
                           applicant's own profile in quarantine; the body says which and why
"""

from __future__ import annotations

import hmac
import importlib
import importlib.util
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from federation import driver as federation_driver
from hub import peer_status
from hub.boundary import RequestError, boundary_middleware
from hub.bounds import BOUNDS_KEY, Bounds, bounds_middleware, check_json_depth
from hub.home import Home
from hub.opendata.badges import issue_credential
from hub.store import DirectoryQuery, Store
from protocol import ProtocolError, build_record, parse_hub_id
from protocol.jsonview import body_from_json, record_to_json
from protocol.kinds import KINDS
from protocol.limits import Limits

__all__ = [
    "BLOB_FETCH_KEY",
    "TRAFFIC_KEY",
    "HOME_KEY",
    "LIMITS_KEY",
    "NOW_KEY",
    "STORE_KEY",
    "ApiError",
    "RequestError",
    "BlobFetcher",
    "find_blob",
    "hub_param",
    "json_response",
    "make_app",
    "parse_directory_query",
    "record_id_param",
    "status_view",
]

log = logging.getLogger("coophub.api")

HOME_KEY: web.AppKey[Home] = web.AppKey("home", Home)
STORE_KEY: web.AppKey[Store] = web.AppKey("store", Store)
LIMITS_KEY: web.AppKey[Limits] = web.AppKey("limits", Limits)
NOW_KEY: web.AppKey[Callable[[], int]] = web.AppKey("now_ms", t=object)  # type: ignore[arg-type]
#: ``fetch(digest, size, author)``: get a blob this hub lacks from its peers by hash, verified and stored
#: (None if no peer has it). Set by ``federation.driver.setup``; absent when federation is off.
BlobFetcher = Callable[[bytes, int, bytes], Awaitable[bytes | None]]
BLOB_FETCH_KEY: web.AppKey[BlobFetcher] = web.AppKey("blob_fetch", t=object)  # type: ignore[arg-type]
#: ``traffic()``: federation's counters since start (requests served and made, bytes, records pushed,
#: sessions), shown as ``federation`` in ``GET /api/v1/status``. Set by ``federation.driver.setup``.
TRAFFIC_KEY: web.AppKey[Callable[[], dict[str, int]]] = web.AppKey("traffic", t=object)  # type: ignore[arg-type]
#: ``peer_sessions()``: a read-only snapshot of every peer's session (federation/status.py), merged into the peer
#: rows of ``GET /api/v1/status``, ``GET /api/v1/peers`` and the network page. Set by ``federation.driver.setup``.
PEER_SESSIONS_KEY: web.AppKey[Callable[[], list[dict[str, Any]]]] = web.AppKey(
    "peer_sessions", t=object)  # type: ignore[arg-type]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Directory page sizes: a page of 20 by default, at most 200 so one request stays cheap.
DEFAULT_PAGE = 20
MAX_PAGE = 200
MAX_OFFSET = 1_000_000
MAX_QUERY_CHARS = 500
DIRECTORY_KINDS = ("hub", "guide", "offer")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})
#: Retry-After for a publish the database failed to store: long enough for an operator's disk alert to fire,
#: short enough that a client retrying loses little once space is back.
DATABASE_RETRY_AFTER_S = 5


class ApiError(RequestError):
    """An API request that cannot be served: ``{"error": reason, "detail": detail}`` with ``status``."""

    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(status, reason, detail)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def json_response(data: Any, status: int = 200) -> web.Response:
    """A JSON response; bytes anywhere in ``data`` are written as hex."""
    text = json.dumps(data, default=_json_default, ensure_ascii=False)
    return web.Response(text=text, status=status, content_type="application/json")


# -- helpers -------------------------------------------------------------------------------------------------


def record_id_param(text: str) -> bytes:
    """A record id from a URL path segment (64 hex).

    Raises:
        ApiError: 400 when it is not 64 hex characters.
    """
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ApiError(400, "invalid", f"a record id is 64 hex characters, got {text[:80]!r}")
    return raw


def hub_param(text: str) -> bytes:
    """A hub id (``hub_…``) from a URL path segment.

    Raises:
        ApiError: 400 when it is not a valid hub id.
    """
    try:
        return parse_hub_id(text)
    except ProtocolError as exc:
        raise ApiError(400, "invalid", f"bad hub id: {exc.message}") from None


def _require_token(request: web.Request) -> None:
    expected = request.app[HOME_KEY].token.encode()
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise ApiError(
            401, "unauthorized", "send 'Authorization: Bearer TOKEN' with the token in HOME/api.token"
        )
    if not hmac.compare_digest(given.strip().encode(), expected):
        raise ApiError(401, "unauthorized", "wrong API token; use the one in HOME/api.token")


async def _read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(
            413, "too-large", f"request body is {request.content_length} bytes, over the limit of {limit}"
        )
    body = await request.read()  # read already, within the route's limit (hub.bounds.bounds_middleware)
    if len(body) > limit:
        raise ApiError(413, "too-large", f"request body is {len(body)} bytes, over the limit of {limit}")
    return body


async def _read_json(request: web.Request, limit: int) -> Any:
    body = await _read_body(request, limit)
    check_json_depth(body, request.app[LIMITS_KEY].max_json_depth)
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError(400, "invalid", f"request body is not valid JSON ({exc})") from None


def _read(request: web.Request, fn: Callable[..., Any], *args: Any) -> Awaitable[Any]:
    store = request.app[STORE_KEY]
    return store.read(fn, *args)


def _now(request: web.Request) -> int:
    return request.app[NOW_KEY]()


# -- query parameters ----------------------------------------------------------------------------------------


def _int_param(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = query.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise ApiError(
            400, "invalid", f"{name} must be an integer from {low} to {high}, got {text[:40]!r}"
        ) from None
    if not low <= value <= high:
        raise ApiError(400, "invalid", f"{name} must be an integer from {low} to {high}, got {value}")
    return value


def _text_param(query: Mapping[str, str], name: str) -> str | None:
    value = query.get(name, "").strip()
    if len(value) > MAX_QUERY_CHARS:
        raise ApiError(400, "invalid", f"{name} is longer than {MAX_QUERY_CHARS} characters")
    return value or None


def parse_directory_query(query: Mapping[str, str]) -> DirectoryQuery:
    """Validate the directory's query parameters.

    Raises:
        ApiError: an unknown parameter, an unknown kind, a bad limit/offset/open value, or text too long.
    """
    allowed = {"q", "kind", "region", "service", "mark", "open", "reviewed", "limit", "offset"}
    unknown = sorted(set(query) - allowed)
    if unknown:
        raise ApiError(
            400, "invalid", f"unknown parameter {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}"
        )
    kind = _text_param(query, "kind")
    if kind is not None and kind not in DIRECTORY_KINDS:
        raise ApiError(400, "invalid", f"kind must be one of {', '.join(DIRECTORY_KINDS)}, got {kind[:40]!r}")
    open_text = query.get("open", "").strip().lower()
    if open_text not in _TRUE | _FALSE:
        raise ApiError(400, "invalid", f"open must be true or false, got {open_text[:40]!r}")
    reviewed_text = query.get("reviewed", "").strip().lower()
    if reviewed_text not in _TRUE | _FALSE:
        raise ApiError(400, "invalid", f"reviewed must be true or false, got {reviewed_text[:40]!r}")
    return DirectoryQuery(
        q=_text_param(query, "q") or "",
        kind=kind,
        region=_text_param(query, "region"),
        service=_text_param(query, "service"),
        mark=_text_param(query, "mark"),
        open=open_text in _TRUE,
        reviewed=reviewed_text in _TRUE,
        limit=_int_param(query, "limit", DEFAULT_PAGE, 1, MAX_PAGE),
        offset=_int_param(query, "offset", 0, 0, MAX_OFFSET),
    )


def status_view(home: Home, store: Store, now_ms: int,
                live: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """What ``GET /api/v1/status`` and ``coophub status --json`` print (PRODUCT.md §4). ``live`` is the running
    hub's session snapshot (``PEER_SESSIONS_KEY``); without it ``peer_sessions`` shows the saved peer table with
    ``session_state`` "unknown" and ``sessions_known`` false (hub.peer_status)."""
    status = dict(store.status(home.hub_id, now_ms))
    status.setdefault("hub_id", home.hub_id)
    status.setdefault("name", home.config.name)
    if not status.get("association_id") and home.association is not None:
        status["association_id"] = home.association.hex()
    saved = store.list_peers()
    urls = {str(p["url"]) for p in saved} | {u.rstrip("/") for u in home.config.peers}
    status["peers"] = len(urls)
    status["peer_urls"] = sorted(urls)
    payload = peer_status.peers_payload(home.config.peers, saved, live, hub_names(store, now_ms),
                                        store.member_peer_url_hubs())
    status["peer_sessions"], status["sessions_known"] = payload["peers"], payload["sessions_known"]
    return status


def hub_names(store: Store, now_ms: int) -> dict[str, str]:
    """Hub id -> its co-op's current name, for up to MAX_PAGE co-ops (one directory query): how peer rows name
    a member known only by its session."""
    rows, _total = store.search(DirectoryQuery(kind="hub", limit=MAX_PAGE), now_ms)
    return {str(r["author"]): str(r["title"]) for r in rows}


def _live_sessions(app: web.Application) -> list[dict[str, Any]] | None:
    """The running federation's session snapshot, taken in the event loop (None with federation off)."""
    return app[PEER_SESSIONS_KEY]() if PEER_SESSIONS_KEY in app else None


# -- handlers ------------------------------------------------------------------------------------------------


async def get_status(request: web.Request) -> web.Response:
    home, store = request.app[HOME_KEY], request.app[STORE_KEY]
    status = await store.read(status_view, home, store, _now(request), _live_sessions(request.app))
    if TRAFFIC_KEY in request.app:
        status["federation"] = request.app[TRAFFIC_KEY]()
    return json_response(status)


async def get_peers(request: web.Request) -> web.Response:
    """Each peer's session state, score, last contact and lag (docs/api.md; public, like the network page)."""
    home, store = request.app[HOME_KEY], request.app[STORE_KEY]
    live = _live_sessions(request.app)
    saved = await store.read(store.list_peers)
    names = await store.read(hub_names, store, _now(request))
    owners = await store.read(store.member_peer_url_hubs)
    return json_response(peer_status.peers_payload(home.config.peers, saved, live, names, owners))


async def get_directory(request: web.Request) -> web.Response:
    query = parse_directory_query(request.query)
    store = request.app[STORE_KEY]
    results, total = await store.read(store.search, query, _now(request))
    # "total_at_least": counting stopped at hub.queries.TOTAL_CAP matches and there are more (issue 13).
    return json_response({"results": results, "total": total, "total_at_least": getattr(total, "at_least", False)})


async def get_applicants(request: web.Request) -> web.Response:
    """Applicants' own profiles held on this hub (quarantined) until a member endorses them."""
    store = request.app[STORE_KEY]
    return json_response({"applicants": await store.read(store.applicants)})


async def get_record(request: web.Request) -> web.Response:
    record_id = record_id_param(request.match_info["id"])
    store = request.app[STORE_KEY]
    record = await store.read(store.get_record, record_id)
    if record is None:
        raise ApiError(404, "not-found", f"no record {record_id.hex()} on this hub")
    return json_response({**record_to_json(record), "raw": record.raw.hex()})


async def get_hub(request: web.Request) -> web.Response:
    hub = hub_param(request.match_info["hub_id"])
    store = request.app[STORE_KEY]
    view = await store.read(store.hub_view, hub, _now(request))
    if view is None:
        raise ApiError(404, "not-found", f"no hub {request.match_info['hub_id']} in this hub's directory")
    return json_response(view)


async def get_offer(request: web.Request) -> web.Response:
    offer_id = record_id_param(request.match_info["id"])
    store = request.app[STORE_KEY]
    view = await store.read(store.offer_view, offer_id, _now(request))
    if view is None:
        raise ApiError(404, "not-found", f"no offer {offer_id.hex()} on this hub")
    return json_response(view)


async def get_marks(request: web.Request) -> web.Response:
    hub_text = request.match_info["hub_id"]
    hub = hub_param(hub_text)
    unknown = sorted(set(request.query) - {"scheme"})
    if unknown:
        raise ApiError(400, "invalid", f"unknown parameter {unknown[0]!r}; allowed: scheme")
    store, now = request.app[STORE_KEY], _now(request)
    scheme = _text_param(request.query, "scheme")
    if scheme is not None:
        check = await store.read(store.mark_check, hub, scheme, now)
        if check["status"] == "unknown-scheme":
            raise ApiError(404, "not-found", check["reason"])
        return json_response({"hub": hub_text.strip(), "scheme": scheme, **check})
    marks = await store.read(store.marks_view, hub, now)
    return json_response({"hub": hub_text.strip(), "marks": marks})


async def find_blob(app: web.Application, digest: bytes) -> bytes | None:
    """A blob's bytes: from this hub's blob store, else fetched on demand from peers by hash (PRODUCT.md §2:
    attachments are content-addressed blobs) when federation is on and a stored guide names it as an
    attachment; None if neither. Only hashes a stored guide names are fetched, so a request for an arbitrary
    hash never makes this hub query its peers.
    """
    store = app[STORE_KEY]
    data = await store.read(store.get_blob, digest)
    if data is not None or BLOB_FETCH_KEY not in app:
        return data
    meta = await store.read(store.attachment, digest)
    if meta is None:
        return None
    return await app[BLOB_FETCH_KEY](digest, int(meta["size"]), meta["author"])


async def get_blob(request: web.Request) -> web.Response:
    digest = record_id_param(request.match_info["hash"])
    data = await find_blob(request.app, digest)
    if data is None:
        raise ApiError(404, "not-found", f"no blob {digest.hex()} on this hub")
    return web.Response(
        body=data,
        content_type="application/octet-stream",
        headers={"Cache-Control": "public, max-age=31536000, immutable"},
    )


def _raw_from_request(data: Any, home: Home, store: Store, now: int) -> bytes:
    """The signed record a publish request asks for: given as hex, or built and signed by this hub."""
    if not isinstance(data, dict):
        raise ApiError(400, "invalid", 'send {"kind": ..., "body": {...}} or {"record": "<hex>"}')
    if set(data) == {"record"}:
        if not isinstance(data["record"], str):
            raise ApiError(400, "invalid", "record must be the hex text of a signed record")
        try:
            return bytes.fromhex(data["record"])
        except ValueError:
            raise ApiError(400, "invalid", "record is not valid hex") from None
    if set(data) != {"kind", "body"}:
        extra = sorted(set(data) - {"kind", "body"})
        what = f"unknown field {extra[0]!r}" if extra else "missing kind or body"
        raise ApiError(
            400, "invalid", f'{what}; send {{"kind": ..., "body": {{...}}}} or {{"record": "<hex>"}}'
        )
    kind = data["kind"]
    if not isinstance(kind, str) or kind not in KINDS:
        raise ApiError(400, "invalid", f"unknown kind {str(kind)[:40]!r}; known kinds: {', '.join(KINDS)}")
    association = store.association_id() or home.association
    if association is None and kind != "charter":
        raise ApiError(
            409,
            "missing-reference",
            "this hub has no association yet; run `coophub charter create` or `coophub join` first",
        )
    body = body_from_json(kind, data["body"])
    if kind == "attestation":  # the assessor's Open Badges credential travels in the record (docs/opendata.md)
        body = issue_credential(store, home.key, association or bytes(32), body, home.config.url)
    record = build_record(home.key, association or bytes(32), kind, body, now, limits=store.limits)
    store.check_publish(record, now)
    return record.raw


async def post_publish(request: web.Request) -> web.Response:
    _require_token(request)
    home, store, limits = request.app[HOME_KEY], request.app[STORE_KEY], request.app[LIMITS_KEY]
    data = await _read_json(request, limits.max_api_body_bytes)
    now = _now(request)
    raw = await store.read(_raw_from_request, data, home, store, now)
    # The bytes come from this hub's own user (the token proves it): origin is this hub, so its own profile
    # while it is an applicant is quarantined here rather than deferred (docs/protocol.md §2.3).
    result = (await store.ingest_async([raw], now_ms=now, source="api", origin=home.key.public))[0]
    if result.status == "refused" and result.reason == "error":
        # The database failed (a full disk, an I/O error): the record may be fine and was not stored. 503 tells the
        # client to try again later; a 422 would tell it to drop the record (tests/faults/test_disk_full.py).
        raise RequestError(503, "error", result.detail or "the database failed",
                           headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)})
    if result.status == "refused":
        raise ApiError(422, result.reason or "invalid", result.detail or "the record was refused")
    if result.status in ("deferred", "quarantined"):
        # Held, not stored yet: 202 says so, with why and what it waits for.
        return json_response({"id": result.id, "status": result.status, "reason": result.reason,
                              "detail": result.detail}, 202)
    return json_response({"id": result.id, "status": result.status})


async def post_blob(request: web.Request) -> web.Response:
    _require_token(request)
    store, limits = request.app[STORE_KEY], request.app[LIMITS_KEY]
    data = await _read_body(request, limits.max_blob_bytes)
    digest = await store.read(store.put_blob, data)
    return json_response({"hash": digest.hex(), "size": len(data)})


# -- the application -----------------------------------------------------------------------------------------


def _add_api_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/v1/status", get_status)
    r.add_get("/api/v1/peers", get_peers)
    r.add_get("/api/v1/directory", get_directory)
    r.add_get("/api/v1/applicants", get_applicants)
    r.add_get("/api/v1/records/{id}", get_record)
    r.add_get("/api/v1/hubs/{hub_id}", get_hub)
    r.add_get("/api/v1/offers/{id}", get_offer)
    r.add_get("/api/v1/marks/{hub_id}", get_marks)
    r.add_get("/api/v1/blobs/{hash}", get_blob)
    r.add_post("/api/v1/publish", post_publish)
    r.add_post("/api/v1/blobs", post_blob)
    from hub import governance_api  # it imports this module's keys and helpers
    from hub.opendata import routes as opendata  # imported here: it uses this module's keys and errors

    governance_api.add_routes(r)
    opendata.setup(app)


def _optional_setup(module: str, app: web.Application) -> None:
    """Call ``module.setup(app)`` if that module exists; an error *inside* it is not hidden."""
    try:
        found = importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its package is missing
        found = False
    if found:
        importlib.import_module(module).setup(app)


def make_app(
    home: Home,
    store: Store,
    *,
    now_ms: Callable[[], int] | None = None,
    web_pages: bool = True,
    federation: bool = True,
    limits: Limits | None = None,
) -> web.Application:
    """The hub's aiohttp application over an opened home and store.

    ``web_pages`` adds the staff pages (``hub.web``) when installed, ``federation`` the peer protocol
    (``federation.driver``); tests of the API alone turn them off.
    ``limits`` are the home's unless given (``coophub serve`` passes them fitted to the open-file limit).

    Raises:
        HomeError: the home's limits are malformed.
    """
    limits = limits or home.limits()
    # Bodies are read and bounded per route by hub.bounds (while they stream in); the app-wide bound is only a
    # backstop, the largest any route accepts. The error boundary is outermost, so it covers every middleware.
    biggest = max(limits.max_api_body_bytes, limits.max_blob_bytes, limits.max_fed_body_bytes)
    app = web.Application(middlewares=[boundary_middleware, bounds_middleware], client_max_size=biggest)
    app[BOUNDS_KEY] = Bounds(limits, home.token)
    app[HOME_KEY] = home
    app[STORE_KEY] = store
    app[LIMITS_KEY] = limits
    app[NOW_KEY] = now_ms or _now_ms
    _add_api_routes(app)
    _optional_setup("hub.aid_api", app)  # time credits and funds (docs/api.md), and booking payments to us
    from hub import metrics  # here, not at the top: hub.metrics reads this module's app keys

    metrics.setup(app)
    app[metrics.COLLECTORS_KEY].append(app[BOUNDS_KEY].metric_families)
    if web_pages:
        _optional_setup("hub.web", app)
        _optional_setup("hub.aid_web", app)
    if federation:
        _add_federation(app)
    return app


def _add_federation(app: web.Application) -> None:
    """The one place the hub wires federation in (STYLE.md "Seams are typed"): the store goes in as
    federation's ``FederationStore`` (federation/store_api.py, which ``Store`` satisfies structurally); the
    attachment fetcher, traffic counters and peer metrics come back into the hub's own app keys."""
    from hub import metrics  # here, not at the top: hub.metrics reads this module's app keys

    fed = federation_driver.setup(app, app[HOME_KEY], app[STORE_KEY])
    app[BLOB_FETCH_KEY] = fed.fetch_blob  # the API and web pages fetch missing attachments through it
    app[TRAFFIC_KEY] = fed.traffic
    app[PEER_SESSIONS_KEY] = fed.peer_sessions  # peers list, status and the network page read it
    app[metrics.COLLECTORS_KEY].append(fed.metric_families)
