"""What the web pages show, shaped from the store's views: pure functions and Jinja filters, no I/O (hub.web).

The store's views are JSON-shaped dicts (docs/dev/hub-contract.md). These functions pick what a page shows and
tolerate missing keys, so a peer table written by an older hub, or a view that grows fields, still renders.
Status words are the protocol's (marks, offers) and the federation's (peer health); each gets a label, a tone
and a symbol, so a page never shows status by colour alone (WCAG 2.2 SC 1.4.1).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from hub import i18n
from hub.i18n import N_, gettext
from hub.markdown import plain_text

__all__ = [
    "CATEGORY_LABELS",
    "FILTERS",
    "KIND_LABELS",
    "REFUSAL_LABELS",
    "STAKEHOLDER_LABELS",
    "SESSION_LABELS",
    "STATUS_LABELS",
    "STATUS_TONES",
    "content_disposition",
    "counts_view",
    "guide_view",
    "hub_view",
    "mark_reason",
    "mark_view",
    "money",
    "offer_view",
    "peer_view",
    "result_view",
    "schemes_of",
    "short_hub",
    "when",
]

# Labels are marked with N_ (for the catalogue) and translated where they are shown (the current locale).
KIND_LABELS = {"hub": N_("Co-op"), "guide": N_("Guide"), "offer": N_("Joint purchase")}
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
        "connecting",
        "backoff",
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
    "valid": N_("Valid"),
    "expired": N_("Expired"),
    "revoked": N_("Revoked"),
    "unauthorised": N_("Unauthorised issuer"),
    "not-yet-valid": N_("Not yet valid"),
    "none": N_("No mark"),
    "unknown-scheme": N_("Scheme not in the charter"),
    "open": N_("Open for pledges"),
    "past-deadline": N_("Deadline passed"),
    "awarded": N_("Awarded"),
    "cancelled": N_("Cancelled"),
    "healthy": N_("Healthy"),
    "failing": N_("Failing"),
    "dropped": N_("Dropped"),
    "new": N_("Not yet contacted"),
    "member": N_("Member"),
    "applicant": N_("Applicant"),
    "current": N_("Current"),
    "superseded": N_("Superseded"),
    "withdrawn": N_("Withdrawn"),
}
#: federation/status.py's session states, as the network page shows them ("unknown": no running federation).
SESSION_LABELS = {
    "open": N_("Open"),
    "connecting": N_("Connecting"),
    "backoff": N_("Waiting to retry"),
    "dropped": N_("Dropped"),
    "closed": N_("Closed"),
    "none": N_("No session yet"),
    "unknown": N_("Not known"),
}
DIRECTION_LABELS = {"inbound": N_("it connected to this hub"), "outbound": N_("this hub connected to it")}
#: The 11 service categories of protocol.kinds.SERVICE_CATEGORIES (Open Eligibility's top level).
CATEGORY_LABELS = {
    "care": N_("Care"),
    "education": N_("Education"),
    "emergency": N_("Emergency"),
    "food": N_("Food"),
    "goods": N_("Goods"),
    "health": N_("Health"),
    "housing": N_("Housing"),
    "legal": N_("Legal"),
    "money": N_("Money"),
    "transit": N_("Transport"),
    "work": N_("Work"),
}
#: protocol.kinds.STAKEHOLDERS
STAKEHOLDER_LABELS = {
    "workers": N_("Workers"),
    "service-users": N_("Service users"),
    "volunteers": N_("Volunteers"),
    "families": N_("Families"),
    "community": N_("Community"),
    "supporters": N_("Supporters"),
    "investors": N_("Investors"),
    "other": N_("Other"),
}
#: protocol.errors.REASONS, as the network page's refusals show them.
REFUSAL_LABELS = {
    "invalid": N_("Invalid record"),
    "too-large": N_("Too large"),
    "duplicate": N_("Duplicate"),
    "rate-limited": N_("Rate limited"),
    "blocked": N_("Blocked"),
    "wrong-association": N_("Another association"),
    "missing-reference": N_("Waiting for a record it refers to"),
    "error": N_("Error"),
}
OUTCOMES = {"awarded": N_("the purchase was awarded"), "cancelled": N_("the purchase was cancelled")}
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


def _label(table: dict[str, str], value: Any) -> str:
    """The translated label of a code, or the code made readable (``past-deadline`` → ``Past deadline``)."""
    text = str(value if value is not None else "")
    if text in table:
        return gettext(table[text])
    return text.replace("-", " ").capitalize() if text else gettext("unknown")


def status_label(value: Any) -> str:
    return _label(STATUS_LABELS, value)


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
    """A time as people read it in the current locale and time zone: ``5 March 2026, 14:00 GMT`` (or the date
    alone)."""
    ms = _ms(value)
    if ms is None:
        return str(value or "")
    return i18n.format_date(ms) if style == "date" else i18n.format_datetime(ms)


def ago(value: Any, now_ms: int) -> str:
    ms = _ms(value)
    if ms is None:
        return gettext("never")
    return i18n.format_ago(ms, now_ms)


def money(minor: Any, currency: Any) -> str:
    """Minor units (pence, cents) as ``£12.50``; integers only, as in the records (no floats)."""
    if not isinstance(minor, int) or isinstance(minor, bool):
        return str(minor)
    return i18n.format_money(minor, str(currency or "XXX"))


def filesize(n: Any) -> str:
    if not isinstance(n, int):
        return str(n)
    return i18n.format_filesize(n)


def number(n: Any) -> str:
    return i18n.format_number(n) if isinstance(n, int) and not isinstance(n, bool) else str(n)


FILTERS: dict[str, Callable[..., Any]] = {
    "status_tone": status_tone,
    "status_icon": lambda tone: _ICONS.get(tone, "–"),
    "status_label": status_label,
    "kind_label": lambda k: _label(KIND_LABELS, k),
    "category_label": lambda c: _label(CATEGORY_LABELS, c),
    "stakeholder_label": lambda s: _label(STAKEHOLDER_LABELS, s),
    "refusal_label": lambda r: _label(REFUSAL_LABELS, r),
    "language_name": lambda tag: i18n.language_name(str(tag)),
    "currency_name": lambda code: i18n.currency_name(str(code)),
    "listing": lambda items: i18n.format_list(list(items or [])),
    "plain": lambda text, limit=300: plain_text(str(text or ""), limit=limit),
    "short_hub": short_hub,
    "when": when,
    "ago": ago,
    "money": money,
    "filesize": filesize,
    "number": number,
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


_CATEGORY_IN_TEXT = re.compile(r"\((" + "|".join(CATEGORY_LABELS) + r")\)")


def result_view(
    r: dict[str, Any], names: dict[str, str], schemes: list[dict[str, Any]], languages: dict[str, str]
) -> dict[str, Any]:
    """One directory result. ``languages`` maps guide ids to their language tag (for ``lang`` attributes)."""
    kind = r.get("kind", "")
    scheme_names = {s["id"]: s["name"] for s in schemes}
    marks = [
        {**m, "scheme_name": scheme_names.get(m.get("scheme"), m.get("scheme"))} for m in r.get("marks") or []
    ]
    href = {"hub": f"/hubs/{r.get('author')}", "guide": f"/guides/{r.get('id')}"}.get(
        kind, f"/offers/{r.get('id')}"
    )
    services = r.get("services") or []
    snippet = r.get("snippet") or ""
    if kind == "hub":  # a profile's search text has each service as "Home care (care)": show the label
        snippet = _CATEGORY_IN_TEXT.sub(lambda m: f"({_label(CATEGORY_LABELS, m.group(1))})", snippet)
    return {
        **r,
        "href": href,
        "kind_label": _label(KIND_LABELS, kind),
        "author_name": names.get(str(r.get("author"))),
        "title": r.get("title") or gettext("(untitled)"),
        "snippet": snippet,
        "member": r.get("member"),
        "marks": marks,
        # An offer's directory entry lists its category code; a hub's, its services' names.
        "services": [_label(CATEGORY_LABELS, c) for c in services] if kind == "offer" else services,
        "language": languages.get(str(r.get("id"))) if kind == "guide" else None,
    }


def hub_view(
    data: dict[str, Any],
    hub_text: str,
    names: dict[str, str],
    schemes: list[dict[str, Any]],
    revocations: dict[str, dict[str, Any]] | None = None,
    languages: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A hub's page. ``revocations`` (id → revocation record JSON) explains revoked marks; ``languages`` maps
    its guides' ids to their language tags."""
    profile = data.get("profile") or {}
    body = profile.get("body") or {}
    name = data.get("name") or body.get("name") or short_hub(hub_text)
    return {
        "hub_id": data.get("hub") or hub_text,
        "name": name,
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
        "marks": [
            mark_view(m, m.get("scheme", ""), schemes, names, subject_name=name, revocations=revocations)
            for m in data.get("marks") or []
        ],
        "guides": [{**g, "language": (languages or {}).get(g.get("id", ""))} for g in data.get("guides") or []],
        "offers": data.get("offers") or [],
    }


