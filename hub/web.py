"""The staff web pages every hub serves (docs/web.md): server-rendered HTML from Jinja2 templates, read-only.

Routes (added by :func:`setup`, which ``hub.app.make_app`` calls):

    /                       directory search with filters (kind, region, service, valid mark, open offers)
    /hubs/{hub_id}          a hub: profile, services, regions, membership and endorsers, marks, guides, offers
    /guides/{id}            a guide: rendered Markdown (hub.markdown), licence, versions, attachments
    /guides/{id}/files/{n}  the n-th attachment of a guide, as a download
    /offers/{id}            an offer: tiers, deadline, tally, tier reached, pledging co-ops, outcome
    /marks?hub=&scheme=     check a quality mark: valid / expired / revoked / unauthorised, and why
    /network                this hub's peers, record counts and records refused
    /proposals[/{id}]       proposals, their tallies, roll-call and outcome (hub.governance_web)
    /static/...             style sheet and a few lines of optional JavaScript

Pages never write: publishing stays in the CLI and the token-protected API. Every value that came from a
record is untrusted; Jinja2 autoescaping is on for every template, and guide bodies go through
``render_markdown``.
Every page is in Welsh or English (hub.webrender chooses, hub.i18n translates and formats). Errors on these
pages become HTML responses in one place, ``hub.webrender.page_middleware``: an unknown id is a friendly 404
page, a bad query parameter a 400 page, a bug a 500 page without a traceback (the log has it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from hub import charts, i18n, peer_status
from hub import webview as view
from hub.app import HOME_KEY, LIMITS_KEY, NOW_KEY, PEER_SESSIONS_KEY, STORE_KEY, find_blob
from hub.i18n import N_
from hub.i18n import gettext as _
from hub.store import DirectoryQuery, Store
from hub.webrender import HERE, JINJA_KEY, SECURITY_HEADERS, PageError, make_environment, page_middleware, render
from protocol import SERVICE_CATEGORIES, ProtocolError, format_hub_id, parse_hub_id

__all__ = ["JINJA_KEY", "PAGE_SIZE", "PageError", "page_middleware", "render", "setup"]

#: Results per directory page: a phone screen shows two or three, so 20 is a few screens of scrolling.
PAGE_SIZE = 20
#: The last directory page anyone may ask for (bounds the OFFSET the store computes).
MAX_PAGE = 500
#: Longest text accepted in a search or mark-check field, in characters (the API's limit, hub.app).
MAX_TEXT = 500
KINDS = (
    ("", N_("Everything")),
    ("hub", N_("Co-ops (hubs)")),
    ("guide", N_("Practice guides")),
    ("offer", N_("Joint purchases")),
)
#: How many hub names one page looks up at most (one directory query; beyond it, short hub ids are shown).
MAX_NAMES = 200
_TRUE = frozenset({"1", "on", "true", "yes"})
_FALSE = frozenset({"", "0", "off", "false", "no"})

# -- parameters ----------------------------------------------------------------------------------------------


def _store(request: web.Request) -> Store:
    return request.app[STORE_KEY]


def _now(request: web.Request) -> int:
    return request.app[NOW_KEY]()


def _not_understood(detail: str) -> PageError:
    return PageError(400, _("Search not understood"), detail)


def _text(query: Mapping[str, str], name: str, label: str) -> str:
    value = query.get(name, "").strip()
    if len(value) > MAX_TEXT:
        raise _not_understood(
            _("%(field)s is longer than %(max)s characters; shorten it.") % {"field": label, "max": MAX_TEXT}
        )
    return value


def _record_id(text: str, what: str) -> bytes:
    """``what`` is "guide" or "offer"."""
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        title = _("No such guide") if what == "guide" else _("No such offer")
        raise PageError(
            404,
            title,
            _(
                "“%(text)s” is not an id: ids are 64 characters of 0–9 and a–f. "
                "Check the link, or search the directory."
            )
            % {"text": text[:80]},
        )
    return raw


def _hub_id(text: str) -> bytes:
    try:
        return parse_hub_id(text)
    except ProtocolError as exc:
        raise PageError(
            404,
            _("No such hub"),
            _("“%(text)s” is not a hub id (%(problem)s). Hub ids start with hub_ and are 59 characters long.")
            % {"text": text[:80], "problem": exc.message},
        ) from None


def _service_code(text: str) -> str:
    """A category typed as its label in either language (``Gofal``, ``housing``) becomes its code."""
    folded = text.casefold()
    for locale in i18n.LOCALES:
        with i18n.using(locale):
            for code, label in view.CATEGORY_LABELS.items():
                if folded == _(label).casefold():
                    return code
    return text


def search_form(query: Mapping[str, str], schemes: list[dict[str, Any]]) -> dict[str, Any]:
    """The directory's query parameters, checked. Unknown parameters are ignored (links get tracking tags).

    Raises:
        PageError: 400 for an unknown kind or scheme, a bad page number or open value, or text too long.
    """
    form: dict[str, Any] = {
        "q": _text(query, "q", _("Search words")),
        "region": _text(query, "region", _("Region")),
        "service": _service_code(_text(query, "service", _("Service"))),
        "kind": query.get("kind", ""),
        "mark": query.get("mark", ""),
    }
    if form["kind"] not in dict(KINDS):
        raise _not_understood(_("Show must be one of: everything, co-ops, guides or joint purchases."))
    known = {s["id"] for s in schemes}
    if form["mark"] and form["mark"] not in known:
        raise _not_understood(
            _("This association has no quality mark scheme “%(scheme)s”. Choose one from the list.")
            % {"scheme": form["mark"][:63]}
        )
    open_text = query.get("open", "").strip().lower()
    if open_text not in _TRUE | _FALSE:
        raise _not_understood(_("The open-offers filter is either on or off."))
    form["open"] = open_text in _TRUE
    reviewed_text = query.get("reviewed", "").strip().lower()
    if reviewed_text not in _TRUE | _FALSE:
        raise PageError(400, "Search not understood", "The reviewed-guides filter is either on or off.")
    form["reviewed"] = reviewed_text in _TRUE
    page_text = query.get("page", "1").strip() or "1"
    if not page_text.isdigit() or not 1 <= int(page_text) <= MAX_PAGE:
        raise _not_understood(_("Page must be a number from 1 to %(max)s.") % {"max": MAX_PAGE})
    form["page"] = int(page_text)
    return form


def _page_href(form: dict[str, Any], page: int) -> str:
    params = {k: v for k, v in form.items() if k != "page" and v not in ("", False)}
    if params.get("open"):
        params["open"] = "1"
    if params.get("reviewed"):
        params["reviewed"] = "1"
    if page > 1:
        params["page"] = page
    return "/?" + urlencode(params) if params else "/"


# -- handlers ------------------------------------------------------------------------------------------------


async def directory(request: web.Request) -> web.Response:
    store = _store(request)
    schemes = view.schemes_of(await store.read(store.terms))
    form = search_form(request.query, schemes)
    query = DirectoryQuery(
        q=form["q"],
        kind=form["kind"] or None,
        region=form["region"] or None,
        service=form["service"] or None,
        mark=form["mark"] or None,
        open=form["open"],
        reviewed=form["reviewed"],
        limit=PAGE_SIZE,
        offset=(form["page"] - 1) * PAGE_SIZE,
    )
    results, total = await store.read(store.search, query, _now(request))
    names = await _names(store, _now(request)) if any(r.get("kind") != "hub" for r in results) else {}
    languages = await _languages(store, [str(r["id"]) for r in results if r.get("kind") == "guide"])
    first = query.offset + 1 if results else 0
    last = query.offset + len(results)
    return await render(
        request,
        "directory.html",
        title=_("Directory"),
        section="/",
        form=form,
        kinds=[(value, _(label)) for value, label in KINDS],
        schemes=schemes,
        categories=sorted((code, _(label)) for code, label in view.CATEGORY_LABELS.items()
                          if code in SERVICE_CATEGORIES),
        max_text=MAX_TEXT,
        total=total,
        # Counting stops at queries.TOTAL_CAP matches: "1,000+" then (hub.queries.Total).
        total_text=view.number(total) + ("+" if getattr(total, "at_least", False) else ""),
        first=first,
        last=last,
        results=[view.result_view(r, names, schemes, languages) for r in results],
        searched=any(v not in ("", False, 1) for v in form.values()),
        prev_href=_page_href(form, form["page"] - 1) if form["page"] > 1 else None,
        next_href=_page_href(form, form["page"] + 1) if last < total else None,
    )


async def _names(store: Store, now: int) -> dict[str, str]:
    """Hub id text -> the name in its current profile, from one directory query of co-ops."""
    rows, _total = await store.read(store.search, DirectoryQuery(kind="hub", limit=MAX_NAMES), now)
    return {r["author"]: r["title"] for r in rows}


def _read_languages(store: Store, ids: list[str]) -> dict[str, str]:
    out = {}
    for text in ids:
        record = store.get_record(bytes.fromhex(text))
        if record is not None and record.kind == "guide":
            out[text] = str(record.body.get("language") or "")
    return out


async def _languages(store: Store, ids: list[str]) -> dict[str, str]:
    """Guide id -> its language tag, so a Welsh guide's title gets ``lang="cy"`` on an English page (WCAG 3.1.2).
    At most a page of ids (PAGE_SIZE, or a hub's VIEW_LIST_LIMIT guides), each a primary-key read."""
    return await store.read(_read_languages, store, ids) if ids else {}


def _read_revocations(store: Store, ids: list[str]) -> dict[str, dict[str, Any]]:
    out = {}
    for text in ids:
        record = store.get_record(bytes.fromhex(text))
        if record is not None and record.kind == "revocation":
            out[text] = {"created": record.created_ms, "body": {"reason": record.body.get("reason", "")}}
    return out


async def hub_page(request: web.Request) -> web.Response:
    hub = _hub_id(request.match_info["hub_id"])
    store, now = _store(request), _now(request)
    data = await store.read(store.hub_view, hub, now)
    if data is None:
        raise PageError(
            404,
            _("Hub not found"),
            _(
                "This hub is not in this hub's copy of the directory. It may not "
                "have published a profile yet, or its records have not reached this hub."
            ),
        )
    schemes = view.schemes_of(await store.read(store.terms))
    revoked = [str(m["revocation"]) for m in data.get("marks") or [] if m.get("revocation")]
    page = view.hub_view(
        data,
        request.match_info["hub_id"].strip(),
        await _names(store, now),
        schemes,
        await store.read(_read_revocations, store, revoked) if revoked else {},
        await _languages(store, [str(g["id"]) for g in data.get("guides") or []]),
    )
    area_map = charts.region_map(page["regions"], i18n.current().locale)
    return await render(request, "hub.html", title=page["name"], hub=page, area_map=area_map)


async def guide_page(request: web.Request) -> web.Response:
    guide_id = _record_id(request.match_info["id"], "guide")
    store = _store(request)
    data = await store.read(store.guide_view, guide_id)
    if data is None:
        raise PageError(
            404,
            _("Guide not found"),
            _(
                "No guide with this id is on this hub. It may not have reached "
                "this hub yet; search the directory for its title."
            ),
        )
    guide = view.guide_view(data, await _names(store, _now(request)))
    return await render(request, "guide.html", title=guide["title"], guide=guide)


async def attachment(request: web.Request) -> web.StreamResponse:
    guide_id = _record_id(request.match_info["id"], "guide")
    store = _store(request)
    data = await store.read(store.guide_view, guide_id)
    files = view.guide_view(data, {})["attachments"] if data is not None else []
    index = request.match_info["n"]
    if not index.isdigit() or int(index) >= len(files):
        raise PageError(404, _("File not found"), _("This guide has no such attachment."))
    meta = files[int(index)]
    blob = await find_blob(request.app, bytes.fromhex(meta["hash"]))  # fetched from a peer if missing
    if blob is None:
        raise PageError(
            404,
            _("File not on this hub yet"),
            _("“%(name)s” has not been copied to this hub. Try again later, or ask the guide's author.")
            % {"name": meta["name"]},
        )
    # Always a download, never shown inline: a file from another hub could be HTML. The sandbox CSP
    # and nosniff keep it inert even if a browser opens it.
    headers = {
        **SECURITY_HEADERS,
        "Content-Security-Policy": "sandbox; default-src 'none'",
        "Content-Disposition": view.content_disposition(meta["name"]),
    }
    return web.Response(
        body=blob, content_type=meta.get("media_type") or "application/octet-stream", headers=headers
    )


async def offer_page(request: web.Request) -> web.Response:
    offer_id = _record_id(request.match_info["id"], "offer")
    store, now = _store(request), _now(request)
    data = await store.read(store.offer_view, offer_id, now)
    if data is None:
        raise PageError(
            404,
            _("Offer not found"),
            _(
                "No joint purchase with this id is on this hub. It may not have "
                "reached this hub yet; search the directory for its title."
            ),
        )
    offer = view.offer_view(data, await _names(store, now))
    tally_bar = charts.pledge_bar(
        offer["total"],
        offer["min_total"],
        offer["tiers"],
        lambda t: _("%(quantity)s+: %(price)s")
        % {"quantity": view.number(t["min"]), "price": view.money(t["price"], offer["currency"])},
        _("minimum %(quantity)s") % {"quantity": view.number(offer["min_total"])},
    )
    return await render(request, "offer.html", title=offer["title"], offer=offer, tally_bar=tally_bar)


def _mark_errors(
    hub_text: str, scheme: str, schemes: list[dict[str, Any]]
) -> tuple[bytes | None, dict[str, str]]:
    errors: dict[str, str] = {}
    hub = None
    if not hub_text:
        errors["hub"] = _("Enter the hub id of the co-op to check. It starts with hub_.")
    else:
        try:
            hub = parse_hub_id(hub_text)
        except ProtocolError as exc:
            errors["hub"] = _("This is not a hub id: %(problem)s.") % {"problem": exc.message}
    if scheme and scheme not in {s["id"] for s in schemes}:
        errors["scheme"] = _("Choose a quality mark scheme from the list.")
    return hub, errors


async def marks_page(request: web.Request) -> web.Response:
    store, now = _store(request), _now(request)
    schemes = view.schemes_of(await store.read(store.terms))
    hub_text = _text(request.query, "hub", _("Hub id"))
    scheme = request.query.get("scheme", "").strip()
    context: dict[str, Any] = {
        "schemes": schemes,
        "hub_text": hub_text,
        "scheme": scheme,
        "errors": {},
        "check": None,
        "marks": None,
        "max_text": MAX_TEXT,
        "section": "/marks",
    }
    status = 200
    if "hub" in request.query or "scheme" in request.query:
        hub, context["errors"] = _mark_errors(hub_text, scheme, schemes)
        if context["errors"]:
            status = 400
        elif hub is not None:
            names = await _names(store, now)
            name = context["hub_name"] = names.get(hub_text) or view.short_hub(hub_text)
            if scheme:
                check = await store.read(store.mark_check, hub, scheme, now)
                context["check"] = view.mark_view(check, scheme, schemes, names, subject_name=name)
            marks = await store.read(store.marks_view, hub, now)
            revoked = [str(m["revocation"]) for m in marks if m.get("revocation")]
            revocations = await store.read(_read_revocations, store, revoked) if revoked else {}
            context["marks"] = [
                view.mark_view(m, "", schemes, names, subject_name=name, revocations=revocations) for m in marks
            ]
    return await render(request, "marks.html", status=status, title=_("Check a quality mark"), **context)


def _hub_from_hex(text: str) -> str:
    raw = bytes.fromhex(text)
    if len(raw) != 32:
        raise ValueError("a hub key is 32 bytes")
    return format_hub_id(raw)


async def network_page(request: web.Request) -> web.Response:
    store, home, now = _store(request), request.app[HOME_KEY], _now(request)
    # The running federation's sessions, read in the event loop, over the table it last saved (hub.peer_status).
    live = request.app[PEER_SESSIONS_KEY]() if PEER_SESSIONS_KEY in request.app else None
    rows = peer_status.peer_rows((), await store.read(store.list_peers), live,
                                 url_hubs=await store.read(store.member_peer_url_hubs))
    peers = [view.peer_view(p, _hub_from_hex) for p in rows]
    refused = await store.read(store.refused_summary)
    association = await store.read(store.association_id) or home.association
    names = await _names(store, now)
    return await render(
        request,
        "network.html",
        title=_("Network status"),
        section="/network",
        now=now,
        member=await store.read(store.is_member, home.key.public),
        association=association.hex() if association else "",
        peers=peers,
        sessions_known=live is not None,
        limits=request.app[LIMITS_KEY],
        graph=charts.peer_graph(home.config.name, peers, names),
        counts=view.counts_view(await store.read(store.counts)),
        refused=sorted(refused, key=lambda r: (-int(r.get("count") or 0), str(r.get("source")))),
        applicants=await store.read(store.applicants),
        configured=home.config.peers,
        names=names,
    )


# -- the application -----------------------------------------------------------------------------------------


def setup(app: web.Application) -> None:
    """Add the web pages, their static files and their error middleware to the hub's app."""
    app[JINJA_KEY] = make_environment()
    app.middlewares.append(page_middleware)
    r = app.router
    r.add_get("/", directory, name="directory")
    r.add_get("/hubs/{hub_id}", hub_page, name="hub")
    r.add_get("/guides/{id}", guide_page, name="guide")
    r.add_get("/guides/{id}/files/{n}", attachment, name="attachment")
    r.add_get("/offers/{id}", offer_page, name="offer")
    r.add_get("/marks", marks_page, name="marks")
    r.add_get("/network", network_page, name="network")
    from hub import governance_web  # proposals and their results

    governance_web.setup(app)
    r.add_static("/static/", HERE / "static", name="static", append_version=False)
