"""End-to-end: Debian's Chromium, headless, driven by Playwright against a real hub on 127.0.0.1.

The hub holds the sample association of tests/web/site.py (plus records with script in their fields) and is
served by the real app (hub.app.make_app → hub.web.setup) from a background thread. Playwright never downloads
a browser: it launches /usr/bin/chromium. If that is missing the tests fail (not skip) and say how to install
it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.web.a11y import problems
from tests.web.site import CHROMIUM, CHROMIUM_ARGS, Site, build, serving

TIMEOUT_MS = 10_000


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    s = build(tmp_path_factory.mktemp("hub"), xss=True)
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
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's Chromium. Install it with "
            "`apt-get install chromium chromium-driver` (or run `make test`, which does)."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    p = context.new_page()
    p.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    p.on("pageerror", lambda exc: errors.append(str(exc)))
    p.on("dialog", lambda dialog: (errors.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    try:
        yield p
        assert not errors, errors
    finally:
        context.close()


def test_search_with_filters_then_follow_a_result_to_a_hub_and_a_guide(page, base_url: str) -> None:
    page.goto(base_url + "/")
    # Keyboard first: the skip link is the first stop and moves focus to the main content.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"

    page.get_by_label("Search words").fill("care")
    page.get_by_label("Show").select_option("hub")
    page.get_by_label("Holds a valid quality mark").select_option(label="Care Quality Mark")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"kind=hub"))
    assert (
        page.get_by_role("heading", level=2, name=re.compile("results|result")).inner_text()
        == "1 result for “care”"
    )
    results = page.locator("ol.results > li h3")
    assert results.all_inner_texts() == ["Gofal Gwynedd"]
    # The form remembers the filters it searched with.
    assert page.get_by_label("Show").input_value() == "hub"

    results.get_by_role("link").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Gofal Gwynedd"
    assert page.get_by_text("Member of the association (founder)").is_visible()
    marks = page.locator("section", has=page.get_by_role("heading", name="Quality marks"))
    assert marks.locator(".status").inner_text() == "✓ Valid"  # the symbol repeats the word

    page.get_by_role("link", name="Safe lone working, revised").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Safe lone working, revised"
    assert page.get_by_text("CC-BY-SA-4.0").is_visible()
    assert page.locator("ol.versions li").count() == 2
    assert not problems(page.content())


def test_an_offer_shows_the_right_tally(page, base_url: str) -> None:
    page.goto(base_url + "/")
    page.get_by_label("Show").select_option("offer")
    page.get_by_label("Only offers open for pledges").check()
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"open=1"))
    titles = page.locator("ol.results > li h3").all_inner_texts()
    assert "Nitrile gloves" in titles and "Hoist servicing contract" not in titles  # closed: filtered out
    page.get_by_role("link", name="Nitrile gloves").click()
    assert page.locator(".big-number").inner_text() == "135 × box pledged by 3 co-ops"
    assert "£8.00 per box" in page.locator(".tally").inner_text()
    rows = page.locator("section", has=page.get_by_role("heading", name="Pledging co-ops")).locator(
        "tbody tr"
    )
    assert rows.all_inner_texts() == [
        "Gofal Gwynedd\t60",
        "Powys Supported Living\t50",
        "Cardiff Community Carers\t25",
    ]


def test_a_guide_body_with_script_renders_inert(page, base_url: str, site: Site) -> None:
    page.goto(f"{base_url}/guides/{site.sample['xss_guide'].id_hex}")
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert "<script>" in page.get_by_role("heading", level=1).inner_text()  # shown as text
    body = page.locator(".guide-body")
    assert body.locator("script, img, iframe").count() == 0
    assert "<script>window.__pwned = 1</script>" in body.inner_text()
    assert body.locator("a").count() == 0  # the javascript: link stayed text
    # Clicking where the link would have been does nothing either.
    body.get_by_text("click me").click()
    assert page.evaluate("typeof window.__pwned") == "undefined"


def test_mark_check_form_by_keyboard(page, base_url: str, site: Site) -> None:
    page.goto(base_url + "/marks")
    page.get_by_label("Hub id").fill(site.a.founders[1].hub_id)
    page.get_by_label("Scheme").select_option("care-quality")
    page.get_by_label("Hub id").press("Enter")
    assert page.locator(".big-status").inner_text().strip() == "! Expired"
    page.get_by_label("Hub id").fill("hub_typo")
    page.get_by_label("Hub id").press("Enter")
    assert page.get_by_role("alert").is_visible()
    assert page.get_by_label("Hub id").get_attribute("aria-invalid") == "true"


@pytest.mark.parametrize("lang", ["en", "cy"])
def test_pages_fit_a_phone_screen(browser, base_url: str, site: Site, lang: str) -> None:
    """Welsh runs longer than English; neither may make a page scroll sideways (the pictures scale down)."""
    context = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        p = context.new_page()
        s = site.sample
        for path in (
            "/",
            f"/hubs/{site.a.founders[0].hub_id}",
            f"/guides/{s['guide_access'].id_hex}",
            f"/offers/{s['offer'].id_hex}",
            f"/marks?hub={site.a.founders[2].hub_id}&scheme=care-quality",
            "/network",
        ):
            p.goto(base_url + path + ("&" if "?" in path else "?") + f"lang={lang}")
            width = p.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"{path} scrolls sideways on a phone ({width} px wide)"
    finally:
        context.close()


def test_the_language_switch_by_keyboard_keeps_the_page(page, base_url: str, site: Site) -> None:
    path = f"/offers/{site.sample['offer'].id_hex}"
    page.goto(base_url + path)
    page.get_by_role("link", name="Cymraeg").click()
    page.wait_for_url(re.compile(r"lang=cy"))
    assert page.evaluate("document.documentElement.lang") == "cy"
    assert page.get_by_role("heading", level=2, name="Wedi'u haddo hyd yma").is_visible()
    # The cookie keeps Welsh on the next page; the switch back keeps that page too.
    page.get_by_role("link", name="Statws y rhwydwaith").click()
    assert page.evaluate("document.documentElement.lang") == "cy"
    page.get_by_role("link", name="English").click()
    page.wait_for_url(re.compile(r"/network\?lang=en"))
    assert page.get_by_role("heading", level=1).inner_text() == "Network status"


def test_pictures_have_text_equivalents(page, base_url: str, site: Site) -> None:
    page.goto(f"{base_url}/offers/{site.sample['offer'].id_hex}")
    chart = page.get_by_role("img", name="Pledges against the minimum and the price tiers")
    assert chart.is_visible()
    assert "135 pledged; the minimum to go ahead is 100." in chart.locator("desc").text_content()
    page.goto(f"{base_url}/hubs/{site.a.founders[0].hub_id}")
    area_map = page.get_by_role("img", name="Map of Wales showing where Gofal Gwynedd works")
    assert area_map.locator("path.map-covered").count() == 2  # Gwynedd and Anglesey
    assert "2 of Wales' 22 principal areas: Gwynedd and Isle of Anglesey." in area_map.locator("desc").text_content()
    page.goto(f"{base_url}/network")
    graph = page.get_by_role("img", name="This hub and its peers")
    assert graph.locator("line.edge-solid, line.edge-dashed, line.edge-dotted").count() == 3
