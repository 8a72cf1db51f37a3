"""Fixed keys, valid bodies and record builders shared by the protocol tests.

Keys come from fixed seeds (``bytes([i]) * 32``), as in docs/protocol.md §9, so every failure replays exactly.
"""

from __future__ import annotations

import copy
from typing import Any

from protocol import HubKey, Record, build_record

#: 2026-01-01T00:00:00Z in UTC milliseconds.
T0 = 1_767_225_600_000
DAY = 86_400_000

KEYS = [HubKey.from_seed(bytes([i]) * 32) for i in range(1, 9)]
A, B, C, D, E, F, G, H = KEYS

ID_X = bytes(range(32))
ID_Y = bytes(range(32, 64))

_BODIES: dict[str, dict[str, Any]] = {
    "charter": {
        "name": "North Wales Care Co-operatives",
        "description": "An association of social care co-operatives.",
        "founders": [A.public, B.public],
        "endorsements_needed": 2,
        "schemes": [{"id": "care-quality", "name": "Care Quality Mark", "assessors": [C.public]}],
        "classes": [{"name": "worker-coop", "weight": 2, "description": "Worker co-operatives."},
                    {"name": "council", "weight": 0}],
        "founder_classes": [{"hub": A.public, "class": "worker-coop"}],
        "reviews_needed": 2,
        "credit_limit_minutes": 2400,
        "amendment_rule": "two-thirds",
        "amendment_quorum": 50,
        "amendment_quorum_of": "members",
    },
    "profile": {
        "name": "Cwmni Gofal",
        "legal_form": "co-operative society",
        "description": "Home care in Gwynedd.",
        "regions": ["gwynedd", "anglesey"],
        "services": [{"name": "Home care", "category": "care", "description": "Visits at home."}],
        "stakeholders": ["workers", "service-users"],
        "contact": {"email": "hello@example.coop", "phone": "+44 1248 000000", "address": "1 High St"},
        "website": "https://example.coop",
        "peer_urls": ["https://hub.example.coop/fed/v1"],
    },
    "endorsement": {"subject": ID_X, "statement": "We have worked with them for years.", "class": "worker-coop"},
    "guide": {
        "title": "Safe lone working",
        "summary": "How our carers stay safe on solo visits.",
        "body": "# Safe lone working\n\nCheck in before and after each visit.\n",
        "license": "CC-BY-SA-4.0",
        "tags": ["safety", "lone-working"],
        "language": "en",
        "supersedes": ID_Y,
        "attachments": [{"name": "checklist.pdf", "media_type": "application/pdf", "size": 1234,
                         "hash": ID_X}],
    },
    "offer": {
        "title": "Nitrile gloves",
        "description": "Boxes of 100 medium nitrile gloves.",
        "category": "health",
        "unit": "box",
        "tiers": [[1, 900], [100, 800], [500, 700]],
        "currency": "GBP",
        "min_total": 100,
        "deadline": T0 + 30 * DAY,
        "regions": ["gwynedd"],
    },
    "pledge": {"offer": ID_X, "quantity": 40},
    "offer-close": {"offer": ID_X, "outcome": "awarded", "pledges": [ID_Y]},
    "attestation": {
        "subject": ID_X,
        "scheme": "care-quality",
        "level": "gold",
        "valid_from": T0,
        "valid_until": T0 + 365 * DAY,
        "evidence_hash": ID_Y,
        "evidence_url": "https://assessor.example/reports/1",
        "summary": "Inspected in December.",
        "credential": "eyJhbGciOiJFZERTQSJ9.eyJpc3MiOiJkaWQ6a2V5In0.c2lnbmF0dXJl",  # a compact JWS (docs/opendata.md)
    },
    "revocation": {"target": ID_X, "reason": "Issued in error."},
    "credit-payment": {"payee": ID_X, "minutes": 90, "memo": "Cover for two evening visits."},
    "credit-receipt": {"payment": ID_X},
    "fund": {"name": "Sick pay circle", "description": "Gifts for members off sick.", "contribution": 2500,
             "currency": "GBP", "approvals": 2, "notice_days": 30},
    "fund-join": {"fund": ID_X},
    "fund-leave": {"fund": ID_X},
    "fund-claim": {"fund": ID_X, "amount": 40000, "reason": "Two carers off sick for a month."},
    "fund-approval": {"claim": ID_X},
    "fund-payment": {"claim": ID_X, "amount": 5000, "reference": "FUND-2026-01"},
    "proposal": {
        "title": "Adopt the User-Led Support Standard",
        "body": "A second quality scheme, assessed by a user-led organisation.",
        "options": ["agree", "stand aside", "object"],
        "rule": "consent",
        "quorum": 50,
        "quorum_of": "members",
        "closes": T0 + 14 * DAY,
        "abstain": "stand aside",
        "objection": "object",
        "amendment": {
            "endorsements_needed": 2,
            "schemes": [{"id": "user-led", "name": "User-Led Support Standard", "assessors": [ID_X]}],
            "classes": [{"name": "user-led", "weight": 2}, {"name": "council", "weight": 0}],
            "founder_classes": [{"hub": ID_X, "class": "user-led"}],
            "reviews_needed": 3,
            "credit_limit_minutes": 600,
            "amendment_rule": "two-thirds",
            "amendment_quorum": 60,
            "amendment_quorum_of": "weight",
        },
    },
    "ballot": {"proposal": ID_X, "option": "agree"},
    "delegation": {"to": ID_X, "proposal": ID_Y},
    "proposal-close": {"proposal": ID_X, "ballots": [ID_Y], "delegations": [ID_X]},
    "review": {"guide": ID_X, "comment": "Clear and safe; we use it too."},
}


def body(kind: str, **changes: Any) -> dict[str, Any]:
    """A fresh valid body of ``kind`` (every optional field present), with ``changes`` applied."""
    out = copy.deepcopy(_BODIES[kind])
    out.update(changes)
    return out


def charter(founders: list[HubKey] | None = None, needed: int = 2, assessors: list[HubKey] | None = None,
            author: HubKey = A, created_ms: int = T0) -> Record:
    """A charter; founders default to A and B, scheme ``care-quality`` assessed by C."""
    founders = [A, B] if founders is None else founders
    assessors = [C] if assessors is None else assessors
    scheme = {"id": "care-quality", "name": "Care Quality Mark", "assessors": [k.public for k in assessors]}
    schemes = [scheme]
    b = body("charter", founders=[k.public for k in founders], endorsements_needed=needed, schemes=schemes)
    return build_record(author, bytes(32), "charter", b, created_ms)


def make(key: HubKey, kind: str, b: dict[str, Any], created_ms: int = T0,
         association: bytes = ID_Y) -> Record:
    return build_record(key, association, kind, b, created_ms)


def endorse(key: HubKey, subject: HubKey, ch: Record, created_ms: int = T0) -> Record:
    return make(key, "endorsement", {"subject": subject.public}, created_ms, ch.id)


def revoke(key: HubKey, target: Record, created_ms: int = T0 + 1, association: bytes | None = None) -> Record:
    assoc = target.association_id if association is None else association
    return make(key, "revocation", {"target": target.id, "reason": "withdrawn"}, created_ms, assoc)
