"""The pages in Welsh and English (hub/webrender.py, hub/i18n.py), against the sample hub of tests/web/site.py.

Choosing the language (``Accept-Language``, ``?lang=``, the cookie), the switch on every page, ``lang`` on
content in another language than the page (WCAG 3.1.2), Babel's formats, labels for codes, and that no
English template text is left on a Welsh page.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from babel.messages.pofile import read_po

from hub import i18n
from tests.web.a11y import problems
from tests.web.aid_site import build_aid
from tests.web.site import Site, build
from tests.web.test_pages import text_of

CY = {"Accept-Language": "cy-GB,cy;q=0.9,en;q=0.5"}


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    s = build_aid(tmp_path, xss=False)
    try:
        yield s
    finally:
        s.store.close()


@pytest.fixture
async def client(site: Site) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(site.app(), host="127.0.0.1")) as c:
        yield c


def paths(site: Site) -> list[str]:
    s, f = site.sample, site.a.founders
    return [
        "/",
        "/?q=care&kind=hub",
        f"/hubs/{f[0].hub_id}",
        f"/hubs/{s.applicant.hub_id}",
        f"/guides/{s['guide_access'].id_hex}",
        f"/guides/{s['guide_cy'].id_hex}",
        f"/guides/{s['guide_v1'].id_hex}",
        f"/offers/{s['offer'].id_hex}",
        f"/offers/{s['offer_closed'].id_hex}",
        "/marks",
        f"/marks?hub={f[2].hub_id}&scheme=care-quality",
        f"/marks?hub={f[1].hub_id}",
        "/marks?hub=hub_nonsense",
        "/network",
        "/no/such/page",
        "/credit",
        f"/credit/{f[0].hub_id}",
        "/funds",
        f"/funds/{site.extra['fund'].id_hex}",  # type: ignore[attr-defined]
        "/funds/nonsense",
    ]


async def fetch(client: TestClient, path: str, headers: dict[str, str] | None = None) -> tuple[str, object]:
    response = await client.get(path, headers=headers or {})
    text = await response.text()
    assert response.status in (200, 400, 404), (path, response.status)
    assert not problems(text), (path, problems(text))
    return text, response


async def test_english_by_default_and_welsh_by_accept_language(client: TestClient) -> None:
    english, response = await fetch(client, "/")
    assert '<html lang="en">' in english and response.headers["Content-Language"] == "en"
    assert "Find co-ops, guides and offers" in english
    welsh, response = await fetch(client, "/", CY)
    assert '<html lang="cy">' in welsh and response.headers["Content-Language"] == "cy"
    assert "Dod o hyd i gwmnïau cydweithredol, canllawiau a chynigion" in welsh
    assert "Accept-Language" in response.headers["Vary"] and "Cookie" in response.headers["Vary"]


async def test_the_switch_keeps_the_page_and_a_cookie_remembers(client: TestClient) -> None:
    page, _ = await fetch(client, "/?q=gloves&kind=offer")
    # A link to the same page in Welsh, its text marked as Welsh.
    assert '<a href="/?q=gloves&amp;kind=offer&amp;lang=cy" lang="cy" hreflang="cy">Cymraeg</a>' in page
    response = await client.get("/?q=gloves&kind=offer&lang=cy")
    assert response.cookies["lang"].value == "cy"
    assert response.cookies["lang"]["samesite"] == "Lax"
    welsh = await response.text()
    assert '<html lang="cy">' in welsh and "1 canlyniad ar gyfer “gloves”" in text_of(welsh)
    assert '<a href="/?q=gloves&amp;kind=offer&amp;lang=en" lang="en" hreflang="en">English</a>' in welsh
    # The cookie keeps Welsh on the next page without the parameter (the client sends it back)...
    again, response = await fetch(client, "/network")
    assert '<html lang="cy">' in again and "Statws y rhwydwaith" in again
    # ...until the switch asks for English; an unknown lang is ignored.
    english = await (await client.get("/network?lang=en")).text()
    assert '<html lang="en">' in english
    odd, _ = await fetch(client, "/network?lang=xx", CY)
    assert '<html lang="en">' in odd  # the English cookie from the line above wins over the header


@pytest.mark.parametrize("lang", ["en", "cy"])
async def test_every_page_has_the_switch_and_its_lang(client: TestClient, site: Site, lang: str) -> None:
    other = "cy" if lang == "en" else "en"
    for path in paths(site):
        page, response = await fetch(client, path + ("&" if "?" in path else "?") + f"lang={lang}")
        assert f'<html lang="{lang}">' in page, path
        assert re.search(rf'<a href="[^"]*lang={other}" lang="{other}" hreflang="{other}">', page), path


async def test_no_english_template_text_is_left_on_welsh_pages(client: TestClient, site: Site) -> None:
    with open(i18n.LOCALE_DIR / "cy" / "LC_MESSAGES" / "coophub.po", "rb") as f:
        catalog = read_po(f, locale="cy")
    fragments = set()
    for m in catalog:
        if not m.id:
            continue
        for msgid, string in zip(
            m.id if isinstance(m.id, tuple) else (m.id,), m.string if isinstance(m.string, tuple) else (m.string,),
            strict=False,
        ):
            if msgid != string:
                fragments |= {p.strip() for p in re.split(r"%\(\w+\)s", msgid) if len(p.strip()) >= 14}
    assert len(fragments) > 100
    for path in paths(site):
        text = text_of((await fetch(client, path, CY))[0])
        left = sorted(f for f in fragments if f in text)
        assert not left, (path, left)


async def test_welsh_content_is_marked_on_english_pages(client: TestClient, site: Site) -> None:
    guide = site.sample["guide_cy"]
    page, _ = await fetch(client, f"/guides/{guide.id_hex}")
    assert '<h1 lang="cy">Gweithio ar eich pen eich hun yn ddiogel</h1>' in page
    assert '<p class="lead" lang="cy">Sut mae ein gofalwyr yn cadw&#39;n ddiogel ar ymweliadau unigol.</p>' in page
    assert '<div lang="cy">' in page and "<strong>gyfaill</strong>" in page
    assert "<dd>Welsh</dd>" in page  # the language named in the page's language
    listing, _ = await fetch(client, "/?kind=guide")
    assert f'<a href="/guides/{guide.id_hex}" lang="cy">' in listing
    assert '<p class="snippet" lang="cy">' in listing
    hub, _ = await fetch(client, f"/hubs/{site.a.founders[0].hub_id}")
    assert f'<a href="/guides/{guide.id_hex}" lang="cy">' in hub
    # ...and an English guide on a Welsh page is marked English.
    english, _ = await fetch(client, f"/guides/{site.sample['guide_access'].id_hex}", CY)
    assert '<h1 lang="en">Accessible members&#39; meetings</h1>' in english
    assert "<dd>Saesneg</dd>" in english


async def test_money_dates_and_numbers_by_babel(client: TestClient, site: Site) -> None:
    offer = site.sample["offer"]
    english = text_of((await fetch(client, f"/offers/{offer.id_hex}"))[0])
    assert "Price tier reached: £8.00 per box (from 100)" in english
    assert "31 January 2026, 00:00 GMT" in english  # Europe/London
    welsh = text_of((await fetch(client, f"/offers/{offer.id_hex}", CY))[0])
    assert "135 × box wedi'u haddo gan 3 chwmni cydweithredol" in welsh  # "tri chwmni": aspirate mutation
    assert "Haen pris a gyrhaeddwyd: £8.00 fesul box (o 100)" in welsh
    assert "31 Ionawr 2026, 00:00 GMT" in welsh and "Punt Prydain (GBP)" in welsh
    network = text_of((await fetch(client, "/network", CY))[0])
    assert "1 awr yn ôl" in network and "12 cofnod ar ei hôl hi" in network


async def test_times_follow_the_configured_time_zone(tmp_path: Path) -> None:
    s = build(tmp_path)
    s.home.config.timezone = "America/New_York"
    try:
        async with TestClient(TestServer(s.app(), host="127.0.0.1")) as c:
            page = text_of((await fetch(c, f"/offers/{s.sample['offer'].id_hex}"))[0])
            assert "30 January 2026, 19:00 EST" in page
    finally:
        s.store.close()


async def test_codes_appear_as_labels(client: TestClient, site: Site) -> None:
    hub = text_of((await fetch(client, f"/hubs/{site.a.founders[0].hub_id}"))[0])
    search = text_of((await fetch(client, "/?q=respite"))[0])
    assert "Respite care (Care)" in search and "(care)" not in search  # the search snippet too
    assert "Home care (Care)" in hub and "Service users" in hub and "service-users" not in hub
    welsh = text_of((await fetch(client, f"/hubs/{site.a.founders[0].hub_id}", CY))[0])
    assert "Home care (Gofal)" in welsh and "Defnyddwyr gwasanaeth" in welsh and "Gweithwyr" in welsh
    offers = text_of((await fetch(client, "/?kind=offer"))[0])
    assert "Category: Health" in offers and "Services: health" not in offers


async def test_snippets_and_summaries_show_text_not_markdown(client: TestClient, site: Site) -> None:
    page, _ = await fetch(client, "/?q=week")
    snippet = re.search(r'<p class="snippet"[^>]*>([^<]*)</p>', page)
    assert snippet is not None
    assert "a week ahead" in snippet.group(1) and "**" not in snippet.group(1) and "#" not in snippet.group(1)
    guide, _ = await fetch(client, f"/guides/{site.sample['guide_cy'].id_hex}")
    assert "**ddiogel**" not in guide


async def test_assessors_by_name_with_the_id_as_a_detail(client: TestClient, site: Site) -> None:
    page = text_of((await fetch(client, f"/hubs/{site.a.founders[0].hub_id}"))[0])
    assessor = site.a.assessor.hub_id
    assert f"Assessor: Ansawdd Cymru Assessors ( {assessor} )" in page
    assert "assessed by Ansawdd Cymru Assessors" in page
    assert page.count(assessor) == 1  # once, as the copyable detail; never in the sentence


async def test_the_service_filter_takes_a_category_label_in_either_language(client: TestClient) -> None:
    code = text_of((await fetch(client, "/?kind=hub&service=housing"))[0])
    for label in ("Tai", "tai", "Housing"):
        assert text_of((await fetch(client, f"/?kind=hub&service={label}"))[0]).split("results")[0] == code.split(
            "results"
        )[0], label
    assert "Powys Supported Living" in text_of((await fetch(client, "/?kind=hub&service=Tai", CY))[0])


async def test_error_pages_speak_the_page_language(client: TestClient) -> None:
    page, response = await fetch(client, "/no/such/page", CY)
    assert response.status == 404 and '<html lang="cy">' in page
    assert "Heb ddod o hyd i'r dudalen" in text_of(page) and "Chwilio'r cyfeiriadur" in text_of(page)
    bad, response = await fetch(client, "/?page=0", CY)
    assert response.status == 400 and "Rhaid i'r dudalen fod yn rhif o 1 i 500." in text_of(bad)


async def test_the_api_stays_language_neutral(client: TestClient) -> None:
    english = await (await client.get("/api/v1/directory?q=gloves")).json()
    response = await client.get("/api/v1/directory?q=gloves", headers=CY)
    assert await response.json() == english
    assert "Content-Language" not in response.headers and "Set-Cookie" not in response.headers
