"""The responder side of the peer protocol: ``/fed/v1/session`` and what a session's requests do.

``GET /fed/v1/session`` upgrades to a WebSocket and runs the handshake (``federation/session.py``); every
request after it is answered by :func:`serve_request`, attributable to the proven peer hub. The only other
``/fed/v1/`` route is the public, read-only ``GET /fed/v1/info``. The unauthenticated write routes of the first
peer protocol (``announce``, ``push``, ``sync``, ``fetch``, ``records``, ``blobs``) answer 410 Gone with a JSON
body that says to open a session instead (docs/federation.md "What changed for operators").

Every request is bounded: frames by ``session.frame_limit``, counts by ``limits.fetch_batch``, Negentropy
replies by the frame size limit. Records a peer pushes enter through the same ``Store.ingest`` as everything
else, with the session's hub as their authenticated ``origin``.
"""

from __future__ import annotations

import dataclasses
import json
from functools import partial
from typing import TYPE_CHECKING, Any

import msgpack
from aiohttp import web

from . import wire
from .negentropy import Negentropy, NegentropyError
from .session import OPS

if TYPE_CHECKING:
    from .driver import Federation
    from .transport import PeerConn

__all__ = ["GONE", "add_routes", "info_message", "serve_request"]

#: The routes of the first, unauthenticated peer protocol: a request there is told what to use instead.
GONE = ("announce", "push", "sync", "fetch", "records", "blobs/{digest}")


def add_routes(app: web.Application, fed: Federation) -> None:
    """Register the /fed/v1 handlers for ``fed`` on ``app``."""
    r = app.router
    # functools.partial of a coroutine function is still one to aiohttp (inspect unwraps partials); a lambda
    # is a plain function, which aiohttp deprecates (a DeprecationWarning on every app made).
    r.add_get("/fed/v1/info", partial(_info, fed=fed))
    r.add_get("/fed/v1/session", partial(_session, fed=fed))
    for name in GONE:
        r.add_route("*", f"/fed/v1/{name}", _gone)


def info_message(fed: Federation) -> dict[str, object]:
    """What this hub publishes about itself; ``limits`` are the values it enforces."""
    association = fed.store.association_id() or b""
    return {
        "version": wire.WIRE_VERSION,
        "hub": fed.home.key.public,
        "association": association,
        "url": fed.public_url,
        "records": fed.store.count(),
        "limits": dataclasses.asdict(fed.limits),
        "session": "/fed/v1/session",
    }


async def _info(request: web.Request, fed: Federation) -> web.Response:
    fed.stats["served_info"] += 1
    return web.Response(body=wire.encode(await fed.store.read(info_message, fed)), content_type=wire.CONTENT_TYPE)


async def _gone(request: web.Request) -> web.Response:
    await request.read()  # read (within the /fed body limit and timeouts) as the old routes did, then refuse
    body = {"error": "gone",
            "detail": "the unauthenticated peer routes were removed: open an authenticated peer session with "
                      "GET /fed/v1/session (WebSocket, docs/protocol.md §8); GET /fed/v1/info stays public"}
    return web.Response(status=410, text=json.dumps(body), content_type="application/json")


async def _session(request: web.Request, fed: Federation) -> web.StreamResponse:
    return await fed.accept_session(request)


# -- what a session's requests do ----------------------------------------------------------------------------


async def serve_request(fed: Federation, conn: PeerConn, op: str, body: Any) -> Any:
    """Answer one request from the peer of ``conn``; raises a ProtocolError (sent as an error frame).

    An applicant's session (a hub that is not eligible) may only read (``info``, ``page``, ``fetch``,
    ``blob``) and push its own profile, which the store quarantines (docs/protocol.md §2.3).
    """
    allowed = OPS.get(op)
    if allowed is None:
        raise wire.WireError(f"unknown request {op[:40]!r}")
    if conn.role != "member" and not allowed:
        raise wire.WireError(f"{op}: an applicant's session may only push its own profile and read",
                             reason="blocked")
    fed.stats[f"served_{op}"] += 1
    fed.stats["served_requests"] += 1
    limits = fed.limits
    if op == "info":
        return await fed.store.read(info_message, fed)
    if op == "announce":
        ids = wire.ids_from(body, limits, what="announce")
        want = await fed.wanted(conn, ids)
        fed.note_inbound(conn)
        return {"ids": want}
    if op == "push":
        raws = wire.records_from(body, limits, what="push")
        results = await fed.receive_push(conn, raws)
        return {"results": [[bytes.fromhex(r.id) if r.id else b"", r.status, r.reason or ""] for r in results]}
    if op == "sync":
        if not isinstance(body, bytes) or len(body) > limits.negentropy_frame_bytes:
            raise wire.WireError("sync: one Negentropy message (bin) within negentropy_frame_bytes")
        storage = await fed.sync_storage()
        try:
            reply = Negentropy(storage, limits.negentropy_frame_bytes).reconcile(body)
        except NegentropyError as exc:
            raise wire.WireError(f"negentropy: {exc}") from None
        fed.stats["sync_served"] += 1
        fed.note_inbound(conn)
        return reply
    if op == "fetch":
        ids = wire.ids_from(body, limits, what="fetch")
        return {"records": _within(await fed.store.read(fed.store.raws_by_ids, ids), limits)}
    if op == "page":
        after, limit = wire.page_request_from(body, limits)
        rows = await fed.store.read(fed.store.iter_raws, after, limit)
        raws = _within([raw for _, _, raw in rows], limits)
        last: list[object] = [rows[len(raws) - 1][0], rows[len(raws) - 1][1]] if raws else []
        if len(rows) < limit and len(raws) == len(rows):
            last = []  # the end: nothing after this page
        return {"records": raws, "last": last}
    # blob
    digest = body.get("hash") if isinstance(body, dict) else None
    if not isinstance(digest, bytes) or len(digest) != 32:
        raise wire.WireError("blob: hash is a 32-byte SHA-256")
    data = await fed.store.read(fed.store.get_blob, digest)
    if data is None:
        raise wire.WireError("blob: no blob with that hash here", reason="error")
    return {"data": data}


def _within(raws: list[bytes], limits: Any) -> list[bytes]:
    """Keep a reply under the body limit the receiver enforces (it asks again for the rest)."""
    out, size = [], 0
    for raw in raws:
        size += len(raw) + 5
        if size > limits.max_fed_body_bytes - 1024:
            break
        out.append(raw)
    return out


def own_profile(raw: bytes, hub: bytes) -> bool:
    """Whether ``raw`` looks like a profile authored by ``hub`` (the envelope only; ingest checks the rest)."""
    try:
        value = msgpack.unpackb(raw, raw=False, strict_map_key=False, max_array_len=16, max_map_len=256)
    except (ValueError, TypeError, msgpack.UnpackException, RecursionError):
        return False
    return (isinstance(value, list) and len(value) == 7 and value[2] == hub and value[4] == "profile")
