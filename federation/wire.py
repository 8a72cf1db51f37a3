"""Bodies of the peer protocol's requests and replies (docs/protocol.md §8), msgpack maps.

Sans-IO: functions turn bytes (or the decoded body of a session frame, ``*_from``) into checked messages and
back. Every decoder is bounded by the frame size the transport already enforced and by explicit count limits,
and raises :class:`WireError` (reason ``invalid`` or ``too-large``) for anything else — never msgpack's own
exceptions. Requests travel in an authenticated session (``federation/session.py``):

    info      {}                      -> Info          who I am, my association and limits (like NIP-11)
    announce  {"ids"}                 -> {"ids"}       "I have these ids" -> "send me these"
    push      {"records"}             -> {"results"}   records, each answered accepted/duplicate/refused/...
    sync      bin                     -> bin           one Negentropy v1 message each way
    fetch     {"ids"}                 -> {"records"}   records by id
    page      {"after", "limit"}      -> {"records", "last"}   catch-up in (created_ms, id) order
    blob      {"hash"}                -> {"data"}      guide attachments by hash

``GET /fed/v1/info`` (the same Info) stays public, read-only HTTP.
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
    "ids_from",
    "info_from",
    "page_from",
    "page_request_from",
    "parse_cursor",
    "push_results_from",
    "records_from",
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
    return _push_results(_decode_map(data, "push results"), limits)


def _push_results(message: dict[str, Any], limits: Limits) -> list[PushResult]:
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
    return _info(_decode_map(data, "info"))


def _info(message: dict[str, Any]) -> Info:
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
    return _page(_decode_map(data, "page"), limits)


def _page(message: dict[str, Any], limits: Limits) -> tuple[list[bytes], tuple[int, bytes] | None]:
    records = _bytes_list(message.get("records", []), "records", limits.fetch_batch,
                          max_size=limits.max_record_bytes)
    return records, _cursor(message.get("last", []), "page: last")


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


# -- bodies of session frames (already decoded msgpack values) ----------------------------------------------


def _as_map(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise WireError(f"{what}: expected a map")
    return value


def ids_from(value: Any, limits: Limits, *, what: str = "ids") -> list[bytes]:
    """``{"ids": [32-byte ids]}``, at most ``fetch_batch``.

    Raises:
        WireError, TooLargeError: malformed, or too many ids.
    """
    return _bytes_list(_as_map(value, what).get("ids", []), what, limits.fetch_batch, size=32)


def records_from(value: Any, limits: Limits, *, what: str = "records") -> list[bytes]:
    """``{"records": [canonical record bytes]}``, at most ``fetch_batch``, each within ``max_record_bytes``."""
    return _bytes_list(_as_map(value, what).get("records", []), what, limits.fetch_batch,
                       max_size=limits.max_record_bytes)


def push_results_from(value: Any, limits: Limits) -> list[PushResult]:
    return _push_results(_as_map(value, "push results"), limits)


def page_from(value: Any, limits: Limits) -> tuple[list[bytes], tuple[int, bytes] | None]:
    return _page(_as_map(value, "page"), limits)


def page_request_from(value: Any, limits: Limits) -> tuple[tuple[int, bytes] | None, int]:
    """``{"after": [created_ms, id] | [], "limit": n}`` -> (cursor, limit clamped to 1..fetch_batch)."""
    message = _as_map(value, "page")
    after, limit = message.get("after", []), message.get("limit", limits.fetch_batch)
    if not isinstance(limit, int) or isinstance(limit, bool):
        raise WireError("page: limit is an integer")
    cursor = _cursor(after, "page: after")
    return cursor, max(1, min(limit, limits.fetch_batch))


def info_from(value: Any) -> Info:
    return _info(_as_map(value, "info"))


def _cursor(last: Any, what: str) -> tuple[int, bytes] | None:
    if last == []:
        return None
    if (not isinstance(last, list) or len(last) != 2 or not isinstance(last[0], int)
            or not isinstance(last[1], bytes) or len(last[1]) != 32 or not 0 <= last[0] < 2**63):
        raise WireError(f"{what} is [created_ms, id] or []")
    return last[0], last[1]
