"""Web pages for the association's collective voice (docs/web.md), added by hub.web.setup:

    /proposals         open proposals first (closing soonest first), then those awaiting the proposer's close,
                       then closed ones
    /proposals/{id}    the motion and its options, the live (or final) tally raw and weighted, the quorum bar,
                       the decision rule, the roll-call (who voted what, directly or by proxy), the outcome, the
                       amendment it carries and its state, and the recount

Read-only like every page; members vote with the ``coophub`` command or the API. Every string a person reads
is in the templates, through gettext (``{{ _("…") }}``), so the Welsh catalogue can translate it.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hub import proposals
from hub.app import NOW_KEY, STORE_KEY
from hub.i18n import gettext as _

__all__ = ["PAGE_SIZE", "proposal_page_view", "setup"]

PAGE_SIZE = 20
MAX_PAGE = 500


def _error(status: int, title: str, detail: str) -> Exception:
    from hub.web import PageError  # hub.web imports this module in setup()

    return PageError(status, title, detail)


def _share(part: int, whole: int) -> int:
    """``part`` as a whole percentage of ``whole`` (0 when whole is 0), for bars; integers only."""
    return 0 if whole <= 0 else min(100, part * 100 // whole)


def proposal_page_view(data: dict[str, Any]) -> dict[str, Any]:
    """What the proposal page shows, shaped from hub.proposals.proposal_view; tolerant of missing keys."""
    quorum = data.get("quorum") or {}
    options = data.get("options") or []
    cast = sum(int(o.get("weight") or 0) for o in options)
    body = data.get("body") or {}
    return {
        **data,
        "body_text": body.get("body") or "",
        "options": [{**o, "share": _share(int(o.get("weight") or 0), cast)} for o in options],
        "cast_weight": cast,
        "quorum": {**quorum, "share": _share(int(quorum.get("participating") or 0),
                                             int(quorum.get("base") or 0))},
        "closed": data.get("close_id") is not None,
        "amendment_items": _amendment_items((data.get("amendment") or {}).get("changes") or {}),
    }


def _amendment_items(changes: dict[str, Any]) -> list[tuple[str, str]]:
    """The amendment's changes as (field, value) text pairs, in a stable order."""
    out = []
    for name in sorted(changes):
        value = changes[name]
        if name == "classes":
            text = ", ".join(f"{c.get('name')} ({c.get('weight')})" for c in value)
        elif name == "schemes":
            text = "; ".join(f"{s.get('name')} [{s.get('id')}]: {len(s.get('assessors') or [])} assessor(s)"
                             for s in value)
        elif name == "founder_classes":
            text = ", ".join(f"{fc.get('hub', '')[:16]}…: {fc.get('class')}" for fc in value)
        else:
            text = str(value)
        out.append((name, text))
    return out


async def proposals_page(request: web.Request) -> web.Response:
    from hub.web import render

    page_text = request.query.get("page", "1").strip() or "1"
    if not page_text.isdigit() or not 1 <= int(page_text) <= MAX_PAGE:
        raise _error(400, _("Page not understood"), _("Page must be a number from 1 to %(max)s.") % {"max": MAX_PAGE})
    page = int(page_text)
    store = request.app[STORE_KEY]
    data = await store.read(store.view, proposals.proposals_list, request.app[NOW_KEY](), PAGE_SIZE,
                            (page - 1) * PAGE_SIZE)
    total = int(data["total"])
    return await render(request, "proposals.html", title=_("Proposals"), section="/proposals",
                        proposals=data["results"], total=total, page=page,
                        prev_href=f"/proposals?page={page - 1}" if page > 1 else None,
                        next_href=f"/proposals?page={page + 1}" if page * PAGE_SIZE < total else None)


async def proposal_page(request: web.Request) -> web.Response:
    from hub.web import render

    text = request.match_info["id"]
    try:
        proposal_id = bytes.fromhex(text)
    except ValueError:
        proposal_id = b""
    if len(proposal_id) != 32:
        raise _error(404, _("No such proposal"), _("“%(text)s” is not a proposal id: ids are 64 characters of "
                     "0–9 and a–f. Check the link, or see the list of proposals.") % {"text": text[:80]})
    store = request.app[STORE_KEY]
    data = await store.read(store.view, proposals.proposal_view, proposal_id, request.app[NOW_KEY]())
    if data is None:
        raise _error(404, _("Proposal not found"), _("No proposal with this id is on this hub. It may not have "
                     "reached this hub yet; see the list of proposals."))
    view = proposal_page_view(data)
    return await render(request, "proposal.html", title=view["title"], section="/proposals", p=view)


def setup(app: web.Application) -> None:
    app.router.add_get("/proposals", proposals_page, name="proposals")
    app.router.add_get("/proposals/{id}", proposal_page, name="proposal")
