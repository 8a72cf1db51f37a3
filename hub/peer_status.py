"""One list of peers for ``coophub peers list``, ``coophub status``, ``GET /api/v1/status``, ``GET
/api/v1/peers`` and the network page: the configured URLs, the peer table as last saved, and — when the hub
runs — its live sessions (``federation/status.py``), merged by peer-table key, and then by hub: a member known
both by its URL and by the session it opened shows once (``peer_rows``).

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
              names: Mapping[str, str] | None = None,
              url_hubs: Mapping[str, bytes] | None = None) -> list[dict[str, Any]]:
    """The peers in order: configured URLs first, then the others by key; one row per hub where it can be told.

    A row is the saved row overlaid by the live one, with ``url`` (the peer-table key), ``configured``, ``hub``
    (its hub id, "" if not yet proven), ``name`` (its co-op's name from ``names``, hub id -> name; "" if not
    known), ``inbound_only`` (a member known only by its inbound session: no URL to dial), ``session_key``
    (the ``session:<hub id>`` entry merged into this row, else ""), and each ``*_ms`` time also as ISO 8601
    UTC text (``last_contact``...). ``live`` None means "no running hub": ``session_state`` is then ``unknown``.

    A member whose URL this hub cannot reach but which dials in has two entries in the peer table: its URL
    (hub unproven: the dial never completed) and ``session:<hub id>``. ``url_hubs`` (URL -> the member whose
    profile names it, hub.queries.member_peer_url_hubs) ties the two, as does a URL entry that proved the
    same hub: they are shown as one row under the URL, its fields those of the entry with an open session,
    else of a dropped one (a drop is never hidden), else of the URL's.
    """
    config = [_key(u) for u in configured]
    saved_by = {_key(p.get("url")): p for p in saved if _key(p.get("url"))}
    live_by = {_key(p.get("url")): p for p in live or () if _key(p.get("url"))}
    keys = list(dict.fromkeys([*config, *sorted(set(saved_by) | set(live_by))]))
    merged: dict[str, dict[str, Any]] = {}
    for key in keys:
        row: dict[str, Any] = {**saved_by.get(key, {}), **live_by.get(key, {})}
        row["url"] = key
        row["configured"] = key in config
        if not row.get("hub"):
            row["hub"] = _hub_text(row.get("hub_id"))
        if live is None:
            row["session_state"] = "unknown"
        else:
            row.setdefault("session_state", "none")  # configured, not yet in the running hub's table
        merged[key] = row
    _merge_aliases(merged, {_key(u): format_hub_id(h) for u, h in (url_hubs or {}).items() if len(h) == 32})
    rows = []
    for row in merged.values():
        row.setdefault("session_key", "")
        row["inbound_only"] = row["url"].startswith(INBOUND_PREFIX)
        row["name"] = (names or {}).get(row["hub"], "") if row["hub"] else ""
        for name in _TIMES:
            ms = row.get(f"{name}_ms")
            if isinstance(ms, int) and not isinstance(ms, bool) and ms > 0:
                row[name] = iso_ms(ms)
            else:
                row.setdefault(name, None)
        rows.append(row)
    return rows


def _merge_aliases(rows: dict[str, dict[str, Any]], url_hubs: Mapping[str, str]) -> None:
    """Fold each ``session:<hub id>`` row into the one URL row of the same hub (proven, or named by that hub's
    profile and not proven otherwise), in place; the URL row keeps its position."""
    by_hub: dict[str, list[str]] = {}
    for key, row in rows.items():
        if key.startswith(INBOUND_PREFIX):
            continue
        hub = row["hub"] or url_hubs.get(key, "")
        if hub:
            by_hub.setdefault(hub, []).append(key)
    for key in [k for k in rows if k.startswith(INBOUND_PREFIX)]:
        alias = rows[key]
        hub = alias["hub"] or key[len(INBOUND_PREFIX):]
        urls = by_hub.get(hub, [])
        if len(urls) != 1:
            continue  # no URL for it, or several: nothing tells which one, so both stay
        url_row = rows[urls[0]]
        first = next((r for r in (alias, url_row) if r.get("session_state") == "open"), None) or next(
            (r for r in (alias, url_row) if r.get("session_state") == "dropped" or r.get("state") == "dropped"),
            url_row)
        other = url_row if first is alias else alias
        rows[urls[0]] = {**other, **first, "url": url_row["url"], "configured": url_row["configured"],
                         "hub": hub, "session_key": key}
        del rows[key]


def peers_payload(configured: Iterable[str], saved: Iterable[dict[str, Any]], live: Iterable[dict[str, Any]] | None,
                  names: Mapping[str, str] | None = None,
                  url_hubs: Mapping[str, bytes] | None = None) -> dict[str, Any]:
    """``{"peers": rows, "sessions_known": bool}`` as ``peers list --json`` and ``GET /api/v1/peers`` print it."""
    return {"peers": peer_rows(configured, saved, live, names, url_hubs), "sessions_known": live is not None}
