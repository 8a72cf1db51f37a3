"""The responder side of the peer protocol: aiohttp handlers for ``/fed/v1/`` (docs/federation.md).

Every handler is bounded: request bodies by ``limits.max_fed_body_bytes`` (enforced by aiohttp's
``client_max_size`` on the app), counts by ``limits.fetch_batch``, and Negentropy replies by the frame size
limit. Records pushed by a peer enter through the same ``Store.ingest`` as everything else.
"""

from __future__ import annotations

import time
from functools import partial
from typing import TYPE_CHECKING, Any

from aiohttp import web

from protocol.errors import ProtocolError
from protocol.limits import Limits

from . import wire
from .negentropy import Negentropy, NegentropyError

if TYPE_CHECKING:
    from .driver import Federation

__all__ = ["add_routes"]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def add_routes(app: web.Application, fed: Federation) -> None:
    """Register the /fed/v1 handlers for ``fed`` on ``app``, and the middleware that counts their traffic."""
    app.middlewares.append(_counting(fed))
    r = app.router
    # functools.partial of a coroutine function is still one to aiohttp (inspect unwraps partials); a lambda
    # is a plain function, which aiohttp deprecates (a DeprecationWarning on every app made).
    r.add_get("/fed/v1/info", partial(_info, fed=fed))
    r.add_post("/fed/v1/announce", partial(_announce, fed=fed))
    r.add_post("/fed/v1/push", partial(_push, fed=fed))
    r.add_post("/fed/v1/sync", partial(_sync, fed=fed))
    r.add_post("/fed/v1/fetch", partial(_fetch, fed=fed))
    r.add_get("/fed/v1/records", partial(_records, fed=fed))
    r.add_get("/fed/v1/blobs/{digest}", partial(_blob, fed=fed))


def _counting(fed: Federation) -> Any:
    """Count requests served under /fed/v1/ and their bytes (``served_<endpoint>``, ``served_bytes_in/out``):
    what an operator and the benchmarks see as messages per record."""
    @web.middleware
    async def count(request: web.Request, handler: Any) -> web.StreamResponse:
        if not request.path.startswith("/fed/v1/"):
            passed: web.StreamResponse = await handler(request)
            return passed
        endpoint = request.path.split("/")[3] or "unknown"
        fed.stats["served_requests"] += 1
        fed.stats[f"served_{endpoint if endpoint in _ENDPOINTS else 'other'}"] += 1
        fed.stats["served_bytes_in"] += request.content_length or 0
        response: web.StreamResponse = await handler(request)
        body = getattr(response, "body", None)
        if isinstance(body, bytes):
            fed.stats["served_bytes_out"] += len(body)
        return response

    return count


_ENDPOINTS = frozenset({"info", "announce", "push", "sync", "fetch", "records", "blobs"})


def _msgpack(message: dict[str, object]) -> web.Response:
    return web.Response(body=wire.encode(message), content_type=wire.CONTENT_TYPE)


def info_message(fed: Federation) -> dict[str, object]:
    """What this hub publishes about itself; ``limits`` are the values it enforces."""
    import dataclasses

    association = fed.store.association_id() or b""
    return {
        "version": wire.WIRE_VERSION,
        "hub": fed.home.key.public,
        "association": association,
        "url": fed.public_url,
        "records": fed.store.count(),
        "limits": dataclasses.asdict(fed.limits),
    }


async def _info(request: web.Request, fed: Federation) -> web.Response:
    return _msgpack(await fed.store.read(info_message, fed))


async def _announce(request: web.Request, fed: Federation) -> web.Response:
    sender, ids = wire.decode_ids(await request.read(), fed.limits, what="announce")
    have = await fed.store.read(fed.store.have, ids)
    fed.note_inbound(sender)
    return _msgpack({"ids": [i for i in ids if i not in have]})


async def _push(request: web.Request, fed: Federation) -> web.Response:
    sender, raws = wire.decode_push(await request.read(), fed.limits)
    source = sender or f"peer@{request.remote}"
    # The sender is only who it claims to be: count its refusals, but don't score that peer for them.
    results = await fed.receive(source, raws, score=False)
    return _msgpack({"results": [[bytes.fromhex(r.id) if r.id else b"", r.status, r.reason or ""]
                                 for r in results]})


async def _sync(request: web.Request, fed: Federation) -> web.Response:
    body = await request.read()
    storage = await fed.sync_storage()
    try:
        reply = Negentropy(storage, fed.limits.negentropy_frame_bytes).reconcile(body)
    except NegentropyError as exc:
        raise wire.WireError(f"negentropy: {exc}") from None
    fed.stats["sync_served"] += 1
    return web.Response(body=reply, content_type=wire.NEGENTROPY_CONTENT_TYPE)


async def _fetch(request: web.Request, fed: Federation) -> web.Response:
    _, ids = wire.decode_ids(await request.read(), fed.limits, what="fetch")
    raws = await fed.store.read(fed.store.raws_by_ids, ids)
    return _msgpack({"records": _within(raws, fed.limits)})


def _within(raws: list[bytes], limits: Limits) -> list[bytes]:
    """Keep a reply under the body limit the receiver enforces (it asks again for the rest)."""
    out, size = [], 0
    for raw in raws:
        size += len(raw) + 5
        if size > limits.max_fed_body_bytes - 1024:
            break
        out.append(raw)
    return out


async def _records(request: web.Request, fed: Federation) -> web.Response:
    after = wire.parse_cursor(request.query.get("after", ""))
    try:
        limit = int(request.query.get("limit", fed.limits.fetch_batch))
    except ValueError:
        raise wire.WireError("limit: expected an integer") from None
    limit = max(1, min(limit, fed.limits.fetch_batch))
    rows = await fed.store.read(fed.store.iter_raws, after, limit)
    raws = _within([raw for _, _, raw in rows], fed.limits)
    last: list[object] = [rows[len(raws) - 1][0], rows[len(raws) - 1][1]] if raws else []
    if len(rows) < limit and len(raws) == len(rows):
        last = []  # the end: nothing after this page
    return _msgpack({"records": raws, "last": last})


async def _blob(request: web.Request, fed: Federation) -> web.Response:
    try:
        digest = bytes.fromhex(request.match_info["digest"])
    except ValueError:
        raise wire.WireError("blob: expected a 64-character hex SHA-256") from None
    if len(digest) != 32:
        raise wire.WireError("blob: expected a 64-character hex SHA-256")
    data = await fed.store.read(fed.store.get_blob, digest)
    if data is None:
        raise web.HTTPNotFound(text='{"error": "not-found", "detail": "no blob with that hash here"}',
                               content_type="application/json")
    return web.Response(body=data, content_type="application/octet-stream")


_ = (ProtocolError, _now_ms)
