"""The open-data endpoints (docs/api.md, "Open data"); registered by hub.app with the rest of ``/api/v1``.

    GET /api/v1/export/hsds.json                    the directory as HSDS 3.0 tables
    GET /api/v1/export/ocds.json                    an OCDS release package: every closed joint purchase
    GET /api/v1/offers/{id}/ocds.json               the OCDS release package of one closed joint purchase
    GET /api/v1/hubs/{hub_id}/murmurations.json     a member's Murmurations profile
    GET /api/v1/marks/{attestation}/credential      a quality mark as an Open Badges 3.0 credential (JSON)
    GET /api/v1/marks/{attestation}/credential.jwt  the assessor's signed credential (VC-JWT, EdDSA)
    GET /api/v1/hubs/{hub_id}/revocations.json      the 1EdTech revocation list of an assessor's credentials

Every document depends only on the records this hub holds (and, for marks, the time), so every hub serves the
same one. Values left out because they would not validate are counted in the ``Coophub-Omitted`` header.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hub.app import HOME_KEY, NOW_KEY, STORE_KEY, ApiError, hub_param, json_response, record_id_param
from protocol import format_hub_id

from . import badges, load, murmurations, ocds
from .common import Omitted

__all__ = ["setup"]

_JWT_TYPE = "application/jwt"


def _base_url(request: web.Request) -> str:
    """This hub's public URL (config.toml ``url``), else the origin the request came to."""
    return request.app[HOME_KEY].config.url.rstrip("/") or str(request.url.origin())


def _json(data: Any, omitted: Omitted) -> web.Response:
    response = json_response(data)
    if omitted:
        response.headers["Coophub-Omitted"] = ", ".join(f"{k}={v}" for k, v in sorted(omitted.items()))
    return response


async def _view(request: web.Request, fn: Any, *args: Any) -> Any:
    store = request.app[STORE_KEY]
    return await store.read(store.view, fn, *args)


async def get_hsds(request: web.Request) -> web.Response:
    from hub.hsds import hsds_from_records

    omitted = Omitted()
    records = await _view(request, load.directory_records)
    return _json(hsds_from_records(records, request.app[NOW_KEY](), omitted), omitted)


def _publisher(records: list[Any], fallback: str) -> str:
    charter = next((r for r in records if r.kind == "charter"), None)
    return str(charter.body["name"]) if charter is not None else fallback


async def get_ocds_all(request: web.Request) -> web.Response:
    omitted, releases, publisher = Omitted(), [], request.app[HOME_KEY].config.name
    for offer_id in await _view(request, load.closed_offer_ids):
        records = await _view(request, load.offer_records, offer_id)
        release = ocds.ocds_release(records, offer_id, omitted)
        if release is not None:
            releases.append(release)
            publisher = _publisher(records, publisher)
    return _json(ocds.release_package(releases, str(request.url), publisher), omitted)


async def get_ocds(request: web.Request) -> web.Response:
    offer_id = record_id_param(request.match_info["id"])
    records = await _view(request, load.offer_records, offer_id)
    if not records:
        raise ApiError(404, "not-found", f"no offer {offer_id.hex()} on this hub")
    omitted = Omitted()
    release = ocds.ocds_release(records, offer_id, omitted)
    if release is None:
        raise ApiError(404, "not-found", f"offer {offer_id.hex()} is not closed yet; its OCDS release is "
                                         "published once its author closes it (`coophub close-offer`)")
    package = ocds.release_package([release], str(request.url), _publisher(records, ""))
    return _json(package, omitted)


async def get_murmurations(request: web.Request) -> web.Response:
    hub_text = request.match_info["hub_id"]
    hub = hub_param(hub_text)
    records = await _view(request, load.directory_records)
    omitted = Omitted()
    profiles = murmurations.murmurations_profiles(records, omitted)
    profile = profiles.get(format_hub_id(hub))
    if profile is None:
        raise ApiError(404, "not-found", f"hub {hub_text[:80]} is not a member with a profile on this hub")
    return _json(profile, omitted)


async def _credential(request: web.Request) -> badges.Credential:
    attestation_id = record_id_param(request.match_info["id"])
    records = await _view(request, load.attestation_records, attestation_id)
    credential = badges.credential_for(records, attestation_id, request.app[NOW_KEY](), _base_url(request))
    if credential is None:
        raise ApiError(404, "not-found", f"no attestation {attestation_id.hex()} on this hub")
    return credential


async def get_credential(request: web.Request) -> web.Response:
    credential = await _credential(request)
    response = json_response(credential.document)
    response.headers["Coophub-Proof"] = "vc-jwt" if credential.jwt else "none"
    response.headers["Coophub-Mark-Status"] = credential.status
    return response


async def get_credential_jwt(request: web.Request) -> web.Response:
    credential = await _credential(request)
    if credential.jwt is None:
        raise ApiError(404, "not-found", "this attestation carries no signed credential from its assessor; "
                                         "its record's own signature proves it (GET /api/v1/records/{id})")
    return web.Response(text=credential.jwt, content_type=_JWT_TYPE,
                        headers={"Coophub-Mark-Status": credential.status})


async def get_revocations(request: web.Request) -> web.Response:
    assessor = hub_param(request.match_info["hub_id"])
    records = await _view(request, load.issuer_records, assessor)
    return json_response(badges.revocation_list(records, assessor, str(request.url)))


def setup(app: web.Application) -> None:
    """Add the open-data routes to ``app`` (called by hub.app with the other API routes)."""
    r = app.router
    r.add_get("/api/v1/export/hsds.json", get_hsds)
    r.add_get("/api/v1/export/ocds.json", get_ocds_all)
    r.add_get("/api/v1/offers/{id}/ocds.json", get_ocds)
    r.add_get("/api/v1/hubs/{hub_id}/murmurations.json", get_murmurations)
    r.add_get("/api/v1/hubs/{hub_id}/revocations.json", get_revocations)
    r.add_get("/api/v1/marks/{id}/credential", get_credential)
    r.add_get("/api/v1/marks/{id}/credential.jwt", get_credential_jwt)
