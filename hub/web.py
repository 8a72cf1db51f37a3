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
Errors on these pages become HTML responses in one place, :func:`page_middleware`: an unknown id is a friendly
404 page, a bad query parameter a 400 page, a bug a 500 page without a traceback (the log has it).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from aiohttp import web
from markupsafe import Markup

from hub import webview as view
from hub.app import HOME_KEY, NOW_KEY, STORE_KEY, find_blob
from hub.markdown import render_markdown
from hub.store import DirectoryQuery, Store
from protocol import SERVICE_CATEGORIES, ProtocolError, format_hub_id, parse_hub_id

__all__ = ["JINJA_KEY", "PAGE_SIZE", "PageError", "page_middleware", "setup"]

log = logging.getLogger("coophub.web")

HERE = Path(__file__).resolve().parent
JINJA_KEY: web.AppKey[jinja2.Environment] = web.AppKey("jinja", jinja2.Environment)

#: Results per directory page: a phone screen shows two or three, so 20 is a few screens of scrolling.
PAGE_SIZE = 20
#: The last directory page anyone may ask for (bounds the OFFSET the store computes).
MAX_PAGE = 500
#: Longest text accepted in a search or mark-check field, in characters (the API's limit, hub.app).
MAX_TEXT = 500
#: Paths whose errors are answered by their own middleware (JSON API, msgpack peer protocol).
NOT_PAGES = ("/api/", "/fed/")
KINDS = (
    ("", "Everything"),
    ("hub", "Co-ops (hubs)"),
    ("guide", "Practice guides"),
    ("offer", "Joint purchases"),
)
#: How many hub names one page looks up at most (one directory query; beyond it, short hub ids are shown).
MAX_NAMES = 200
_TRUE = frozenset({"1", "on", "true", "yes"})
_FALSE = frozenset({"", "0", "off", "false", "no"})

