"""The one exception tree of coophub's protocol layer.

    ProtocolError                 reason: a closed vocabulary a peer or client can act on
    ├── DecodeError               "invalid"   bytes are not one canonical record
    ├── TooLargeError             "too-large" over a size limit (record, field, list)
    ├── SignatureError            "invalid"   the Ed25519 signature does not verify
    ├── SchemaError               "invalid"   a body field is missing, of the wrong type or out of range
    └── TimeError                 "invalid"   creation time before min_created_ms or over 2× the skew ahead
        └── FutureError           "future"    1× to 2× the skew ahead: deferred until its time, never a fault

The reasons mirror Nostr relays' OK-message prefixes (NIP-01: ``invalid:``, ``duplicate:``, ``too-large:``,
``rate-limited:``, ``blocked:``, ``error:``) so that hub, CLI and peers share one vocabulary.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .records import Record

__all__ = [
    "DEFERRED_REASONS",
    "REASONS",
    "DecodeError",
    "ProtocolError",
    "SchemaError",
    "SignatureError",
    "FutureError",
    "TimeError",
    "TooLargeError",
]

#: Every reason a refusal or deferral can carry. ``missing-reference`` ("a referenced record is not held yet"),
#: ``not-a-member`` ("the author is not eligible yet") and ``future`` ("dated a little ahead of our clock") are
#: the reasons of a *deferred* record (docs/protocol.md §2.3): they may change with later data or time, so they
#: are never held against a peer. ``wrong-association`` ("signed for another association": the record alone shows
#: it, PRODUCT.md §3.2) is an objective fault like ``invalid``; ``blocked`` ("not from this session": an
#: applicant's record other than its own profile, a non-member's vote) is not the sender's fault.
REASONS = frozenset(
    {"invalid", "too-large", "duplicate", "rate-limited", "blocked", "wrong-association", "missing-reference",
     "not-a-member", "future", "error"}
)
#: Reasons a hub defers a record for instead of refusing it.
DEFERRED_REASONS = frozenset({"missing-reference", "not-a-member", "future"})


class ProtocolError(Exception):
    """Root of every error the protocol layer raises.

    ``reason`` is one of :data:`REASONS`; ``field`` names the offending field when there is one.
    """

    reason = "invalid"

    def __init__(self, message: str, *, field: str | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if reason is not None:
            if reason not in REASONS:
                raise ValueError(f"unknown reason {reason!r}")
            self.reason = reason

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class DecodeError(ProtocolError):
    """The bytes are not exactly one record in the canonical encoding."""


class TooLargeError(ProtocolError):
    """A record, field or list is over its limit."""

    reason = "too-large"


class SignatureError(ProtocolError):
    """The signature does not verify against the author's key."""


class SchemaError(ProtocolError):
    """A kind's body does not match its schema."""


class TimeError(ProtocolError):
    """The record's creation time is outside what is allowed."""


class FutureError(TimeError):
    """Validly signed and well formed, but dated more than the skew and at most twice the skew ahead.

    Not a fault: a peer whose clock runs a little ahead, or a record relayed quickly, gets here. ``record`` is
    the fully verified record, so a hub can hold it and retry it once ``record.created_ms - max_future_skew_ms``
    has passed (docs/protocol.md §2.3).
    """

    reason = "future"

    def __init__(self, message: str, record: Record, *, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.record = record
