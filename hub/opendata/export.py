"""``coophub export --format hsds|ocds|badges|murmurations``: the same documents the API serves, for a whole
directory at once (docs/cli.md, docs/opendata.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from . import badges, load, murmurations, ocds
from .common import Omitted

__all__ = ["FORMATS", "export_document"]

T = TypeVar("T")
FORMATS = ("hsds", "ocds", "badges", "murmurations")


class _Viewer(Protocol):
    def view(self, fn: Callable[..., T], *args: Any) -> T: ...


def _hsds(store: _Viewer, now_ms: int, base_url: str | None, omitted: Omitted) -> Any:
    from hub.hsds import hsds_from_records

    return hsds_from_records(store.view(load.directory_records), now_ms, omitted)


def _ocds(store: _Viewer, now_ms: int, base_url: str | None, omitted: Omitted) -> Any:
    releases, publisher = [], "coophub"
    for offer_id in store.view(load.closed_offer_ids):
        records = store.view(load.offer_records, offer_id)
        release = ocds.ocds_release(records, offer_id, omitted)
        if release is not None:
            releases.append(release)
            publisher = next((str(r.body["name"]) for r in records if r.kind == "charter"), publisher)
    uri = f"{base_url.rstrip('/')}/api/v1/export/ocds.json" if base_url else "urn:coophub:export:ocds"
    return ocds.release_package(releases, uri, publisher)


def _badges(store: _Viewer, now_ms: int, base_url: str | None, omitted: Omitted) -> Any:
    out = []
    for attestation_id in store.view(load.attestation_ids):
        records = store.view(load.attestation_records, attestation_id)
        credential = badges.credential_for(records, attestation_id, now_ms, base_url)
        if credential is not None:
            out.append({"attestation": attestation_id.hex(), "status": credential.status,
                        "reason": credential.reason, "jwt": credential.jwt, "credential": credential.document})
    return {"credentials": out}


def _murmurations(store: _Viewer, now_ms: int, base_url: str | None, omitted: Omitted) -> Any:
    return {"profiles": list(murmurations.murmurations_profiles(store.view(load.directory_records),
                                                                omitted).values())}


_BUILDERS: dict[str, Callable[[_Viewer, int, str | None, Omitted], Any]] = {
    "hsds": _hsds, "ocds": _ocds, "badges": _badges, "murmurations": _murmurations,
}


def export_document(store: _Viewer, fmt: str, now_ms: int, base_url: str | None) -> tuple[Any, Omitted]:
    """The ``fmt`` document of everything ``store`` holds, and what was left out of it.

    Raises:
        KeyError: ``fmt`` is not one of :data:`FORMATS`.
        sqlite3.Error: the database cannot be read.
    """
    omitted = Omitted()
    return _BUILDERS[fmt](store, now_ms, base_url, omitted), omitted