def _revocation_of(m: dict[str, Any], revocations: dict[str, dict[str, Any]] | None) -> dict[str, Any]:
    rev = m.get("revocation")
    if isinstance(rev, dict):
        return rev
    return (revocations or {}).get(str(rev or ""), {})


def mark_reason(mark: dict[str, Any], subject_name: str = "") -> str:
    """Why a mark has its status, in the current locale, naming people by name (not by hub id).

    Built from the mark's fields rather than protocol.mark_status's English reason, which names hubs by id.
    """
    status = mark["status"]
    assessor = mark.get("author_name") or short_hub(mark.get("author"))
    scheme = mark.get("scheme_name") or mark.get("scheme") or ""
    if status == "valid":
        return gettext("%(level)s until %(date)s, assessed by %(assessor)s") % {
            "level": mark.get("level") or "",
            "date": when(mark.get("valid_until"), "date"),
            "assessor": assessor,
        }
    if status == "expired":
        return gettext("Expired on %(date)s.") % {"date": when(mark.get("valid_until"), "date")}
    if status == "not-yet-valid":
        return gettext("Valid from %(date)s.") % {"date": when(mark.get("valid_from"), "date")}
    if status == "revoked":
        rev = mark.get("revocation_record") or {}
        reason = (rev.get("body") or {}).get("reason") or ""
        if rev.get("created"):
            return gettext("Revoked by the assessor on %(date)s: %(reason)s") % {
                "date": when(rev.get("created"), "date"),
                "reason": reason,
            }
        return gettext("Revoked by the assessor.")
    if status == "unauthorised":
        return gettext("%(assessor)s is not an assessor of %(scheme)s in the association's charter.") % {
            "assessor": assessor,
            "scheme": scheme,
        }
    if status == "unknown-scheme":
        return gettext("The association's charter has no quality mark scheme %(scheme)s.") % {"scheme": scheme}
    if mark.get("no_charter"):
        return gettext("This hub has not joined an association yet, so it knows of no quality marks.")
    return gettext("No attestation of %(scheme)s for %(hub)s.") % {
        "scheme": scheme,
        "hub": subject_name or gettext("this hub"),
    }


