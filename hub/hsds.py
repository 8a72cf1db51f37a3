"""Export the federated directory as Open Referral HSDS 3.0 (``coophub export --format hsds``, docs/opendata.md).

The output is one instance of HSDS 3.0's official tabular schema (``schema/compiled/tabular.json`` of
openreferral/specification, branch 3.0): a JSON object with one array per table, named as that schema and the
official ``datapackage.json`` name them — singular: ``organization``, ``organization_identifier``, ``service``,
``service_area``, ``contact``, ``phone``, ``taxonomy``, ``taxonomy_term``, ``attribute`` — each row carrying
only fields of that table. Mapping:

    member co-op's current profile   -> organization (+ organization_identifier: its hub id; contact; phone)
    each service in the profile      -> service, status "active", last_modified = the profile's time; its
                                        category -> attribute linking an Open Eligibility taxonomy_term;
                                        valid quality marks -> accreditations, naming scheme and assessor
    each region served               -> service_area of each of the co-op's services

HSDS ids are UUIDs (schema ``"format": "uuid"``); ours are UUID 5 of the hub id (and service name), so they stay
the same from one export to the next and on every hub. Only members are exported: applicants are not yet vouched
for. An e-mail address or URL from a peer's record that would not validate is left out and counted
(hub.opendata.common): peers' records are stored by the protocol's looser rules.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hub.opendata.common import Omitted, export_email, export_url, stable_uuid
from protocol import (
    Amendment,
    Record,
    adopted_amendments,
    current_profiles,
    format_hub_id,
    mark_status,
    membership,
    terms_at,
)
from protocol.jsonview import iso_ms

__all__ = ["HSDS_TABLES", "HSDS_VERSION", "export_hsds", "hsds_from_records", "stable_id"]

HSDS_VERSION = "3.0"
#: The tables we fill, by their names in HSDS 3.0's tabular.json and datapackage.json.
HSDS_TABLES = (
    "organization",
    "organization_identifier",
    "service",
    "service_area",
    "contact",
    "phone",
    "taxonomy",
    "taxonomy_term",
    "attribute",
)
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

Tables = dict[str, list[dict[str, Any]]]

#: A UUID 5 naming one HSDS row (kept under this name for callers of the first HSDS export).
stable_id = stable_uuid


def hsds_from_records(records: Iterable[Record], now_ms: int, omitted: Omitted | None = None) -> Tables:
    """HSDS 3.0 tables for the member co-ops among ``records``, with quality marks valid at ``now_ms``.

    ``records`` needs the charter, endorsements, revocations, profiles and attestations; other kinds are
    ignored. Values left out because they would not validate are counted in ``omitted``.
    """
    omitted = Omitted() if omitted is None else omitted
    by_kind: dict[str, list[Record]] = {}
    for record in records:
        by_kind.setdefault(record.kind, []).append(record)
    tables: Tables = {name: [] for name in HSDS_TABLES}
    charters = by_kind.get("charter", [])
    if not charters:
        return tables
    charter = min(charters, key=lambda c: (c.created_ms, c.id))
    revocations = by_kind.get("revocation", [])
    # The charter as the members amended it (docs/protocol.md §6.10): membership and schemes now, and each
    # mark authorised under the terms at its creation.
    amendments = adopted_amendments(charter, [r for kind in ("proposal", "ballot", "delegation",
                                                             "proposal-close", "endorsement", "revocation")
                                              for r in by_kind.get(kind, [])])
    members = membership(charter, by_kind.get("endorsement", []), revocations,
                         terms=terms_at(charter, amendments, now_ms))
    attestations = by_kind.get("attestation", [])
    profiles = current_profiles(by_kind.get("profile", []))
    names = {hub: profile.body["name"] for hub, profile in profiles.items()}
    terms: dict[str, dict[str, Any]] = {}
    for author in sorted(profiles, key=format_hub_id):
        if not members.is_member(author):
            continue
        marks = _valid_marks(author, charter, attestations, revocations, names, now_ms, amendments)
        _add_organization(tables, profiles[author], marks, terms, omitted)
    if terms:
        tables["taxonomy"].append(_taxonomy())
        tables["taxonomy_term"].extend(terms[c] for c in sorted(terms))
    return tables


def _valid_marks(hub: bytes, charter: Record, attestations: list[Record], revocations: list[Record],
                 names: dict[bytes, str], now_ms: int, amendments: list[Amendment]) -> list[str]:
    marks = []
    terms = terms_at(charter, amendments, now_ms)
    for scheme in [{"id": s, "name": terms.scheme_names[s]} for s in terms.schemes]:
        status = mark_status(hub, scheme["id"], attestations, charter, revocations, now_ms, amendments)
        if status.status == "valid" and status.attestation is not None:
            attestation = status.attestation
            assessor = names.get(attestation.author) or attestation.author_id
            marks.append(f"{scheme['name']} ({scheme['id']}): {attestation.body['level']}, valid until "
                         f"{iso_ms(attestation.body['valid_until'])[:10]}, attested by {assessor}")
    return marks


def _add_organization(tables: Tables, profile: Record, marks: list[str], terms: dict[str, dict[str, Any]],
                      omitted: Omitted) -> None:
    body, hub_id = profile.body, profile.author_id
    org_id = stable_uuid("organization", hub_id)
    contact = body.get("contact") or {}
    email = export_email(contact.get("email"), omitted)
    website = export_url(body.get("website"), omitted)
    org: dict[str, Any] = {"id": org_id, "name": body["name"], "description": body.get("description") or body["name"]}
    _put(org, "email", email)
    _put(org, "website", website)
    _put(org, "legal_status", body.get("legal_form"))
    tables["organization"].append(org)
    tables["organization_identifier"].append({
        "id": stable_uuid("organization_identifier", hub_id),
        "organization_id": org_id,
        "identifier_scheme": "coophub",
        "identifier_type": "coophub hub id",
        "identifier": hub_id,
    })
    _add_contact(tables, org_id, hub_id, body["name"], email, contact.get("phone"))
    seen: dict[str, int] = {}
    for service in body["services"]:
        key = f"{service['name']}/{service['category']}"
        seen[key] = seen.get(key, 0) + 1
        row: dict[str, Any] = {
            "id": stable_uuid("service", hub_id, key, str(seen[key])),
            "organization_id": org_id,
            "name": service["name"],
            "description": service.get("description") or service["name"],
            "status": "active",
            "last_modified": iso_ms(profile.created_ms),
        }
        _put(row, "url", website)
        _put(row, "email", email)
        if marks:
            row["accreditations"] = "; ".join(marks)
        tables["service"].append(row)
        _add_areas_and_category(tables, row["id"], body["regions"], service["category"], terms)


def _add_contact(tables: Tables, org_id: str, hub_id: str, name: str, email: str | None, phone: Any) -> None:
    if not email and not phone:
        return
    row: dict[str, Any] = {"id": stable_uuid("contact", hub_id), "organization_id": org_id, "name": name}
    _put(row, "email", email)
    tables["contact"].append(row)
    if phone:
        tables["phone"].append({"id": stable_uuid("phone", hub_id), "organization_id": org_id,
                                "contact_id": row["id"], "number": phone})


def _add_areas_and_category(tables: Tables, service_id: str, regions: list[str], category: str,
                            terms: dict[str, dict[str, Any]]) -> None:
    for region in regions:
        tables["service_area"].append(
            {"id": stable_uuid("service_area", service_id, region), "service_id": service_id, "name": region})
    term = terms.setdefault(category, _term(category))
    tables["attribute"].append({
        "id": stable_uuid("attribute", service_id, category),
        "link_id": service_id,
        "link_type": "service_category",
        "link_entity": "service",
        "taxonomy_term_id": term["id"],
        "value": term["name"],
    })


def _taxonomy() -> dict[str, Any]:
    return {
        "id": stable_uuid("taxonomy", "open-eligibility"),
        "name": _OPEN_ELIGIBILITY,
        "description": "The top-level human-service categories of the Open Eligibility taxonomy",
        "uri": "https://openeligibility.org/",
        "version": "1",
    }


def _term(category: str) -> dict[str, Any]:
    name = _CATEGORY_NAMES.get(category, category.title())
    return {
        "id": stable_uuid("taxonomy_term", "open-eligibility", category),
        "code": category,
        "name": name,
        "description": f"{name} services (Open Eligibility top-level category)",
        "taxonomy": _OPEN_ELIGIBILITY,
        "taxonomy_id": stable_uuid("taxonomy", "open-eligibility"),
    }


def _put(row: dict[str, Any], key: str, value: Any) -> None:
    if value:
        row[key] = value


def export_hsds(store: Any, now_ms: int, omitted: Omitted | None = None) -> Tables:
    """The directory held by ``store`` (a hub.store.Store) as HSDS 3.0 tables; call through ``store.read``
    from async code.

    Raises:
        sqlite3.Error: the database cannot be read.
    """
    from hub.opendata.load import directory_records

    return hsds_from_records(store.view(directory_records), now_ms, omitted)
