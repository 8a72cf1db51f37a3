"""Rendering the staff pages: the Jinja2 environment, the page's language, security headers and error pages.

hub.web's handlers call :func:`render`; :func:`page_middleware` wraps every page (not ``/api/`` or ``/fed/``):

- it chooses the language (``?lang=cy`` — then remembered in a cookie —, else the cookie, else
  ``Accept-Language``, else English) and activates it with the hub's time zone for the request
  (hub.i18n), and says so in ``Content-Language`` with ``Vary: Accept-Language, Cookie``;
- it turns every error into an HTML page in that language: an unknown id is a friendly 404 page, a bad query
  parameter a 400 page, a bug a 500 page without a traceback showing the error id of the one log line about it
  (statuses and error ids are hub.boundary's, the one error boundary; this only renders them).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web
from markupsafe import Markup

from hub import i18n
from hub import webview as view
from hub.app import HOME_KEY, STORE_KEY
from hub.boundary import RequestError, classify, report_unexpected
from hub.i18n import N_
from hub.i18n import gettext as _
from hub.markdown import render_markdown

__all__ = [
    "CSP",
    "JINJA_KEY",
    "LANG_COOKIE",
    "LANG_PARAM",
    "NOT_PAGES",
    "SECURITY_HEADERS",
    "PageError",
    "make_environment",
    "page_middleware",
    "render",
    "request_locale",
]

log = logging.getLogger("coophub.web")

HERE = Path(__file__).resolve().parent
JINJA_KEY: web.AppKey[jinja2.Environment] = web.AppKey("jinja", jinja2.Environment)
#: Paths whose errors are answered by their own middleware (JSON API, msgpack peer protocol).
NOT_PAGES = ("/api/", "/fed/")
#: The query parameter and cookie that choose the pages' language (hub.i18n.LOCALES); a year, as GOV.UK keeps
#: its cookie preferences.
LANG_PARAM = "lang"
LANG_COOKIE = "lang"
LANG_COOKIE_MAX_AGE = 365 * 24 * 3600

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


class PageError(RequestError):
    """A page that cannot be shown; becomes an HTML error page with ``status``."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(status, "not-found" if status == 404 else "invalid", detail)
        self.title = title


# -- rendering -----------------------------------------------------------------------------------------------


def make_environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.ChainableUndefined,
        extensions=["jinja2.ext.i18n"],
    )
    # Every user-visible string in a template goes through _() / ngettext() / pgettext() (newstyle gettext:
    # placeholders are filled and escaped by Jinja). The callables read the request's locale from hub.i18n's
    # context variable, so one environment serves every language.
    env.install_gettext_callables(  # type: ignore[attr-defined]
        i18n.gettext, i18n.ngettext, newstyle=True, pgettext=i18n.pgettext, npgettext=i18n.npgettext
    )
    env.filters.update(view.FILTERS)
    # render_markdown escapes raw HTML and drops unsafe links, so its output may be marked safe.
    env.filters["markdown"] = lambda text, level=2: Markup(render_markdown(str(text or ""), base_level=level))
    return env


def _switch_links(request: web.Request, locale: str) -> list[dict[str, str]]:
    """A link to this same page in each other language (query kept, ``lang`` replaced)."""
    links = []
    for other in i18n.LOCALES:
        if other != locale:
            url = request.rel_url.update_query({LANG_PARAM: other})
            links.append({"lang": other, "name": i18n.LANGUAGE_NAMES[other], "href": str(url)})
    return links


async def _site(request: web.Request) -> dict[str, Any]:
    home, store = request.app[HOME_KEY], request.app[STORE_KEY]
    charter = await store.read(store.charter)
    locale = i18n.current().locale
    return {
        "hub_name": home.config.name,
        "hub_id": home.hub_id,
        "association_name": charter.body["name"] if charter is not None else "",
        "lang": locale,
        "switch": _switch_links(request, locale),
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
            text=f"<!doctype html><html lang='{i18n.current().locale}'><title>{status}</title><h1>{status}</h1>",
            status=status,
            content_type="text/html",
        )


_HTTP_PAGES = {
    404: (
        N_("Page not found"),
        N_("There is no page at this address. Check it for a typo, or start from the directory."),
    ),
    405: (
        N_("Not allowed"),
        N_("These pages only show information. Members publish with the coophub command or the hub's API."),
    ),
}


def request_locale(request: web.Request) -> tuple[str, bool]:
    """The page language: ``?lang=`` (then remembered in a cookie), else the cookie, else ``Accept-Language``,
    else English. Returns the locale and whether the query chose it (so the response sets the cookie)."""
    asked = request.query.get(LANG_PARAM, "").strip().lower()
    if asked in i18n.LOCALES:
        return asked, True
    cookie = request.cookies.get(LANG_COOKIE, "")
    if cookie in i18n.LOCALES:
        return cookie, False
    return i18n.negotiate(request.headers.get("Accept-Language")) or i18n.DEFAULT_LOCALE, False


def _language_headers(response: web.StreamResponse, locale: str, chosen: bool) -> None:
    response.headers["Content-Language"] = locale
    # The same URL answers in either language, so caches must key on what chooses it.
    response.headers["Vary"] = "Accept-Language, Cookie"
    if chosen:
        response.set_cookie(
            LANG_COOKIE, locale, max_age=LANG_COOKIE_MAX_AGE, path="/", samesite="Lax", httponly=True
        )


@web.middleware
async def page_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Choose the page's language, and turn every error on a web page into an HTML page in that language; the
    API and peer routes keep their own handling (and speak JSON, which is language-neutral)."""
    if request.path.startswith(NOT_PAGES):
        return await handler(request)
    locale, chosen = request_locale(request)
    token = i18n.activate(locale, request.app[HOME_KEY].config.timezone)
    try:
        response = await _page_or_error(request, handler)
        _language_headers(response, locale, chosen)
        return response
    finally:
        i18n.reset(token)


async def _page_or_error(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except PageError as exc:
        return await _error_page(request, exc.status, exc.title, exc.detail)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if exc.status in _HTTP_PAGES:
            title, detail = (_(text) for text in _HTTP_PAGES[exc.status])
        else:
            title, detail = _("Something went wrong"), exc.reason or _("Bad request.")
        return await _error_page(request, exc.status, title, detail)
    except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
        raise  # the client went away; the error boundary (hub.boundary) lets it go quietly
    except Exception as exc:
        failure = classify(exc, request)  # the one mapping of exceptions to statuses (hub.boundary)
        if failure is not None:
            return await _error_page(request, failure.status, _("Something went wrong"), failure.detail)
        # A bug: one log line with an id, and the id on the page for the volunteer to look up.
        error_id = report_unexpected(request, exc)
        return await _error_page(
            request,
            500,
            _("Something went wrong on this hub"),
            _(
                "The page could not be shown. The hub's log has the details for its "
                "volunteer; please try again later."
            ) + f" [{error_id}]",
        )