def mark_view(
    m: dict[str, Any],
    scheme: str,
    schemes: list[dict[str, Any]],
    names: dict[str, str],
    *,
    subject_name: str = "",
    revocations: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A mark from marks_view (flat) or mark_check (with the attestation's record JSON)."""
    attestation = m.get("attestation") or {}
    body = attestation.get("body") or {}
    author = m.get("author") or attestation.get("author")
    scheme = m.get("scheme") or scheme
    scheme_names = {s["id"]: s["name"] for s in schemes}
    view = {
        "scheme": scheme,
        "scheme_name": scheme_names.get(scheme, scheme),
        "status": m.get("status") or "none",
        "level": m.get("level") or body.get("level"),
        "author": author,
        "author_name": m.get("author_name") or names.get(author or ""),
        "valid_from": m.get("valid_from") or body.get("valid_from"),
        "valid_until": m.get("valid_until") or body.get("valid_until"),
        "evidence_url": body.get("evidence_url"),
        "revocation_record": _revocation_of(m, revocations),
        "no_charter": m.get("status") == "none" and m.get("reason") == "this hub has no charter yet",
    }
    view["reason"] = mark_reason(view, subject_name)
    return view


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
        "title": body.get("title") or gettext("(untitled guide)"),
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
    return {
        "id": data.get("id"),
        "author": data.get("author"),
        "author_name": names.get(data.get("author", "")),
        "created": data.get("created"),
        "title": body.get("title") or gettext("(untitled offer)"),
        "description": body.get("description"),
        "category": body.get("category"),
        "unit": body.get("unit") or gettext("unit"),
        "currency": body.get("currency", ""),
        "min_total": min_total,
        "deadline": body.get("deadline"),
        "regions": body.get("regions") or [],
        "status": status,
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
        "outcome_text": gettext(OUTCOMES[status]) if status in OUTCOMES else None,
        "pledges": [
            {**p, "name": p.get("name") or names.get(p.get("hub", ""))} for p in tally.get("pledges") or []
        ],
    }


def peer_view(p: dict[str, Any], hub_from_hex: Callable[[str], str]) -> dict[str, Any]:
    """One row of the peer table (federation.peers.PeerState as stored by the driver); every key optional.

    ``lag`` stays a number (the template words it, with plurals); anything else a peer row holds is shown as is.
    """
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
        "lag": lag if isinstance(lag, int) and not isinstance(lag, bool) else None,
        "lag_text": None if lag is None or isinstance(lag, int) else str(lag),
        "received": p.get("records_received"),
        "failures": p.get("failures") or 0,
        "error": p.get("error") or p.get("last_error"),
        "session": str(p.get("session_state") or "unknown"),
        "session_text": _label(SESSION_LABELS, p.get("session_state") or "unknown"),
        "direction_text": gettext(DIRECTION_LABELS[p["direction"]]) if p.get("direction") in DIRECTION_LABELS
        else "",
        "close_reason": p.get("close_reason") or "",
        "retry_at": p.get("next_attempt_ms") if p.get("session_state") == "backoff" else None,
        "queued": _count(p.get("queued")),
        "pending": _count(p.get("pending")),
        "inbound_only": bool(p.get("inbound_only")),
        # What names the peer where its co-op's name is not known: its URL, or (a member known only by the
        # session it opened: no URL) its hub id.
        "label": (short_hub(hub) if hub else str(p.get("url", ""))) if p.get("inbound_only")
        else str(p.get("url", "")),
    }


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


#: Store.counts keys and their wording for a number ``n`` (ngettext: Welsh has six plural forms).
COUNT_LABELS: dict[str, Callable[[int], str]] = {
    "records": lambda n: i18n.ngettext("record in all", "records in all", n),
    "members": lambda n: i18n.ngettext("member hub", "member hubs", n),
    "profile": lambda n: i18n.ngettext("co-op profile", "co-op profiles", n),
    "guide": lambda n: i18n.ngettext("guide", "guides", n),
    "offer": lambda n: i18n.ngettext("offer", "offers", n),
    "pledge": lambda n: i18n.ngettext("pledge", "pledges", n),
    "attestation": lambda n: i18n.ngettext("quality mark", "quality marks", n),
    "endorsement": lambda n: i18n.ngettext("endorsement", "endorsements", n),
    "revocation": lambda n: i18n.ngettext("revocation", "revocations", n),
    "offer-close": lambda n: i18n.ngettext("offer closed", "offers closed", n),
    "charter": lambda n: i18n.ngettext("charter", "charters", n),
    "refused": lambda n: i18n.ngettext("record refused", "records refused", n),
    "deferred": lambda n: i18n.ngettext("record waiting (deferred)", "records waiting (deferred)", n),
    "quarantined": lambda n: i18n.ngettext("applicant waiting for a sponsor", "applicants waiting for a sponsor",
                                           n),
    "eligible": lambda n: i18n.ngettext("hub whose records are stored", "hubs whose records are stored", n),
}


def counts_view(counts: dict[str, int]) -> list[tuple[str, int]]:
    """(label, n) for every count, known kinds first, each label worded for its number; kinds added later
    (proposals, payments...) follow under their own names."""
    known = [(word(int(counts.get(key) or 0)), int(counts.get(key) or 0)) for key, word in COUNT_LABELS.items()]
    return known + [(key, int(n)) for key, n in sorted(counts.items()) if key not in COUNT_LABELS]
