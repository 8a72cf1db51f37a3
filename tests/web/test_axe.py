"""axe-core on every page, in Welsh and English, at desktop and phone widths: no violations.

Debian's Chromium (Playwright, no download) loads each page of the sample hub (tests/web/site.py) and runs the
vendored axe-core (tests/web/vendor/, MPL-2.0) with the WCAG 2.0–2.2 A and AA rules and axe's best practices
(which include ``landmark-unique`` and ``region``). The language comes from the browser's own
``Accept-Language`` (the context's locale), so negotiation is tested from a real browser too.

axe finds about a third of WCAG problems by machine (Deque's own estimate is 57% of issues by volume); the
markup checks of tests/web/a11y.py, the contrast test and a person with a screen reader cover more.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.web.aid_site import build_aid
from tests.web.site import CHROMIUM, CHROMIUM_ARGS, Site, serving

AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
AXE_VERSION = "4.14.1"
AXE_SHA256 = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
WIDTHS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
LOCALES = {"en": "en-GB", "cy": "cy-GB"}
TIMEOUT_MS = 15_000


def page_paths(site: Site) -> dict[str, str]:
    """Every page the hub serves, in each state worth checking (results, errors, an empty form...)."""
    s, f = site.sample, site.a.founders
    return {
        "directory": "/",
        "search": "/?q=care&kind=hub&mark=care-quality",
        "search-none": "/?q=zzzz",
        "search-400": "/?page=0",
        "hub": f"/hubs/{f[0].hub_id}",
        "hub-applicant": f"/hubs/{s.applicant.hub_id}",
        "guide": f"/guides/{s['guide_access'].id_hex}",
        "guide-welsh": f"/guides/{s['guide_cy'].id_hex}",
        "guide-old-version": f"/guides/{s['guide_v1'].id_hex}",
        "offer": f"/offers/{s['offer'].id_hex}",
        "offer-closed": f"/offers/{s['offer_closed'].id_hex}",
        "marks": "/marks",
        "marks-check": f"/marks?hub={f[2].hub_id}&scheme=care-quality",
        "marks-all": f"/marks?hub={f[1].hub_id}",
        "marks-error": "/marks?hub=hub_nonsense&scheme=no-such",
        "network": "/network",
        "not-found": "/no/such/page",
        "credit": "/credit",
        "credit-account": f"/credit/{f[0].hub_id}",
        "funds": "/funds",
        "fund": f"/funds/{site.extra['fund'].id_hex}",  # type: ignore[attr-defined]
    }


def test_the_vendored_axe_is_the_one_we_name() -> None:
    data = AXE.read_bytes()
    assert hashlib.sha256(data).hexdigest() == AXE_SHA256
    assert data.startswith(f"/*! axe v{AXE_VERSION}".encode())
    assert "Mozilla Public" in (AXE.parent / "LICENSE.axe-core.txt").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    s = build_aid(tmp_path_factory.mktemp("hub"), xss=False)  # the directory's sample plus mutual aid
    try:
        yield s
    finally:
        s.store.close()


@pytest.fixture(scope="module")
def base_url(site: Site) -> Iterator[str]:
    with serving(site.app) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install it with `apt-get install chromium` (or run `make test`).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def axe_source() -> str:
    return AXE.read_text(encoding="utf-8")


def run_axe(page: object, source: str) -> list[dict[str, object]]:
    # Evaluated through the DevTools protocol, so the pages' CSP (script-src 'self') stays on while axe runs.
    page.evaluate(source)  # type: ignore[attr-defined]
    result = page.evaluate(  # type: ignore[attr-defined]
        "async (tags) => { const r = await axe.run(document, {runOnly: {type: 'tag', values: tags},"
        " resultTypes: ['violations']}); return r.violations.map(v => ({id: v.id, impact: v.impact,"
        " help: v.help, nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))})); }",
        TAGS,
    )
    return list(result)


@pytest.mark.parametrize("width", list(WIDTHS))
@pytest.mark.parametrize("lang", list(LOCALES))
def test_no_axe_violations(browser, base_url: str, site: Site, axe_source: str, lang: str, width: str) -> None:
    context = browser.new_context(viewport=WIDTHS[width], locale=LOCALES[lang])  # type: ignore[attr-defined]
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        found: dict[str, list[dict[str, object]]] = {}
        checked = 0
        for name, path in page_paths(site).items():
            page.goto(base_url + path)
            assert page.evaluate("document.documentElement.lang") == lang, name
            violations = run_axe(page, axe_source)
            checked += 1
            if violations:
                found[name] = violations
        assert checked == len(page_paths(site))
        assert not found, json.dumps(found, indent=1, ensure_ascii=False)
    finally:
        context.close()


def test_axe_finds_what_it_should(browser, base_url: str, axe_source: str) -> None:
    """The harness is live: a page with a known fault (an unlabelled field, duplicate landmarks) fails."""
    context = browser.new_context()  # type: ignore[attr-defined]
    try:
        page = context.new_page()
        page.goto(base_url + "/")
        page.evaluate(
            "() => { const i = document.createElement('input'); document.querySelector('main').append(i);"
            " for (const n of [1, 2]) { const s = document.createElement('section');"
            " s.setAttribute('aria-label', 'Same'); s.textContent = 'x'; document.querySelector('main').append(s); } }"
        )
        ids = {v["id"] for v in run_axe(page, axe_source)}
        assert {"label", "landmark-unique"} <= ids, ids
    finally:
        context.close()
