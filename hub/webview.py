"""What the web pages show, shaped from the store's views: pure functions and Jinja filters, no I/O (hub.web).

The store's views are JSON-shaped dicts (docs/dev/hub-contract.md). These functions pick what a page shows and
tolerate missing keys, so a peer table written by an older hub, or a view that grows fields, still renders.
Status words are the protocol's (marks, offers) and the federation's (peer health); each gets a label, a tone
and a symbol, so a page never shows status by colour alone (WCAG 2.2 SC 1.4.1).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

__all__ = [
    "FILTERS",
    "KIND_LABELS",
    "STATUS_LABELS",
    "STATUS_TONES",
    "content_disposition",
    "counts_view",
    "guide_view",
    "hub_view",
    "mark_view",
    "offer_view",
    "peer_view",
    "result_view",
    "schemes_of",
    "short_hub",
    "when",
]

KIND_LABELS = {"hub": "Co-op", "guide": "Guide", "offer": "Joint purchase"}
STATUS_TONES = {
    "ok": ("valid", "open", "awarded", "member", "healthy", "current", "reached", "ok", "passed", "adopted",
           "reviewed"),
    "warn": (
        "expired",
        "not-yet-valid",
        "past-deadline",
        "applicant",
        "failing",
        "new",
        "superseded",
        "below",
        "closing",
        "no-quorum",
        "pending",
    ),
    "bad": ("revoked", "unauthorised", "unknown-scheme", "cancelled", "dropped", "withdrawn", "refused", "failed",
            "not-adopted", "ignored"),
}
_TONE = {status: tone for tone, statuses in STATUS_TONES.items() for status in statuses}
_ICONS = {"ok": "✓", "warn": "!", "bad": "✗", "none": "–"}
STATUS_LABELS = {
    "valid": "Valid",
    "expired": "Expired",
    "revoked": "Revoked",
    "unauthorised": "Unauthorised issuer",
    "not-yet-valid": "Not yet valid",
    "none": "No mark",
    "unknown-scheme": "Scheme not in the charter",
    "open": "Open for pledges",
    "past-deadline": "Deadline passed",
    "awarded": "Awarded",
    "cancelled": "Cancelled",
    "healthy": "Healthy",
    "failing": "Failing",
    "dropped": "Dropped",
    "new": "Not yet contacted",
}
OUTCOMES = {"awarded": "the purchase was awarded", "cancelled": "the purchase was cancelled"}
# Licence texts for the SPDX ids kinds.OPEN_LICENSES accepts; others link to the SPDX page.
_CC = "https://creativecommons.org/licenses/"
LICENSE_URLS = {
    "CC0-1.0": "https://creativecommons.org/publicdomain/zero/1.0/",
    "CC-BY-4.0": _CC + "by/4.0/",
    "CC-BY-SA-4.0": _CC + "by-sa/4.0/",
    "CC-BY-3.0": _CC + "by/3.0/",
    "CC-BY-SA-3.0": _CC + "by-sa/3.0/",
}


def status_tone(value: Any) -> str:
    return _TONE.get(str(value), "none")


def short_hub(hub: Any) -> str:
    """``hub_abcdefgh…wxyz``: enough to tell hubs apart at a glance; pages show the full id where it
    matters."""
    text = str(hub or "")
    return text if len(text) <= 20 else f"{text[:12]}…{text[-4:]}"


def _ms(value: Any) -> int | None:
    """UTC milliseconds from an int or the ISO text of protocol.jsonview.iso_ms."""
    if isinstance(value, bool) or value is None or value == "":
        return None
    if isinstance(value, int):
        return value
    try:
        moment = datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return int(moment.timestamp() * 1000)


def when(value: Any, style: str = "datetime") -> str:
    """A time as people read it: ``5 March 2026, 14:00 UTC`` (or the date alone)."""
    ms = _ms(value)
    if ms is None:
        return str(value or "")
    try:
        moment = datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC)
    except (OverflowError, OSError, ValueError):
        return f"{ms} ms after 1970 UTC"
    date = f"{moment.day} {moment:%B %Y}"
    return date if style == "date" else f"{date}, {moment:%H:%M} UTC"


def ago(value: Any, now_ms: int) -> str:
    ms = _ms(value)
    if ms is None:
        return "never"
    seconds = max(0, (now_ms - ms) // 1000)
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second")):
        if seconds >= size or size == 1:
            n = seconds // size
            return f"{n} {unit}{'' if n == 1 else 's'} ago"
    return "just now"  # pragma: no cover


def money(minor: Any, currency: Any) -> str:
    """Minor units (pence, cents) as ``12.50 GBP``; integers only, as in the records (no floats)."""
    if not isinstance(minor, int):
        return str(minor)
    return f"{minor // 100:,}.{minor % 100:02d} {currency}"


def filesize(n: Any) -> str:
    if not isinstance(n, int):
        return str(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)  # pragma: no cover


def plural(unit: Any, n: Any) -> str:
    """``box`` → ``boxes`` unless ``n`` is 1: English units only, as offers name them."""
    text = str(unit)
    if n == 1 or text.endswith("s"):
        return text
    return text + ("es" if text.endswith(("x", "ch", "sh", "z")) else "s")


FILTERS: dict[str, Callable[..., Any]] = {
    "plural": plural,
    "status_tone": status_tone,
    "status_icon": lambda tone: _ICONS.get(tone, "–"),
    "status_label": lambda s: STATUS_LABELS.get(str(s), str(s or "unknown").replace("-", " ").capitalize()),
    "short_hub": short_hub,
    "when": when,
    "ago": ago,
    "money": money,
    "filesize": filesize,
    "number": lambda n: f"{n:,}" if isinstance(n, int) else str(n),
}


def content_disposition(name: str) -> str:
    """An attachment header for ``name`` (RFC 6266): a plain ASCII fallback plus the UTF-8 name."""
    fallback = "".join(c if c.isascii() and (c.isalnum() or c in "._- ") else "_" for c in name) or "file"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def schemes_of(charter: Any) -> list[dict[str, Any]]:
    """The quality-mark schemes of the terms in force (protocol.CharterTerms), or of a charter record."""
    if charter is None:
        return []
    names = getattr(charter, "scheme_names", None)
    if names is not None:  # the terms in force, with the schemes members adopted by amendment
        return [{"id": s, "name": names.get(s) or s} for s in charter.schemes]
    return [{"id": s["id"], "name": s.get("name") or s["id"]} for s in charter.body.get("schemes", [])]


def result_view(r: dict[str, Any], names: dict[str, str], schemes: list[dict[str, Any]]) -> dict[str, Any]:
    kind = r.get("kind", "")
    scheme_names = {s["id"]: s["name"] for s in schemes}
    marks = [
        {**m, "scheme_name": scheme_names.get(m.get("scheme"), m.get("scheme"))} for m in r.get("marks") or []
    ]
    href = {"hub": f"/hubs/{r.get('author')}", "guide": f"/guides/{r.get('id')}"}.get(
        kind, f"/offers/{r.get('id')}"
    )
    return {
        **r,
        "href": href,
        "kind_label": KIND_LABELS.get(kind, kind),
        "author_name": names.get(str(r.get("author"))),
        "title": r.get("title") or "(untitled)",
        "member": r.get("member"),
        "marks": marks,
    }


def hub_view(
    data: dict[str, Any], hub_text: str, names: dict[str, str], schemes: list[dict[str, Any]]
) -> dict[str, Any]:
    profile = data.get("profile") or {}
    body = profile.get("body") or {}
    return {
        "hub_id": data.get("hub") or hub_text,
        "name": data.get("name") or body.get("name") or short_hub(hub_text),
        "legal_form": body.get("legal_form"),
        "description": body.get("description"),
        "regions": body.get("regions") or [],
        "services": body.get("services") or [],
        "stakeholders": body.get("stakeholders") or [],
        "contact": body.get("contact") or {},
        "website": body.get("website"),
        "updated": profile.get("created"),
        "member": bool(data.get("member")),
        "founder": bool(data.get("founder")),
        "class": data.get("class"),
        "weight": data.get("weight"),
        "endorsers": [{"hub": h, "name": names.get(h)} for h in data.get("endorsers") or []],
        "marks": [mark_view(m, m.get("scheme", ""), schemes, names) for m in data.get("marks") or []],
        "guides": data.get("guides") or [],
        "offers": data.get("offers") or [],
    }


def mark_view(
    m: dict[str, Any], scheme: str, schemes: list[dict[str, Any]], names: dict[str, str]
) -> dict[str, Any]:
    """A mark from marks_view (flat) or mark_check (with the attestation's record JSON)."""
    attestation = m.get("attestation") or {}
    body = attestation.get("body") or {}
    author = m.get("author") or attestation.get("author")
    scheme = m.get("scheme") or scheme
    scheme_names = {s["id"]: s["name"] for s in schemes}
    return {
        "scheme": scheme,
        "scheme_name": scheme_names.get(scheme, scheme),
        "status": m.get("status") or "none",
        "reason": m.get("reason"),
        "level": m.get("level") or body.get("level"),
        "author": author,
        "author_name": m.get("author_name") or names.get(author or ""),
        "valid_from": m.get("valid_from") or body.get("valid_from"),
        "valid_until": m.get("valid_until") or body.get("valid_until"),
        "evidence_url": body.get("evidence_url"),
    }


def guide_view(data: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    body = data.get("body") or {}
    versions = data.get("versions") or []
    newer = data.get("superseded_by") or []
    current_id = None if data.get("state") == "revoked" else (data.get("id") if not newer else None)
    license_id = body.get("license", "")
    return {
        "id": data.get("id"),
        "author": data.get("author"),
        "author_name": names.get(data.get("author", "")),
        "created": data.get("created"),
        "title": body.get("title") or "(untitled guide)",
        "summary": body.get("summary"),
        "body": body.get("body") or "",
        "license": license_id,
        "license_url": LICENSE_URLS.get(license_id, f"https://spdx.org/licenses/{quote(license_id)}.html"),
        "tags": body.get("tags") or [],
        "language": body.get("language"),
        "attachments": body.get("attachments") or [],
        "revoked": bool(data.get("revoked")),
        "superseded_by": newer[-1] if newer else None,
        "review": data.get("review") or {"reviewed": False, "approvals": [], "needed": 0},
        "versions": [{**v, "current": v.get("id") == current_id} for v in versions],
    }


def offer_view(data: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    body = data.get("body") or {}
    tally = data.get("tally") or {}
    total = int(tally.get("total") or 0)
    min_total = int(body.get("min_total") or 1)
    tier = tally.get("tier") or None
    tiers = [
        {
            "min": q,
            "price": p,
            "reached": total >= q,
            "current": tier is not None and q == tier.get("min_quantity"),
        }
        for q, p in body.get("tiers") or []
    ]
    upcoming = [t for t in tiers if not t["reached"]]
    status = tally.get("status") or data.get("status") or "open"
    unit = body.get("unit") or "unit"
    return {
        "id": data.get("id"),
        "author": data.get("author"),
        "author_name": names.get(data.get("author", "")),
        "created": data.get("created"),
        "title": body.get("title") or "(untitled offer)",
        "description": body.get("description"),
        "category": body.get("category"),
        "unit": unit,
        "currency": body.get("currency", ""),
        "min_total": min_total,
        "deadline": body.get("deadline"),
        "regions": body.get("regions") or [],
        "status": status,
        "status_text": STATUS_LABELS.get(status),
        "open": status == "open",
        "total": total,
        "proceeds": bool(tally.get("proceeds")),
        "to_minimum": max(0, min_total - total),
        "percent": min(100, total * 100 // min_total),
        "tier": {"min": tier.get("min_quantity"), "price": tier.get("unit_price")} if tier else None,
        "next_tier": {"needed": upcoming[0]["min"] - total, "price": upcoming[0]["price"]}
        if upcoming
        else None,
        "tiers": tiers,
        "outcome": status if status in OUTCOMES else None,
        "outcome_text": OUTCOMES.get(status),
        "pledges": [
            {**p, "name": p.get("name") or names.get(p.get("hub", ""))} for p in tally.get("pledges") or []
        ],
    }


def peer_view(p: dict[str, Any], hub_from_hex: Callable[[str], str]) -> dict[str, Any]:
    """One row of the peer table (federation.peers.PeerState as stored by the driver); every key optional."""
    lag = p.get("lag")
    hub_hex = p.get("hub_id") or ""
    try:
        hub = hub_from_hex(hub_hex) if hub_hex else None
    except ValueError:
        hub = None
    return {
        "url": p.get("url", ""),
        "state": p.get("state"),
        "hub": hub,
        "score": p.get("score"),
        "last_contact": p.get("last_contact_ms") or p.get("last_contact"),
        "last_sync": p.get("last_sync_ms") or p.get("last_sync"),
        "lag": None
        if lag is None
        else "in sync"
        if lag == 0
        else f"{lag:,} record{'s' if lag != 1 else ''} behind"
        if isinstance(lag, int)
        else str(lag),
        "received": p.get("records_received"),
        "failures": p.get("failures") or 0,
    }


COUNT_LABELS = (
    ("records", "records in all"),
    ("members", "member hubs"),
    ("profile", "co-op profiles"),
    ("guide", "guides"),
    ("offer", "offers"),
    ("pledge", "pledges"),
    ("attestation", "quality marks"),
    ("endorsement", "endorsements"),
    ("revocation", "revocations"),
    ("offer-close", "offers closed"),
    ("charter", "charter"),
    ("refused", "records refused"),
)


def counts_view(counts: dict[str, int]) -> list[tuple[str, int]]:
    known = [(label, int(counts.get(key) or 0)) for key, label in COUNT_LABELS]
    named = {key for key, _ in COUNT_LABELS}
    return known + [(key, int(n)) for key, n in sorted(counts.items()) if key not in named]