# Pages only read and load nothing from elsewhere. "sandbox" is for downloads (see attachment()).
CSP = (
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class PageError(Exception):
    """A page that cannot be shown; becomes an HTML error page with ``status``."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail


# -- rendering -----------------------------------------------------------------------------------------------


def make_environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.ChainableUndefined,
        extensions=["jinja2.ext.i18n"],
    )
    # Every user-visible string in a template goes through _() / {% trans %} (newstyle gettext), so the
    # Welsh and English catalogues can translate it; until a catalogue is installed, strings show as written.
    env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]
    env.filters.update(view.FILTERS)
    # render_markdown escapes raw HTML and drops unsafe links, so its output may be marked safe.
    env.filters["markdown"] = lambda text, level=2: Markup(render_markdown(str(text or ""), base_level=level))
    return env


async def _site(request: web.Request) -> dict[str, Any]:
    home, store = request.app[HOME_KEY], request.app[STORE_KEY]
    charter = await store.read(store.charter)
    return {
        "hub_name": home.config.name,
        "hub_id": home.hub_id,
        "association_name": charter.body["name"] if charter is not None else "",
    }


async def render(request: web.Request, template: str, *, status: int = 200, **context: Any) -> web.Response:
    """Render ``template`` with the site's header context; every page gets the security headers."""
    env = request.app[JINJA_KEY]
    context.setdefault("section", "")
    html = env.get_template(template).render(site=await _site(request), **context)
    return web.Response(
        text=html, status=status, content_type="text/html", charset="utf-8", headers=SECURITY_HEADERS
    )


async def _error_page(request: web.Request, status: int, title: str, detail: str) -> web.Response:
    try:
        return await render(
            request, "error.html", status=status, title=title, detail=detail, status_code=status
        )
    except Exception:  # the store itself is failing: still answer in HTML, without the site's header
        log.exception("cannot render the error page for %s", request.path)
        return web.Response(
            text=f"<!doctype html><html lang='en'><title>{status}</title><h1>{status}</h1>",
            status=status,
            content_type="text/html",
        )


_HTTP_PAGES = {
    404: (
        "Page not found",
        "There is no page at this address. Check it for a typo, or start from the directory.",
    ),
    405: (
        "Not allowed",
        "These pages only show information. Members publish with the coophub command or the hub's API.",
    ),
}


@web.middleware
async def page_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every error on a web page into an HTML page; the API and peer routes keep their own handling."""
    if request.path.startswith(NOT_PAGES):
        return await handler(request)
    try:
        return await handler(request)
    except PageError as exc:
        return await _error_page(request, exc.status, exc.title, exc.detail)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        title, detail = _HTTP_PAGES.get(exc.status, ("Something went wrong", exc.reason or "Bad request."))
        return await _error_page(request, exc.status, title, detail)
    except Exception:  # a bug: log it with its traceback, answer without one
        log.exception("internal error serving %s %s", request.method, request.path)
        return await _error_page(
            request,
            500,
            "Something went wrong on this hub",
            "The page could not be shown. The hub's log has the details for its "
            "volunteer; please try again later.",
        )


# -- parameters ----------------------------------------------------------------------------------------------


def _store(request: web.Request) -> Store:
    return request.app[STORE_KEY]


def _now(request: web.Request) -> int:
    return request.app[NOW_KEY]()


def _text(query: Mapping[str, str], name: str, label: str) -> str:
    value = query.get(name, "").strip()
    if len(value) > MAX_TEXT:
        raise PageError(
            400, "Search not understood", f"{label} is longer than {MAX_TEXT} characters; shorten it."
        )
    return value


def _record_id(text: str, what: str) -> bytes:
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise PageError(
            404,
            f"No such {what}",
            f"“{text[:80]}” is not a {what} id: ids are 64 characters of "
            "0–9 and a–f. Check the link, or search the directory.",
        )
    return raw


def _hub_id(text: str) -> bytes:
    try:
        return parse_hub_id(text)
    except ProtocolError as exc:
        raise PageError(
            404,
            "No such hub",
            f"“{text[:80]}” is not a hub id ({exc.message}). Hub ids start "
            "with hub_ and are 60 characters long.",
        ) from None


def search_form(query: Mapping[str, str], schemes: list[dict[str, Any]]) -> dict[str, Any]:
    """The directory's query parameters, checked. Unknown parameters are ignored (links get tracking tags).

    Raises:
        PageError: 400 for an unknown kind or scheme, a bad page number or open value, or text too long.
    """
    form: dict[str, Any] = {
        "q": _text(query, "q", "Search words"),
        "region": _text(query, "region", "Region"),
        "service": _text(query, "service", "Service"),
        "kind": query.get("kind", ""),
        "mark": query.get("mark", ""),
    }
    if form["kind"] not in dict(KINDS):
        raise PageError(
            400,
            "Search not understood",
            "Show must be one of: everything, co-ops, guides or joint purchases.",
        )
    known = {s["id"] for s in schemes}
    if form["mark"] and form["mark"] not in known:
        raise PageError(
            400,
            "Search not understood",
            f"This association has no quality mark scheme “{form['mark'][:63]}”. Choose one from the list.",
        )
    open_text = query.get("open", "").strip().lower()
    if open_text not in _TRUE | _FALSE:
        raise PageError(400, "Search not understood", "The open-offers filter is either on or off.")
    form["open"] = open_text in _TRUE
    reviewed_text = query.get("reviewed", "").strip().lower()
    if reviewed_text not in _TRUE | _FALSE:
        raise PageError(400, "Search not understood", "The reviewed-guides filter is either on or off.")
    form["reviewed"] = reviewed_text in _TRUE
    page_text = query.get("page", "1").strip() or "1"
    if not page_text.isdigit() or not 1 <= int(page_text) <= MAX_PAGE:
        raise PageError(400, "Search not understood", f"Page must be a number from 1 to {MAX_PAGE}.")
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
    first = query.offset + 1 if results else 0
    last = query.offset + len(results)
    return await render(
        request,
        "directory.html",
        title="Directory",
        section="/",
        form=form,
        kinds=KINDS,
        schemes=schemes,
        categories=sorted(SERVICE_CATEGORIES),
        max_text=MAX_TEXT,
        total=total,
        first=first,
        last=last,
        results=[view.result_view(r, names, schemes) for r in results],
        searched=any(v not in ("", False, 1) for v in form.values()),
        prev_href=_page_href(form, form["page"] - 1) if form["page"] > 1 else None,
        next_href=_page_href(form, form["page"] + 1) if last < total else None,
    )


async def _names(store: Store, now: int) -> dict[str, str]:
    """Hub id text -> the name in its current profile, from one directory query of co-ops."""
    rows, _ = await store.read(store.search, DirectoryQuery(kind="hub", limit=MAX_NAMES), now)
    return {r["author"]: r["title"] for r in rows}


async def hub_page(request: web.Request) -> web.Response:
    hub = _hub_id(request.match_info["hub_id"])
    store, now = _store(request), _now(request)
    data = await store.read(store.hub_view, hub, now)
    if data is None:
        raise PageError(
            404,
            "Hub not found",
            "This hub is not in this hub's copy of the directory. It may not "
            "have published a profile yet, or its records have not reached this hub.",
        )
    schemes = view.schemes_of(await store.read(store.terms))
    page = view.hub_view(data, request.match_info["hub_id"].strip(), await _names(store, now), schemes)
    return await render(request, "hub.html", title=page["name"], hub=page)


async def guide_page(request: web.Request) -> web.Response:
    guide_id = _record_id(request.match_info["id"], "guide")
    store = _store(request)
    data = await store.read(store.guide_view, guide_id)
    if data is None:
        raise PageError(
            404,
            "Guide not found",
            "No guide with this id is on this hub. It may not have reached "
            "this hub yet; search the directory for its title.",
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
        raise PageError(404, "File not found", "This guide has no such attachment.")
    meta = files[int(index)]
    blob = await find_blob(request.app, bytes.fromhex(meta["hash"]))  # fetched from a peer if missing
    if blob is None:
        raise PageError(
            404,
            "File not on this hub yet",
            f"“{meta['name']}” has not been copied to this hub. Try again later, or ask the guide's author.",
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
            "Offer not found",
            "No joint purchase with this id is on this hub. It may not have "
            "reached this hub yet; search the directory for its title.",
        )
    offer = view.offer_view(data, await _names(store, now))
    return await render(request, "offer.html", title=offer["title"], offer=offer)


def _mark_errors(
    hub_text: str, scheme: str, schemes: list[dict[str, Any]]
) -> tuple[bytes | None, dict[str, str]]:
    errors: dict[str, str] = {}
    hub = None
    if not hub_text:
        errors["hub"] = "Enter the hub id of the co-op to check. It starts with hub_."
    else:
        try:
            hub = parse_hub_id(hub_text)
        except ProtocolError as exc:
            errors["hub"] = f"This is not a hub id: {exc.message}."
    if scheme and scheme not in {s["id"] for s in schemes}:
        errors["scheme"] = "Choose a quality mark scheme from the list."
    return hub, errors


async def marks_page(request: web.Request) -> web.Response:
    store, now = _store(request), _now(request)
    schemes = view.schemes_of(await store.read(store.terms))
    hub_text = _text(request.query, "hub", "Hub id")
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
            context["hub_name"] = names.get(hub_text) or view.short_hub(hub_text)
            if scheme:
                context["check"] = view.mark_view(
                    await store.read(store.mark_check, hub, scheme, now), scheme, schemes, names
                )
            context["marks"] = [
                view.mark_view(m, "", schemes, names) for m in await store.read(store.marks_view, hub, now)
            ]
    return await render(request, "marks.html", status=status, title="Check a quality mark", **context)


def _hub_from_hex(text: str) -> str:
    raw = bytes.fromhex(text)
    if len(raw) != 32:
        raise ValueError("a hub key is 32 bytes")
    return format_hub_id(raw)


async def network_page(request: web.Request) -> web.Response:
    store, home, now = _store(request), request.app[HOME_KEY], _now(request)
    peers = await store.read(store.list_peers)
    refused = await store.read(store.refused_summary)
    association = await store.read(store.association_id) or home.association
    return await render(
        request,
        "network.html",
        title="Network status",
        section="/network",
        now=now,
        member=await store.read(store.is_member, home.key.public),
        association=association.hex() if association else "",
        peers=[view.peer_view(p, _hub_from_hex) for p in peers],
        counts=view.counts_view(await store.read(store.counts)),
        refused=sorted(refused, key=lambda r: (-int(r.get("count") or 0), str(r.get("source")))),
        configured=home.config.peers,
        names=await _names(store, now),
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
