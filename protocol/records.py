"""The record envelope (docs/protocol.md §2–§4): building, signing, decoding and verifying.

A record's canonical bytes are the msgpack array

    [version, association, author, created_ms, kind, body, signature]

with ``association`` the 32-byte id of the association's charter (32 zero bytes in the charter itself, which
cannot name its own id), ``author`` the 32-byte Ed25519 public key, ``created_ms`` UTC milliseconds, ``kind`` a
string, ``body`` a map, ``signature`` 64 bytes. The signature covers ``SIGNING_DOMAIN`` followed by the canonical
encoding of the first six elements. The record id is SHA-256 of the whole canonical bytes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from .encoding import pack, unpack
from .errors import DecodeError, FutureError, TimeError, TooLargeError
from .identity import HubKey, format_hub_id, verify_signature
from .kinds import validate_body
from .limits import DEFAULT_LIMITS, Limits

__all__ = [
    "NO_ASSOCIATION",
    "PROTOCOL_VERSION",
    "SIGNING_DOMAIN",
    "Record",
    "build_record",
    "decode_record",
    "peek_author",
    "peek_created_ms",
    "record_id_hex",
]

PROTOCOL_VERSION = 1
SIGNING_DOMAIN = b"coophub/record/v1\x00"
NO_ASSOCIATION = bytes(32)
_ENVELOPE_LEN = 7
_SIGNATURE_TAIL = 2 + 64
# A canonical record of this version starts at fixed places (§4): fixarray 7, version 1, the association as bin8
# of 32 bytes, the author as bin8 of 32 bytes, then created_ms as a uint64.
_HEAD, _BIN32, _UINT64 = b"\x97\x01\xc4\x20", b"\xc4\x20", b"\xcf"


def peek_author(raw: bytes) -> bytes:
    """The author key of a canonical record, read at its fixed place without parsing; b"" for anything else.
    Only for routing decisions: :func:`decode_record` checks the record either way."""
    return raw[38:70] if raw[:4] == _HEAD and raw[36:38] == _BIN32 and len(raw) >= 70 else b""


def peek_created_ms(raw: bytes) -> int | None:
    """created_ms of a canonical record, read at its fixed place without parsing; None when it is not there
    (another shape, or bytes :func:`decode_record` will refuse). Only for ordering."""
    if raw[:4] == _HEAD and raw[36:38] == _BIN32 and raw[70:71] == _UINT64 and len(raw) > 79:
        return int.from_bytes(raw[71:79], "big")
    return None


@dataclass(frozen=True, slots=True)
class Record:
    """One signed record. ``raw`` is its canonical bytes and ``id`` is SHA-256 of ``raw``."""

    version: int
    association: bytes
    author: bytes
    created_ms: int
    kind: str
    body: dict[str, Any]
    signature: bytes
    raw: bytes
    id: bytes

    @property
    def id_hex(self) -> str:
        return self.id.hex()

    @property
    def author_id(self) -> str:
        return format_hub_id(self.author)

    @property
    def association_id(self) -> bytes:
        """The association this record belongs to; a charter's is its own id."""
        return self.id if self.kind == "charter" else self.association


