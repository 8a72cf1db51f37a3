"""Export the federated directory as Open Referral HSDS 3.0 JSON (``coophub export --format hsds``).

The output is HSDS's tabular model written as one JSON object with an array per table (``organizations``,
``services``, ``service_areas``, ``contacts``, ``phones``, ``taxonomies``, ``taxonomy_terms``, ``attributes``,
``organization_identifiers``), each row an object of that table's fields. Mapping:

    member co-op's current profile   -> organization (+ organization_identifier: its hub id; contact; phone)
    each service in the profile      -> service, status "active"; its category -> attribute linking an
                                        Open Eligibility taxonomy_term; valid quality marks -> accreditations
    each region served               -> service_area of each of the co-op's services

HSDS ids are UUIDs (schema "format": "uuid"); ours are UUID 5 of the hub id (and service name), so they stay
the same from one export to the next and on every hub. Only members are exported: applicants are not yet
vouched for.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from protocol import (
    Amendment,
    Record,
    adopted_amendments,
    current_profiles,
    decode_record,
    format_hub_id,
    mark_status,
    membership,
    terms_at,
)
from protocol.jsonview import iso_ms
from protocol.limits import DEFAULT_LIMITS

__all__ = ["HSDS_TABLES", "HSDS_VERSION", "export_hsds", "hsds_from_records"]

HSDS_VERSION = "3.0"
HSDS_TABLES = (
    "organizations",
    "organization_identifiers",
    "services",
    "service_areas",
    "contacts",
    "phones",
    "taxonomies",
    "taxonomy_terms",
    "attributes",
)
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://coophub.org/hsds/v1")
_OPEN_ELIGIBILITY = "Open Eligibility"
_CATEGORY_NAMES = {
    "care": "Care",
    "education": "Education",
    "emergency": "Emergency",
    "food": "Food",
    "goods": "Goods",
    "health": "Health",
    "housing": "Housing",
    "legal": "Legal",
    "money": "Money",
    "transit": "Transit",
    "work": "Work",
}
_EXPORT_PAGE = 1000


def stable_id(*parts: str) -> str:
    """A UUID 5 naming one HSDS row, the same on every export and every hub."""
    return str(uuid.uuid5(_NAMESPACE, "/".join(parts)))


def hsds_from_records(records: Iterable[Record], now_ms: int) -> dict[str, Any]:
    """HSDS 3.0 tables for the member co-ops among ``records`` (every record a hub holds), at ``now_ms``."""
    by_kind: dict[str, list[Record]] = {}
    for record in records:
        by_kind.setdefault(record.kind, []).append(record)
    charters = by_kind.get("charter", [])
    tables: dict[str, list[dict[str, Any]]] = {name: [] for name in HSDS_TABLES}
    out: dict[str, Any] = {
        "hsds_version": HSDS_VERSION,
        "generator": "coophub",
        "generated": iso_ms(now_ms),
        "association": None,
        **tables,
    }
    if not charters:
        return out
    charter = min(charters, key=lambda c: (c.created_ms, c.id))
    out["association"] = {"id": charter.id.hex(), "name": charter.body["name"]}
    revocations = by_kind.get("revocation", [])
    # The charter as the members amended it (docs/protocol.md §6.7): membership and schemes now, and each
    # mark authorised under the terms at its creation.
    amendments = adopted_amendments(charter, [r for kind in ("proposal", "ballot", "delegation",
                                                             "proposal-close", "endorsement", "revocation")
                                              for r in by_kind.get(kind, [])])
    members = membership(charter, by_kind.get("endorsement", []), revocations,
                         terms=terms_at(charter, amendments, now_ms))
    attestations = by_kind.get("attestation", [])
    terms: dict[str, dict[str, Any]] = {}
    profiles = current_profiles(by_kind.get("profile", []))
    for author in sorted(profiles, key=format_hub_id):
        if not members.is_member(author):
            continue
        marks = _valid_marks(author, charter, attestations, revocations, now_ms, amendments)
        _add_organization(tables, profiles[author], marks, terms)
    if terms:
        tables["taxonomies"].append(_taxonomy())
        tables["taxonomy_terms"].extend(terms[c] for c in sorted(terms))
    return out


def _valid_marks(
    hub: bytes, charter: Record, attestations: list[Record], revocations: list[Record], now_ms: int,
    amendments: list[Amendment],
) -> list[str]:
    marks = []
    terms = terms_at(charter, amendments, now_ms)
    for scheme in [{"id": s, "name": terms.scheme_names[s]} for s in terms.schemes]:
        status = mark_status(hub, scheme["id"], attestations, charter, revocations, now_ms, amendments)
        if status.status == "valid" and status.attestation is not None:
            body = status.attestation.body
            marks.append(
                f"{scheme['name']} ({scheme['id']}): {body['level']}, valid until "
                f"{iso_ms(body['valid_until'])[:10]}, attested by {status.attestation.author_id}"
            )
    return marks


def _add_organization(
    tables: dict[str, list[dict[str, Any]]],
    profile: Record,
    marks: list[str],
    terms: dict[str, dict[str, Any]],
) -> None:
    body, hub_id = profile.body, profile.author_id
    org_id = stable_id("organization", hub_id)
    contact = body.get("contact") or {}
    org: dict[str, Any] = {
        "id": org_id,
        "name": body["name"],
        "description": body.get("description") or body["name"],
    }
    _put(org, "legal_status", body.get("legal_form"))
    _put(org, "email", contact.get("email"))
    _put(org, "website", body.get("website"))
    tables["organizations"].append(org)
    tables["organization_identifiers"].append(
        {
            "id": stable_id("organization_identifier", hub_id),
            "organization_id": org_id,
            "identifier_scheme": "coophub",
            "identifier_type": "coophub hub id",
            "identifier": hub_id,
        }
    )
    _add_contact(tables, org_id, hub_id, body["name"], contact)
    seen: dict[str, int] = {}
    for service in body["services"]:
        key = f"{service['name']}/{service['category']}"
        seen[key] = seen.get(key, 0) + 1
        service_id = stable_id("service", hub_id, key, str(seen[key]))
        _add_service(tables, org_id, service_id, service, body, marks, terms)


def _add_contact(
    tables: dict[str, list[dict[str, Any]]], org_id: str, hub_id: str, name: str, contact: dict[str, Any]
) -> None:
    if not contact:
        return
    row: dict[str, Any] = {"id": stable_id("contact", hub_id), "organization_id": org_id, "name": name}
    _put(row, "email", contact.get("email"))
    tables["contacts"].append(row)
    if contact.get("phone"):
        tables["phones"].append(
            {
                "id": stable_id("phone", hub_id),
                "organization_id": org_id,
                "contact_id": row["id"],
                "number": contact["phone"],
            }
        )


def _add_service(
    tables: dict[str, list[dict[str, Any]]],
    org_id: str,
    service_id: str,
    service: dict[str, Any],
    profile: dict[str, Any],
    marks: list[str],
    terms: dict[str, dict[str, Any]],
) -> None:
    row: dict[str, Any] = {
        "id": service_id,
        "organization_id": org_id,
        "name": service["name"],
        "description": service.get("description") or service["name"],
        "status": "active",
    }
    _put(row, "url", profile.get("website"))
    _put(row, "email", (profile.get("contact") or {}).get("email"))
    if marks:
        row["accreditations"] = "; ".join(marks)
    tables["services"].append(row)
    for region in profile["regions"]:
        tables["service_areas"].append(
            {"id": stable_id("service_area", service_id, region), "service_id": service_id, "name": region}
        )
    category = service["category"]
    term = terms.setdefault(category, _term(category))
    tables["attributes"].append(
        {
            "id": stable_id("attribute", service_id, category),
            "link_id": service_id,
            "link_type": "service_category",
            "link_entity": "service",
            "taxonomy_term_id": term["id"],
            "value": category,
            "label": term["name"],
        }
    )


def _taxonomy() -> dict[str, Any]:
    return {
        "id": stable_id("taxonomy", "open-eligibility"),
        "name": _OPEN_ELIGIBILITY,
        "description": "The top-level human-service categories of the Open Eligibility taxonomy",
        "uri": "https://openeligibility.org/",
        "version": "1",
    }


def _term(category: str) -> dict[str, Any]:
    name = _CATEGORY_NAMES.get(category, category.title())
    return {
        "id": stable_id("taxonomy_term", "open-eligibility", category),
        "code": category,
        "name": name,
        "description": f"{name} services (Open Eligibility top-level category)",
        "taxonomy": _OPEN_ELIGIBILITY,
        "taxonomy_id": stable_id("taxonomy", "open-eligibility"),
    }


def _put(row: dict[str, Any], key: str, value: Any) -> None:
    if value:
        row[key] = value


def _all_records(store: Any, now_ms: int) -> list[Record]:
    records: list[Record] = []
    after: tuple[int, bytes] | None = None
    limits = getattr(store, "limits", DEFAULT_LIMITS)
    while True:
        page = store.iter_raws(after, _EXPORT_PAGE)
        for _created, _id, raw in page:
            # Stored records passed these checks at ingest; a record dated in the future then is still ahead.
            records.append(decode_record(raw, now_ms=max(now_ms, _created), limits=limits))
        if len(page) < _EXPORT_PAGE:
            return records
        after = (page[-1][0], page[-1][1])


def export_hsds(store: Any, now_ms: int) -> dict[str, Any]:
    """The directory held by ``store`` as HSDS 3.0 tables (call through ``store.read`` from async code).

    Raises:
        ProtocolError: a stored record no longer decodes (a corrupt database).
    """
    return hsds_from_records(_all_records(store, now_ms), now_ms)
