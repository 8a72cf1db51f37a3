"""Records as JSON for people and tools (the HTTP API, the CLI's --json, JSON lines export).

In JSON, hub ids appear in their text form (``hub_…``) and record ids and hashes as lowercase hex. Which byte
fields name hubs is part of each kind's schema (docs/protocol.md §5); every other 32-byte field is a record id or
a hash.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from .errors import SchemaError
from .identity import format_hub_id, parse_hub_id
from .records import Record

__all__ = ["HUB_FIELDS", "body_from_json", "body_to_json", "iso_ms", "record_to_json"]

#: (kind, dotted path) of byte fields that hold hub ids; ``[]`` marks a list.
HUB_FIELDS = frozenset({
    ("charter", "founders[]"),
    ("charter", "schemes[].assessors[]"),
    ("charter", "founder_classes[].hub"),
    ("endorsement", "subject"),
    ("attestation", "subject"),
    ("credit-payment", "payee"),
    ("proposal", "amendment.schemes[].assessors[]"),
    ("proposal", "amendment.founder_classes[].hub"),
    ("delegation", "to"),
})


def iso_ms(ms: int) -> str:
    """UTC milliseconds as ISO 8601 text, e.g. ``2026-01-01T00:00:00.000Z``."""
    moment = _dt.datetime.fromtimestamp(ms / 1000, _dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _convert(value: Any, path: str, kind: str, to_json: bool) -> Any:
    if isinstance(value, dict):
        prefix = f"{path}." if path else ""
        return {k: _convert(v, prefix + k, kind, to_json) for k, v in value.items()}
    if isinstance(value, list):
        return [_convert(v, path + "[]", kind, to_json) for v in value]
    is_hub = (kind, path) in HUB_FIELDS
    if to_json and isinstance(value, bytes):
        return format_hub_id(value) if is_hub else value.hex()
    if not to_json and _is_bytes_field(kind, path) and isinstance(value, str):
        if is_hub:
            return parse_hub_id(value)
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raise SchemaError("expected 64 hex characters (a record id or hash)", field=path) from None
        if len(raw) != 32:
            raise SchemaError("expected 64 hex characters (a record id or hash)", field=path)
        return raw
    return value


def _is_bytes_field(kind: str, path: str) -> bool:
    from .kinds import KINDS
    from .schema import Field

    spec: Field | None = KINDS.get(kind)
    for part in path.split(".") if path else []:
        name = part.rstrip("[]")
        spec = spec.fields.get(name) if spec is not None and spec.kind == "map" else None
        for _ in range((len(part) - len(name)) // 2):
            spec = spec.item if spec is not None and spec.kind == "list" else None
    return spec is not None and spec.kind == "bytes"


def body_to_json(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    return _convert(body, "", kind, True)  # type: ignore[no-any-return]


def body_from_json(kind: str, body: Any) -> dict[str, Any]:
    """Turn a JSON body (hub ids as text, record ids as hex) into a record body; schema checks come later.

    Raises:
        SchemaError: the body is not an object, or an id field is malformed.
        ProtocolError: a hub id is malformed.
    """
    if not isinstance(body, dict):
        raise SchemaError("a record body is a JSON object", field="body")
    return _convert(body, "", kind, False)  # type: ignore[no-any-return]


def record_to_json(record: Record) -> dict[str, Any]:
    return {
        "id": record.id_hex,
        "kind": record.kind,
        "author": record.author_id,
        "association": record.association_id.hex(),
        "created_ms": record.created_ms,
        "created": iso_ms(record.created_ms),
        "body": body_to_json(record.kind, record.body),
        "signature": record.signature.hex(),
    }