def record_id_hex(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def _signing_input(version: int, association: bytes, author: bytes, created_ms: int, kind: str,
                   body: dict[str, Any], limits: Limits) -> bytes:
    return SIGNING_DOMAIN + pack([version, association, author, created_ms, kind, body],
                                 max_depth=limits.max_depth + 1)


def build_record(key: HubKey, association: bytes, kind: str, body: dict[str, Any], created_ms: int,
                 *, limits: Limits = DEFAULT_LIMITS) -> Record:
    """Sign a new record. The body is validated first, so a built record always decodes.

    Raises:
        SchemaError: the body does not match the kind's schema.
        TooLargeError: the record would be over ``limits.max_record_bytes``.
        DecodeError: a value outside the canonical profile (a float, None), an association that is not 32
            bytes (or is 32 zero bytes for a kind other than charter), a negative ``created_ms``.
    """
    if kind == "charter":
        association = NO_ASSOCIATION
    # The same envelope checks decode_record applies, so that a built record always decodes.
    _check_envelope([PROTOCOL_VERSION, association, key.public, created_ms, kind, body, bytes(64)])
    _check_association(kind, association)
    body = validate_body(kind, body)
    message = _signing_input(PROTOCOL_VERSION, association, key.public, created_ms, kind, body, limits)
    signature = key.sign(message)
    raw = pack([PROTOCOL_VERSION, association, key.public, created_ms, kind, body, signature],
               max_depth=limits.max_depth + 1)
    if len(raw) > limits.max_record_bytes:
        raise TooLargeError(f"record is {len(raw)} bytes, over the limit of {limits.max_record_bytes}")
    return Record(PROTOCOL_VERSION, association, key.public, created_ms, kind, body, signature, raw,
                  hashlib.sha256(raw).digest())


def _check_envelope(value: Any) -> tuple[int, bytes, bytes, int, str, dict[str, Any], bytes]:
    if not isinstance(value, list) or len(value) != _ENVELOPE_LEN:
        raise DecodeError(f"a record is an array of {_ENVELOPE_LEN} elements")
    version, association, author, created_ms, kind, body, signature = value
    if not isinstance(version, int) or isinstance(version, bool):
        raise DecodeError("version must be an integer", field="version")
    if version != PROTOCOL_VERSION:
        raise DecodeError(f"unknown protocol version {version}; this hub speaks {PROTOCOL_VERSION}",
                          field="version")
    for name, item, size in (("association", association, 32), ("author", author, 32),
                             ("signature", signature, 64)):
        if not isinstance(item, bytes) or len(item) != size:
            raise DecodeError(f"{name} must be {size} bytes", field=name)
    if not isinstance(created_ms, int) or isinstance(created_ms, bool) or created_ms < 0:
        raise DecodeError("created_ms must be a non-negative integer (UTC milliseconds)", field="created_ms")
    if not isinstance(kind, str):
        raise DecodeError("kind must be a string", field="kind")
    if not isinstance(body, dict):
        raise DecodeError("body must be a map", field="body")
    return version, association, author, created_ms, kind, body, signature


def _check_association(kind: str, association: bytes) -> None:
    if kind == "charter" and association != NO_ASSOCIATION:
        raise DecodeError("a charter's association field is 32 zero bytes", field="association")
    if kind != "charter" and association == NO_ASSOCIATION:
        raise DecodeError("association is missing (32 zero bytes)", field="association")


def decode_record(raw: bytes, *, now_ms: int, limits: Limits = DEFAULT_LIMITS) -> Record:
    """Decode, verify and validate one record: the single check every incoming record passes.

    Checks, in order of cost: size, canonical msgpack, envelope types, protocol version, creation time within
    [``limits.min_created_ms``, ``now_ms`` + 2 × ``max_future_skew_ms``], body schema, the Ed25519 signature,
    and last creation time within ``now_ms`` + ``max_future_skew_ms`` (docs/protocol.md §2.1).

    Raises:
        TooLargeError, DecodeError, TimeError, SchemaError, SignatureError: all subclasses of ProtocolError.
        FutureError: a TimeError for a record that passed every other check but is dated 1× to 2× the skew
            ahead; it carries the verified record, which a hub defers (docs/protocol.md §2.3).
    """
    value = unpack(raw, max_bytes=limits.max_record_bytes, max_depth=limits.max_depth + 1)
    version, association, author, created_ms, kind, body, signature = _check_envelope(value)
    skew = limits.max_future_skew_ms
    if created_ms < limits.min_created_ms:
        raise TimeError(f"created at {created_ms} ms, before the earliest allowed {limits.min_created_ms} ms "
                        "(2025-01-01T00:00:00Z); is the author's clock set?", field="created_ms")
    if created_ms > now_ms + 2 * skew:
        raise TimeError(f"created {created_ms - now_ms} ms in the future; the limit is {skew} ms, and beyond "
                        f"{2 * skew} ms a record is refused", field="created_ms")
    _check_association(kind, association)
    body = validate_body(kind, body)
    raw = bytes(raw)
    # The canonical bytes of the six signed elements are the record's own bytes with a 6-element fixarray
    # header (0x96 for 0x97) and without the trailing signature (bin8 header 0xc4 0x40 + 64 bytes).
    verify_signature(author, signature, SIGNING_DOMAIN + b"\x96" + raw[1:-_SIGNATURE_TAIL])
    record = Record(version, association, author, created_ms, kind, body, signature, raw,
                    hashlib.sha256(raw).digest())
    if created_ms > now_ms + skew:
        raise FutureError(f"created {created_ms - now_ms} ms in the future; the limit is {skew} ms: held until "
                          f"{created_ms - skew} ms", record, field="created_ms")
    return record
