"""An Open Contracting Data Standard (OCDS 1.1) release for each closed joint purchase (docs/opendata.md).

A joint purchase is three kinds of signed record: the ``offer`` (what, unit, price tiers, deadline), members'
``pledge`` records (quantities) and the author's ``offer-close`` naming exactly the pledges counted. Once closed,
the outcome is final and recomputable by anyone (docs/protocol.md §6.4), so it is published as one release:

    ocid                 "ocds-coophub-" + the offer's record id (globally unique; the prefix is not registered)
    id, date             the close's record id and time
    tag                  ["tender", "award"] when awarded; ["tender", "tenderCancellation"] when cancelled
    parties              the offer's author (procuringEntity) and every hub whose pledge the close counts (buyer)
    tender               the offer: title, description, status complete/cancelled, one item (quantity = total,
                         unit price of the tier reached), tenderPeriod from the offer to its deadline
    awards[0]            when awarded: value = total × unit price; one item per counted pledge (its record id,
                         the pledging co-op, its quantity)

Money in records is in the currency's minor unit (pence); OCDS amounts are in major units, converted with the
currency's ISO 4217 minor-unit digits from Babel's CLDR data. Nothing here reads the clock: a release depends only
on the records, so every hub publishes the same one.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from babel.numbers import UnknownCurrencyError, get_currency_precision

from protocol import Record, current_profiles, format_hub_id, membership, offer_tally
from protocol.jsonview import iso_ms

from .common import Omitted, export_email, export_url

__all__ = ["OCDS_VERSION", "OCID_PREFIX", "ocds_release", "release_package"]

OCDS_VERSION = "1.1"
OCID_PREFIX = "ocds-coophub-"


def _amount(minor: int, currency: str) -> float | int:
    try:
        digits = get_currency_precision(currency)
    except UnknownCurrencyError:  # a peer's record may carry any three letters (protocol/kinds.py)
        digits = 2
    value = Decimal(minor).scaleb(-digits)
    return int(value) if digits == 0 else float(value)


def _party(hub: Record | None, hub_id: str, roles: list[str], omitted: Omitted) -> dict[str, Any]:
    body = hub.body if hub is not None else {}
    party: dict[str, Any] = {
        "id": hub_id,
        "name": body.get("name") or hub_id,
        "identifier": {"scheme": "coophub", "id": hub_id},
        "roles": roles,
    }
    contact = body.get("contact") or {}
    point = {k: v for k, v in (("name", body.get("name")), ("email", export_email(contact.get("email"), omitted)),
                               ("telephone", contact.get("phone")), ("url", export_url(body.get("website"), omitted)))
             if v}
    if len(point) > 1:
        party["contactPoint"] = point
    if contact.get("address"):
        party["address"] = {"streetAddress": contact["address"]}
    return party


def ocds_release(records: Iterable[Record], offer_id: bytes, omitted: Omitted | None = None) -> dict[str, Any] | None:
    """The OCDS release of the joint purchase ``offer_id`` once its author has closed it, else None.

    ``records`` holds the offer, its pledges, closes and revocations, the charter, endorsements and revocations
    (membership) and profiles (names); hub.opendata.load.offer_records gathers them.
    """
    omitted = Omitted() if omitted is None else omitted
    by_kind: dict[str, list[Record]] = {}
    for record in records:
        by_kind.setdefault(record.kind, []).append(record)
    offer = next((o for o in by_kind.get("offer", []) if o.id == offer_id), None)
    charters = by_kind.get("charter", [])
    if offer is None or not charters:
        return None
    charter = min(charters, key=lambda c: (c.created_ms, c.id))
    members = membership(charter, by_kind.get("endorsement", []), by_kind.get("revocation", []))
    tally = offer_tally(offer, by_kind.get("pledge", []), by_kind.get("offer-close", []),
                        by_kind.get("revocation", []), members.members, offer.created_ms)
    close = next((c for c in by_kind.get("offer-close", []) if c.id == tally.close_id), None)
    if close is None:
        return None
    profiles = current_profiles(by_kind.get("profile", []))
    return _release(offer, close, tally, profiles, omitted)


def _release(offer: Record, close: Record, tally: Any, profiles: dict[bytes, Record],
             omitted: Omitted) -> dict[str, Any]:
    body, awarded = offer.body, close.body["outcome"] == "awarded"
    currency = body["currency"]
    author = offer.author_id
    buyers = {line.hub for line in tally.pledges}
    parties = [_party(profiles.get(offer.author), author,
                      ["procuringEntity", "buyer"] if offer.author in buyers else ["procuringEntity"], omitted)]
    parties += [_party(profiles.get(hub), format_hub_id(hub), ["buyer"], omitted)
                for hub in sorted(buyers - {offer.author})]
    names = {p["id"]: p["name"] for p in parties}
    unit: dict[str, Any] = {"name": body["unit"]}
    if tally.tier is not None:
        unit["value"] = {"amount": _amount(tally.tier[1], currency), "currency": currency}
    where = f", delivered to {', '.join(body['regions'])}" if body["regions"] else ""
    item = {"id": "1", "description": f"{body['title']}{where}", "quantity": tally.total, "unit": unit,
            "classification": {"scheme": "Open Eligibility", "id": body["category"],
                               "description": body["category"].title()}}
    tender: dict[str, Any] = {
        "id": offer.id_hex,
        "title": body["title"],
        "description": body["description"],
        "status": "complete" if awarded else "cancelled",
        "procuringEntity": {"id": author, "name": names[author]},
        "items": [item],
        "tenderPeriod": {"startDate": iso_ms(offer.created_ms), "endDate": iso_ms(body["deadline"])},
        "eligibilityCriteria": f"Members of the association pledge at least 1 {body['unit']}; the purchase "
                               f"proceeds at a total of {body['min_total']}",
    }
    release: dict[str, Any] = {
        "ocid": OCID_PREFIX + offer.id_hex,
        "id": close.id_hex,
        "date": iso_ms(close.created_ms),
        "tag": ["tender", "award"] if awarded else ["tender", "tenderCancellation"],
        "initiationType": "tender",
        "parties": parties,
        "buyer": {"id": author, "name": names[author]},
        "tender": tender,
    }
    if awarded:
        release["awards"] = [_award(offer, close, tally, unit, names)]
    return release


def _award(offer: Record, close: Record, tally: Any, unit: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    award: dict[str, Any] = {
        "id": close.id_hex,
        "title": offer.body["title"],
        "status": "active",
        "date": iso_ms(close.created_ms),
        "description": f"{tally.total} {offer.body['unit']} pledged by {len(tally.pledges)} co-ops; each "
                       "item is one counted pledge (its record id)",
        "items": [{"id": line.pledge_id.hex(), "quantity": line.quantity, "unit": unit,
                   "description": f"{offer.body['unit']} for {names.get(format_hub_id(line.hub), '')}".strip()}
                  for line in tally.pledges],
    }
    if tally.tier is not None:
        award["value"] = {"amount": _amount(tally.total * tally.tier[1], offer.body["currency"]),
                          "currency": offer.body["currency"]}
    return award


def release_package(releases: list[dict[str, Any]], uri: str, publisher: str) -> dict[str, Any]:
    """An OCDS release package around ``releases``; published at the newest release's date, so exporting
    twice gives the same bytes."""
    return {
        "uri": uri,
        "version": OCDS_VERSION,
        "publishedDate": max((r["date"] for r in releases), default="1970-01-01T00:00:00.000Z"),
        "publisher": {"name": publisher},
        "releases": releases,
    }
