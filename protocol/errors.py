"""The one exception tree of coophub's protocol layer.

    ProtocolError                 reason: a closed vocabulary a peer or client can act on
    ├── DecodeError               "invalid"   bytes are not one canonical record
    ├── TooLargeError             "too-large" over a size limit (record, field, list)
    ├── SignatureError            "invalid"   the Ed25519 signature does not verify
    ├── SchemaError               "invalid"   a body field is missing, of the wrong type or out of range
    └── TimeError                 "invalid"   creation time too far in the future

The reasons mirror Nostr relays' OK-message prefixes (NIP-01: ``invalid:``, ``duplicate:``, ``too-large:``,
``rate-limited:``, ``blocked:``, ``error:``) so that hub, CLI and peers share one vocabulary.
"""

from __future__ import annotations

__all__ = [
    "REASONS",
    "DecodeError",
    "ProtocolError",
    "SchemaError",
    "SignatureError",
    "TimeError",
    "TooLargeError",
]

#: Every reason a refusal can carry. ``missing-reference`` means "try again once the referenced record arrives"
#: and is never held against a peer.
REASONS = frozenset(
    {"invalid", "too-large", "duplicate", "rate-limited", "blocked", "missing-reference", "error"}
)


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
