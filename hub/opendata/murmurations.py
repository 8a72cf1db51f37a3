"""A Murmurations profile per member hub (docs/opendata.md): the ``organizations_schema-v1.0.0`` profile of the
Murmurations library, so a co-op's entry can be indexed by the Murmurations network and shown on its maps.

    linked_schemas     ["organizations_schema-v1.0.0"]
    name, description  the profile's
    primary_url        the co-op's website (left out, and counted, if it is not an http(s) URL)
    urls               the website and the URLs at which its hub takes peers
    tags               "cooperative", its service categories and names, its stakeholder classes
    status             "active" while the hub is a member
    contact_details    the contact e-mail (left out, and counted, if invalid)
    telephone, full_address, geographic_scope ("regional" when it serves named regions)
    unique_id          the hub id
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from protocol import Record, current_profiles, membership

from .common import Omitted, export_email, export_url

__all__ = ["MURMURATIONS_SCHEMA", "murmurations_profile", "murmurations_profiles"]

MURMURATIONS_SCHEMA = "organizations_schema-v1.0.0"
_TAG_MAX = 100  # fields/tags.json: at most 100 tags of at most 100 characters


def murmurations_profile(profile: Record, omitted: Omitted | None = None) -> dict[str, Any]:
    """The Murmurations organisation profile of one co-op's current ``profile`` record."""
    omitted = Omitted() if omitted is None else omitted
    body = profile.body
    doc: dict[str, Any] = {"linked_schemas": [MURMURATIONS_SCHEMA], "name": body["name"][:200]}
    if body.get("description"):
        doc["description"] = body["description"]
    website = export_url(body.get("website"), omitted)
    if website:
        doc["primary_url"] = website
    urls = ([{"name": "website", "url": website}] if website else []) + [
        {"name": "coophub peer URL", "url": url}
        for url in (export_url(u, omitted) for u in body.get("peer_urls", [])) if url]
    if urls:
        doc["urls"] = urls
    tags = ["cooperative"] + [s["category"] for s in body["services"]] + [s["name"] for s in body["services"]]
    tags += list(body.get("stakeholders", []))
    doc["tags"] = list(dict.fromkeys(t[:100] for t in tags))[:_TAG_MAX]
    doc["status"] = "active"
    contact = body.get("contact") or {}
    email = export_email(contact.get("email"), omitted)
    if email:
        doc["contact_details"] = {"email": email}
    if contact.get("phone"):
        doc["telephone"] = contact["phone"]
    if contact.get("address"):
        doc["full_address"] = contact["address"]
    if body["regions"]:
        doc["geographic_scope"] = "regional"
    doc["unique_id"] = profile.author_id
    return doc


def murmurations_profiles(records: Iterable[Record], omitted: Omitted | None = None) -> dict[str, dict[str, Any]]:
    """Each member's Murmurations profile by hub id (members only: applicants are not yet vouched for)."""
    by_kind: dict[str, list[Record]] = {}
    for record in records:
        by_kind.setdefault(record.kind, []).append(record)
    charters = by_kind.get("charter", [])
    if not charters:
        return {}
    charter = min(charters, key=lambda c: (c.created_ms, c.id))
    members = membership(charter, by_kind.get("endorsement", []), by_kind.get("revocation", []))
    profiles = current_profiles(by_kind.get("profile", []))
    return {p.author_id: murmurations_profile(p, omitted)
            for hub, p in sorted(profiles.items(), key=lambda kv: kv[1].author_id) if members.is_member(hub)}
