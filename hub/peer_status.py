"""One list of peers for ``coophub peers list``, ``coophub status``, ``GET /api/v1/status``, ``GET
/api/v1/peers`` and the network page: the configured URLs, the peer table as last saved, and — when the hub
runs — its live sessions (``federation/status.py``), merged by peer-table key.

Pure functions over JSON-shaped dicts; no I/O. Without a running hub the saved table is all there is, so every
row's ``session_state`` is ``unknown`` and ``sessions_known`` is false: a saved state is never passed off as a
live one (docs/cli.md "Peer sessions").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from protocol.identity import format_hub_id
from protocol.jsonview import iso_ms

__all__ = ["INBOUND_PREFIX", "peer_rows", "peers_payload"]

#: The peer-table key of a member known only by the session it opened to us (federation/peering.py).
INBOUND_PREFIX = "session:"
_TIMES = ("last_contact", "last_sync", "last_frame", "session_opened", "next_attempt")


def _key(url: Any) -> str:
    return str(url or "").rstrip("/")


def _hub_text(hex_id: Any) -> str:
    """The hub id (``hub_…``) of a saved row's ``hub_id`` hex, or "" when it has none or it is malformed."""
    try:
        raw = bytes.fromhex(str(hex_id or ""))
    except ValueError:
        return ""
    return format_hub_id(raw) if len(raw) == 32 else ""


def peer_rows(configured: Iterable[str], saved: Iterable[dict[str, Any]], live: Iterable[dict[str, Any]] | None,
              names: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """The peers in order: configured URLs first, then the others by key.

    A row is the saved row overlaid by the live one, with ``url`` (the peer-table key), ``configured``, ``hub``
    (its hub id, "" if not yet proven), ``name`` (its co-op's name from ``names``, hub id -> name; "" if not
    known), ``inbound_only`` (a member known only by its inbound session: no URL to dial), and each ``*_ms``
    time also as ISO 8601 UTC text (``last_contact``...). ``live`` None means "no running hub":
    ``session_state`` is then ``unknown``."""
    config = [_key(u) for u in configured]
    saved_by = {_key(p.get("url")): p for p in saved if _key(p.get("url"))}
    live_by = {_key(p.get("url")): p for p in live or () if _key(p.get("url"))}
    keys = list(dict.fromkeys([*config, *sorted(set(saved_by) | set(live_by))]))
    rows = []
    for key in keys:
        row: dict[str, Any] = {**saved_by.get(key, {}), **live_by.get(key, {})}
        row["url"] = key
        row["configured"] = key in config
        row["inbound_only"] = key.startswith(INBOUND_PREFIX)
        if not row.get("hub"):
            row["hub"] = _hub_text(row.get("hub_id"))
        row["name"] = (names or {}).get(row["hub"], "") if row["hub"] else ""
        if live is None:
            row["session_state"] = "unknown"
        else:
            row.setdefault("session_state", "none")  # configured, not yet in the running hub's table
        for name in _TIMES:
            ms = row.get(f"{name}_ms")
            if isinstance(ms, int) and not isinstance(ms, bool) and ms > 0:
                row[name] = iso_ms(ms)
            else:
                row.setdefault(name, None)
        rows.append(row)
    return rows


def peers_payload(configured: Iterable[str], saved: Iterable[dict[str, Any]], live: Iterable[dict[str, Any]] | None,
                  names: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``{"peers": rows, "sessions_known": bool}`` as ``peers list --json`` and ``GET /api/v1/peers`` print it."""
    return {"peers": peer_rows(configured, saved, live, names), "sessions_known": live is not None}
