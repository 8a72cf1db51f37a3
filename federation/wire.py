"""Messages of the peer protocol under ``/fed/v1/`` (docs/federation.md), encoded as msgpack maps.

Sans-IO: functions turn bytes into checked messages and back. Every decoder is bounded by the body size the
HTTP layer already enforced and by explicit count limits, and raises :class:`WireError` (reason ``invalid`` or
``too-large``) for anything else — never msgpack's own exceptions.

    GET  /fed/v1/info               -> Info            who I am, my association and limits (like NIP-11)
    POST /fed/v1/announce  Announce -> Want            "I have these ids" -> "send me these"
    POST /fed/v1/push      Push     -> PushResults     records, each answered accepted/duplicate/refused
    POST /fed/v1/sync      bytes    -> bytes           one Negentropy v1 message each way
    POST /fed/v1/fetch     Fetch    -> Records         records by id
    GET  /fed/v1/records?after=&limit= -> Page         streamed catch-up in (created_ms, id) order
    GET  /fed/v1/blobs/{sha256 hex} -> bytes           guide attachments by hash
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import msgpack

from protocol.errors import ProtocolError, TooLargeError
from protocol.limits import Limits

__all__ = [
    "CONTENT_TYPE",
    "NEGENTROPY_CONTENT_TYPE",
    "Info",
    "PushResult",
    "WireError",
    "decode_ids",
    "decode_info",
    "decode_page",
    "decode_push",
    "decode_push_results",
    "decode_records",
    "encode",
    "parse_cursor",
]

CONTENT_TYPE = "application/msgpack"
NEGENTROPY_CONTENT_TYPE = "application/negentropy"
WIRE_VERSION = 1


class WireError(ProtocolError):
    """A peer message that is malformed or over a limit."""


def encode(message: dict[str, Any]) -> bytes:
    return cast(bytes, msgpack.packb(message, use_bin_type=True))


def _decode_map(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = msgpack.unpackb(data, raw=False, strict_map_key=True, use_list=True)
    except (ValueError, TypeError, msgpack.UnpackException, RecursionError):
        raise WireError(f"{what}: not well-formed msgpack") from None
    if not isinstance(value, dict):
        raise WireError(f"{what}: expected a map")
    return value


def _bytes_list(value: Any, what: str, max_items: int, size: int | None = None,
                max_size: int | None = None) -> list[bytes]:
    if not isinstance(value, list):
        raise WireError(f"{what}: expected a list")
    if len(value) > max_items:
        raise TooLargeError(f"{what}: {len(value)} items, over the limit of {max_items}")
    for item in value:
        if not isinstance(item, bytes):
            raise WireError(f"{what}: items must be bytes")
        if size is not None and len(item) != size:
            raise WireError(f"{what}: items must be {size} bytes")
        if max_size is not None and len(item) > max_size:
            raise TooLargeError(f"{what}: an item of {len(item)} bytes is over the limit of {max_size}")
    return value


def _from(message: dict[str, Any]) -> str:
    sender = message.get("from", "")
    if not isinstance(sender, str) or len(sender) > 500:
        raise WireError("from: expected the sender's URL (at most 500 characters)")
    return sender


def decode_ids(data: bytes, limits: Limits, *, what: str = "ids") -> tuple[str, list[bytes]]:
    """An Announce, Want or Fetch message: ``{"from": url, "ids": [32-byte ids]}``.

    Raises:
        WireError, TooLargeError: malformed, or more ids than limits.fetch_batch.
    """
    message = _decode_map(data, what)
    return _from(message), _bytes_list(message.get("ids", []), what, limits.fetch_batch, size=32)


def decode_push(data: bytes, limits: Limits) -> tuple[str, list[bytes]]:
    """A Push or Records message: ``{"from": url, "records": [canonical record bytes]}``.

    Raises:
        WireError, TooLargeError: malformed, too many records, or a record over the record size limit.
    """
    message = _decode_map(data, "push")
    return _from(message), _bytes_list(message.get("records", []), "records", limits.fetch_batch,
                                       max_size=limits.max_record_bytes)


def decode_records(data: bytes, limits: Limits) -> list[bytes]:
    return decode_push(data, limits)[1]


@dataclass(frozen=True, slots=True)
class PushResult:
    id: bytes
    status: str
    reason: str


def decode_push_results(data: bytes, limits: Limits) -> list[PushResult]:
    """``{"results": [[id, status, reason], ...]}``; an undecodable record's id is empty bytes."""
    message = _decode_map(data, "push results")
    rows = message.get("results", [])
    if not isinstance(rows, list) or len(rows) > limits.fetch_batch:
        raise WireError("results: expected a bounded list")
    out = []
    for row in rows:
        if (not isinstance(row, list) or len(row) != 3 or not isinstance(row[0], bytes)
                or not isinstance(row[1], str) or not isinstance(row[2], str)):
            raise WireError("results: each is [id, status, reason]")
        out.append(PushResult(row[0], row[1], row[2]))
    return out


@dataclass(frozen=True, slots=True)
class Info:
    hub: bytes
    association: bytes
    url: str
    records: int
    limits: dict[str, int]


def decode_info(data: bytes) -> Info:
    message = _decode_map(data, "info")
    hub, association = message.get("hub"), message.get("association", b"")
    if message.get("version") != WIRE_VERSION:
        raise WireError(f"info: peer speaks wire version {message.get('version')!r}, we speak {WIRE_VERSION}")
    if not isinstance(hub, bytes) or len(hub) != 32 or not isinstance(association, bytes):
        raise WireError("info: hub must be 32 bytes and association bytes")
    url, records, limits = message.get("url", ""), message.get("records", 0), message.get("limits", {})
    if not isinstance(url, str) or not isinstance(records, int) or not isinstance(limits, dict):
        raise WireError("info: malformed url, records or limits")
    return Info(hub, association, url, records, limits)


def decode_page(data: bytes, limits: Limits) -> tuple[list[bytes], tuple[int, bytes] | None]:
    """A catch-up page: ``{"records": [...], "last": [created_ms, id] | []}``; ``last`` empty at the end."""
    message = _decode_map(data, "page")
    records = _bytes_list(message.get("records", []), "records", limits.fetch_batch,
                          max_size=limits.max_record_bytes)
    last = message.get("last", [])
    if last == []:
        return records, None
    if (not isinstance(last, list) or len(last) != 2 or not isinstance(last[0], int)
            or not isinstance(last[1], bytes) or len(last[1]) != 32):
        raise WireError("page: last is [created_ms, id]")
    return records, (last[0], last[1])


def parse_cursor(text: str) -> tuple[int, bytes] | None:
    """``<created_ms>.<id hex>`` as sent in ``?after=``; empty means from the start.

    Raises:
        WireError: malformed cursor.
    """
    if not text:
        return None
    ms, _, id_hex = text.partition(".")
    try:
        cursor = (int(ms), bytes.fromhex(id_hex))
    except ValueError:
        raise WireError("after: expected <created_ms>.<64 hex id>") from None
    if len(cursor[1]) != 32 or not 0 <= cursor[0] < 2**63:  # created_ms is a signed 64-bit SQLite integer
        raise WireError("after: expected <created_ms>.<64 hex id>")
    return cursor


def format_cursor(cursor: tuple[int, bytes]) -> str:
    return f"{cursor[0]}.{cursor[1].hex()}"
