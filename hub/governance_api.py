"""The JSON API for the association's collective voice (docs/api.md "Proposals"), registered by hub.app:

    GET /api/v1/proposals            open first (closing soonest first), then awaiting their close, then closed
    GET /api/v1/proposals/{id}       one proposal with its result: tallies, quorum, roll-call, amendment, recount
    GET /api/v1/terms                the charter's terms in force now (as the members amended them)

Votes, proxies, closes and reviews are published like every record, through ``POST /api/v1/publish``, where
hub.governance_checks refuses what would have no effect (422, one line).
"""

from __future__ import annotations

from aiohttp import web

from hub import proposals
from hub.app import NOW_KEY, STORE_KEY, ApiError, json_response

__all__ = ["add_routes"]


def _id(text: str) -> bytes:
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ApiError(400, "invalid", f"a proposal id is 64 hex characters, got {text[:80]!r}")
    return raw


def _int(request: web.Request, name: str, default: int, high: int) -> int:
    text = request.query.get(name, "")
    if text == "":
        return default
    if not text.isdigit() or int(text) > high or (name == "limit" and int(text) < 1):
        low = 1 if name == "limit" else 0
        raise ApiError(400, "invalid", f"{name} must be an integer from {low} to {high}, got {text[:40]!r}")
    return int(text)


async def list_proposals(request: web.Request) -> web.Response:
    unknown = sorted(set(request.query) - {"limit", "offset"})
    if unknown:
        raise ApiError(400, "invalid", f"unknown parameter {unknown[0]!r}; allowed: limit, offset")
    store = request.app[STORE_KEY]
    data = await store.read(store.view, proposals.proposals_list, request.app[NOW_KEY](),
                            _int(request, "limit", proposals.DEFAULT_LIST, proposals.MAX_LIST),
                            _int(request, "offset", 0, 1_000_000))
    return json_response(data)


async def get_proposal(request: web.Request) -> web.Response:
    proposal_id = _id(request.match_info["id"])
    store = request.app[STORE_KEY]
    view = await store.read(store.view, proposals.proposal_view, proposal_id, request.app[NOW_KEY]())
    if view is None:
        raise ApiError(404, "not-found", f"no proposal {proposal_id.hex()} on this hub")
    return json_response(view)


async def get_terms(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    terms = await store.read(store.terms)
    if terms is None:
        raise ApiError(404, "not-found", "this hub has no charter yet")
    return json_response(proposals.terms_json(terms))


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/api/v1/proposals", list_proposals)
    router.add_get("/api/v1/proposals/{id}", get_proposal)
    router.add_get("/api/v1/terms", get_terms)
