"""The record kinds of PRODUCT.md §2 and their body schemas (docs/protocol.md §5).

Times inside bodies (deadlines, validity) are UTC milliseconds like ``created_ms``; money is an integer count of
the currency's minor unit (pence, cents), because the canonical profile has no floats. Ids of records and hubs
are 32 raw bytes.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import SchemaError
from .schema import SLUG, Field, check, id32, integer, lst, obj, text

__all__ = [
    "AID_REFERENCES",
    "AMENDABLE_FIELDS",
    "KINDS",
    "MAX_CREDIT_MINUTES",
    "MAX_MONEY",
    "OPEN_LICENSES",
    "QUORUM_BASES",
    "REPLACEABLE_KINDS",
    "REVOCABLE_KINDS",
    "SERVICE_CATEGORIES",
    "RULES",
    "STAKEHOLDERS",
    "validate_body",
]

# Open licences by SPDX id: those the Open Definition and the Creative Commons "free cultural works" mark accept.
# Non-commercial (NC) and no-derivatives (ND) licences are not open and are refused.
OPEN_LICENSES = frozenset({
    "CC0-1.0", "CC-BY-4.0", "CC-BY-SA-4.0", "CC-BY-3.0", "CC-BY-SA-3.0", "PDDL-1.0", "ODC-By-1.0",
    "ODbL-1.0", "GFDL-1.3-or-later", "MIT", "Apache-2.0", "GPL-3.0-or-later", "Unlicense",
})

# The 11 top-level human-service categories of the Open Eligibility taxonomy used with Open Referral HSDS.
SERVICE_CATEGORIES = frozenset({
    "care", "education", "emergency", "food", "goods", "health", "housing", "legal", "money", "transit", "work",
})

STAKEHOLDERS = frozenset({
    "workers", "service-users", "volunteers", "families", "community", "supporters", "investors", "other",
})

MAX_TIME_MS = 2**53  # JSON-safe and far beyond any real date
#: One time-credit payment: at most 10,000,000 minutes, the largest credit limit a charter may set.
MAX_CREDIT_MINUTES = 10**7
#: Money in one fund record: at most 10**10 minor units (100 million pounds), far beyond any co-op's fund.
MAX_MONEY = 10**10
_URL = re.compile(r"https?://[^\s<>\"']{1,500}")
_URL_HELP = "an http:// or https:// URL without spaces"
_CURRENCY = re.compile(r"[A-Z]{3}")
_LANGUAGE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*")
_HASH = id32
# A compact JWS (RFC 7515 §7.1): three base64url parts. Attestations carry the assessor's Open Badges 3.0
# credential in this form (docs/opendata.md); what it says is checked when it is served, not at ingest.
_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_TIME = integer(0, MAX_TIME_MS)
_NAME = text(200)
_REGION = text(100)
_TAG = text(50, pattern=SLUG, pattern_help="a lowercase tag of letters, digits and hyphens")


def _validity(value: dict[str, Any], path: str) -> None:
    if value["valid_until"] <= value["valid_from"]:
        raise SchemaError("must be later than valid_from", field="valid_until")


def _tiers(value: list[list[int]], path: str) -> None:
    quantities = [tier[0] for tier in value]
    if quantities != sorted(set(quantities)):
        raise SchemaError("tiers are listed by increasing minimum quantity, each quantity once", field=path)


def _tier_pair(value: list[int], path: str) -> None:
    if value[0] < 1 or value[1] < 0 or value[0] > 10**12 or value[1] > 10**12:
        raise SchemaError("a tier's quantity is at least 1 and its price at least 0 (minor units)", field=path)


_SCHEME = obj({
    "id": text(63, pattern=SLUG, pattern_help="a scheme id of lowercase letters, digits and hyphens"),
    "name": text(200),
    "assessors": lst(id32(), 50, min_len=1, unique=True),
})

_SERVICE = obj({
    "name": _NAME,
    "category": text(20, choices=SERVICE_CATEGORIES),
    "description": text(2000, required=False),
})

_CONTACT = obj({
    "email": text(254, required=False),
    "phone": text(40, required=False),
    "address": text(500, required=False),
}, required=False)

_ATTACHMENT = obj({
    "name": text(200),
    "media_type": text(100, pattern=re.compile(r"[a-z0-9.+-]+/[a-z0-9.+-]+"), pattern_help="a media type"),
    "size": integer(0, 2**40),
    "hash": _HASH(),
})

def _class_name(*, required: bool = True) -> Field:
    return text(40, required=required, pattern=SLUG,
                pattern_help="a class name of lowercase letters, digits and hyphens")


_CLASS_NAME = _class_name()

_CLASS = obj({
    "name": _CLASS_NAME,
    "weight": integer(0, 1000),  # 0: a non-voting associate (PRODUCT.md §2.1)
    "description": text(500, required=False),
})

_FOUNDER_CLASS = obj({
    "hub": id32(),
    "class": _CLASS_NAME,
})

#: Decision rules of a proposal (docs/protocol.md §6.9): more than half of the decisive weight for the motion,
#: at least two thirds of it, or no objection at all.
RULES = frozenset({"majority", "two-thirds", "consent"})
#: What a quorum is a percentage of: the number of voting members, or their total vote weight.
QUORUM_BASES = frozenset({"members", "weight"})
_RULE = text(20, choices=RULES)
_QUORUM = integer(0, 100)  # percent
_QUORUM_OF = text(20, choices=QUORUM_BASES)
_OPTION = text(100)

#: Charter fields in force that members may change by amending the charter (docs/protocol.md §6.10). Not the
#: name, nor the founders: who founded the association is history, not a term.
_AMENDABLE: dict[str, Field] = {
    "endorsements_needed": integer(1, 100, required=False),
    "schemes": lst(_SCHEME, 50, required=False),
    "classes": lst(_CLASS, 20, required=False),
    "founder_classes": lst(_FOUNDER_CLASS, 100, required=False),
    "reviews_needed": integer(1, 100, required=False),
    "credit_limit_minutes": integer(0, 10**7, required=False),
    "amendment_rule": text(20, choices=RULES, required=False),
    "amendment_quorum": integer(0, 100, required=False),
    "amendment_quorum_of": text(20, choices=QUORUM_BASES, required=False),
}
AMENDABLE_FIELDS = frozenset(_AMENDABLE)


def _amendment(value: dict[str, Any], path: str) -> None:
    if not value:
        raise SchemaError(f"an amendment changes at least one of: {', '.join(sorted(_AMENDABLE))}", field=path)
    classes = [c["name"] for c in value.get("classes", [])]
    if len(set(classes)) != len(classes):
        raise SchemaError("class names must not repeat", field=f"{path}.classes")


def _charter_classes(value: dict[str, Any], path: str) -> None:
    classes = [c["name"] for c in value.get("classes", [])]
    if len(set(classes)) != len(classes):
        raise SchemaError("class names must not repeat", field="classes")


def _proposal(value: dict[str, Any], path: str) -> None:
    options, motion = value["options"], value["options"][0]
    for name in ("abstain", "objection"):
        if name in value and (value[name] not in options or value[name] == motion):
            raise SchemaError(f"must be one of the options other than the first (the motion, {motion!r})",
                              field=name)
    if "objection" in value and value["rule"] != "consent":
        raise SchemaError("only a consent proposal has an objection option", field="objection")
    if value["rule"] == "consent" and value.get("abstain") is not None \
            and value["abstain"] == value.get("objection", options[-1]):
        raise SchemaError("the abstention cannot also be the objection", field="abstain")

KINDS: dict[str, Field] = {
    "charter": obj({
        "name": _NAME,
        "description": text(5000, required=False),
        "founders": lst(id32(), 100, min_len=1, unique=True),
        "endorsements_needed": integer(1, 100),
        "schemes": lst(_SCHEME, 50),
        # Round 2 (all optional, so round-1 charters stay valid): membership classes and their vote weights,
        # each founder's class, reviews that make a guide association-reviewed, the time-credit limit.
        "classes": lst(_CLASS, 20, required=False),
        "founder_classes": lst(_FOUNDER_CLASS, 100, required=False),
        "reviews_needed": integer(1, 100, required=False),
        "credit_limit_minutes": integer(0, 10**7, required=False),
        # Governance (optional): the rule and quorum an amendment of the charter must also meet.
        "amendment_rule": text(20, choices=RULES, required=False),
        "amendment_quorum": integer(0, 100, required=False),
        "amendment_quorum_of": text(20, choices=QUORUM_BASES, required=False),
    }, extra=_charter_classes),
    "profile": obj({
        "name": _NAME,
        "legal_form": text(100, required=False),
        "description": text(5000, required=False),
        "regions": lst(_REGION, 50, unique=True),
        "services": lst(_SERVICE, 100),
        "stakeholders": lst(text(20, choices=STAKEHOLDERS), 8, unique=True, required=False),
        "contact": _CONTACT,
        "website": text(500, required=False, pattern=_URL, pattern_help=_URL_HELP),
        "peer_urls": lst(text(500, pattern=_URL, pattern_help=_URL_HELP), 8, unique=True),
    }),
    "endorsement": obj({
        "subject": id32(),
        "statement": text(2000, required=False),
        # The class the endorser names for the subject (PRODUCT.md §2.1); the subject's class is the one most
        # of its endorsers named (docs/protocol.md §6.1).
        "class": _class_name(required=False),
    }),
    "guide": obj({
        "title": _NAME,
        "summary": text(1000),
        "body": text(48 * 1024),
        "license": text(40, choices=OPEN_LICENSES),
        "tags": lst(_TAG, 20, unique=True),
        "language": text(20, pattern=_LANGUAGE, pattern_help="a BCP 47 language tag such as en or cy-GB"),
        "supersedes": id32(required=False),
        "attachments": lst(_ATTACHMENT, 20, required=False),
    }),
    "offer": obj({
        "title": _NAME,
        "description": text(5000),
        "category": text(20, choices=SERVICE_CATEGORIES),
        "unit": text(50),
        "tiers": lst(lst(integer(0, 10**12), 2, min_len=2, extra=_tier_pair), 20, min_len=1, unique=True,
                     extra=_tiers),
        "currency": text(3, pattern=_CURRENCY, pattern_help="an ISO 4217 code such as GBP or EUR"),
        "min_total": integer(1, 10**12),
        "deadline": _TIME,
        "regions": lst(_REGION, 50, unique=True),
    }),
    "pledge": obj({
        "offer": id32(),
        "quantity": integer(0, 10**12),
    }),
    "offer-close": obj({
        "offer": id32(),
        "outcome": text(20, choices=frozenset({"awarded", "cancelled"})),
        "pledges": lst(id32(), 10_000, unique=True),
    }),
    "attestation": obj({
        "subject": id32(),
        "scheme": text(63, pattern=SLUG, pattern_help="a scheme id of lowercase letters, digits and hyphens"),
        "level": text(50),
        "valid_from": _TIME,
        "valid_until": _TIME,
        "evidence_hash": _HASH(required=False),
        "evidence_url": text(500, required=False, pattern=_URL, pattern_help=_URL_HELP),
        "summary": text(2000, required=False),
        "credential": text(16 * 1024, required=False, pattern=_JWS,
                           pattern_help="a compact JWS: three base64url parts joined by dots"),
    }, extra=_validity),
    "revocation": obj({
        "target": id32(),
        "reason": text(1000),
    }),
    # Mutual aid (PRODUCT.md §2.2; docs/protocol.md §6.6-§6.7). Time in whole minutes, money in minor units.
    "credit-payment": obj({
        "payee": id32(),
        "minutes": integer(1, MAX_CREDIT_MINUTES),
        "memo": text(500),
    }),
    "credit-receipt": obj({
        "payment": id32(),
    }),
    "fund": obj({
        "name": _NAME,
        "description": text(5000, required=False),
        "contribution": integer(1, MAX_MONEY),  # minor units per member per month
        "currency": text(3, pattern=_CURRENCY, pattern_help="an ISO 4217 code such as GBP or EUR"),
        "approvals": integer(1, 100),
        "notice_days": integer(0, 366),
    }),
    "fund-join": obj({
        "fund": id32(),
    }),
    "fund-leave": obj({
        "fund": id32(),
    }),
    "fund-claim": obj({
        "fund": id32(),
        "amount": integer(1, MAX_MONEY),
        "reason": text(2000),
    }),
    "fund-approval": obj({
        "claim": id32(),
    }),
    "fund-payment": obj({
        "claim": id32(),
        "amount": integer(1, MAX_MONEY),
        "reference": text(200, required=False),  # e.g. the bank transfer's reference
    }),
    # -- the association's collective voice (PRODUCT.md §2.1, docs/protocol.md §6.9–§6.11) --------------------
    "proposal": obj({
        "title": _NAME,
        "body": text(32 * 1024, required=False),  # Markdown
        # The first option is the motion ("yes", "adopt"); the others are alternatives to it.
        "options": lst(_OPTION, 10, min_len=2, unique=True),
        "rule": _RULE,
        "quorum": _QUORUM,
        "quorum_of": _QUORUM_OF,
        "closes": _TIME,
        # An option that counts towards turnout and quorum but not towards the decision.
        "abstain": text(100, required=False),
        # consent only: the option that blocks (default: the last option).
        "objection": text(100, required=False),
        "amendment": obj(_AMENDABLE, required=False, extra=_amendment),
    }, extra=_proposal),
    "ballot": obj({
        "proposal": id32(),
        "option": _OPTION,
    }),
    "delegation": obj({
        "to": id32(),  # the member who votes for the author
        "proposal": id32(required=False),  # only for this proposal; absent: for every proposal
    }),
    "proposal-close": obj({
        "proposal": id32(),
        "ballots": lst(id32(), 4_000, unique=True),
        "delegations": lst(id32(), 4_000, unique=True),
    }),
    "review": obj({
        "guide": id32(),
        "comment": text(2000, required=False),
    }),
}

#: Kinds where the newest record of an author (per key) replaces older ones.
REPLACEABLE_KINDS = frozenset({"profile", "pledge", "ballot", "delegation"})
#: Kinds a revocation may target (always a record of the revocation's own author).
REVOCABLE_KINDS = frozenset({"attestation", "endorsement", "guide", "offer", "delegation", "review"})
#: Mutual-aid kinds that name another record: kind -> (body field, the kind that record must be). Ingest refuses
#: a reference to a record of another kind and defers one to a record not held yet (docs/protocol.md §2.1).
AID_REFERENCES: dict[str, tuple[str, str]] = {
    "credit-receipt": ("payment", "credit-payment"),
    "fund-join": ("fund", "fund"),
    "fund-leave": ("fund", "fund"),
    "fund-claim": ("fund", "fund"),
    "fund-approval": ("claim", "fund-claim"),
    "fund-payment": ("claim", "fund-claim"),
}


def validate_body(kind: str, body: Any) -> dict[str, Any]:
    """Check a body against its kind's schema and return it unchanged.

    Raises:
        SchemaError: unknown kind, or a field missing, unknown, of the wrong type or out of range.
        TooLargeError: a string or list over its maximum length.
    """
    spec = KINDS.get(kind)
    if spec is None:
        raise SchemaError(f"unknown kind {kind!r}; known kinds: {', '.join(KINDS)}", field="kind")
    check(spec, body, "")
    return body  # type: ignore[no-any-return]

