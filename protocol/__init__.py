"""coophub's protocol: records, canonical encoding, signing, schemas and derived state.

Pure code (sans-IO): no sockets, no asyncio, no database, no clock — time comes in as ``now_ms``.
"""

from __future__ import annotations

from .amendments import AMENDMENT_STATES, AmendmentState, adopted_amendments, amendment_state
from .charter import Amendment, CharterTerms, base_terms, terms_at, terms_before
from .derived import (
    Membership,
    current_guides,
    current_profiles,
    guide_chain,
    membership,
    newest,
    replaceable_key,
    revoked_ids,
)
from .encoding import pack, unpack
from .errors import (
    DEFERRED_REASONS,
    REASONS,
    DecodeError,
    FutureError,
    ProtocolError,
    SchemaError,
    SignatureError,
    TimeError,
    TooLargeError,
)
from .governance import PROPOSAL_STATUSES, PROPOSAL_TRANSITIONS, Result, Vote, electorate, proposal_result
from .identity import HUB_ID_PREFIX, HubKey, format_hub_id, parse_hub_id, verify_signature
from .kinds import KINDS, OPEN_LICENSES, REPLACEABLE_KINDS, REVOCABLE_KINDS, SERVICE_CATEGORIES, validate_body
from .limits import DEFAULT_LIMITS, Limits, limits_from_mapping
from .marks import MARK_STATUSES, MarkStatus, attestation_status, authorised_assessors, mark_status
from .offers import OFFER_TRANSITIONS, OfferTally, PledgeLine, offer_tally
from .records import NO_ASSOCIATION, PROTOCOL_VERSION, SIGNING_DOMAIN, Record, build_record, decode_record
from .reviews import ReviewState, review_state
from .storage import REFERENCES, Reference, Verdict, classify, eligible_authors, references, stored_set

__all__ = [
    "AMENDMENT_STATES", "DEFAULT_LIMITS", "DEFERRED_REASONS", "HUB_ID_PREFIX", "KINDS", "MARK_STATUSES",
    "NO_ASSOCIATION", "OFFER_TRANSITIONS", "OPEN_LICENSES", "PROPOSAL_STATUSES", "PROPOSAL_TRANSITIONS",
    "PROTOCOL_VERSION", "REASONS", "REFERENCES", "REPLACEABLE_KINDS", "REVOCABLE_KINDS", "SERVICE_CATEGORIES",
    "SIGNING_DOMAIN", "Amendment", "AmendmentState", "CharterTerms", "DecodeError", "FutureError", "HubKey",
    "Limits", "MarkStatus", "Membership", "OfferTally", "PledgeLine", "ProtocolError", "Record", "Reference",
    "Result", "ReviewState", "SchemaError", "SignatureError", "TimeError", "TooLargeError", "Verdict", "Vote",
    "adopted_amendments", "amendment_state", "attestation_status", "authorised_assessors", "base_terms",
    "build_record", "classify", "current_guides", "current_profiles", "decode_record", "electorate",
    "eligible_authors", "format_hub_id", "guide_chain", "limits_from_mapping", "mark_status", "membership",
    "newest", "offer_tally", "pack", "parse_hub_id", "proposal_result", "references", "replaceable_key",
    "review_state", "revoked_ids", "stored_set", "terms_at", "terms_before", "unpack", "validate_body",
    "verify_signature",
]
