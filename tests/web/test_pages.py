"""The staff web pages (hub/web.py) against a real Store holding the sample association (tests/web/site.py).

Each page is fetched from the real aiohttp app over 127.0.0.1 and checked for its content, its error pages,
escaping of every user-controlled field, security headers and the markup accessibility rules of
tests/web/a11y.py.
"""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.store import DirectoryQuery
from tests.hub.factory import hub_key
from tests.web.a11y import problems
from tests.web.site import XSS, Site, build


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    s = build(tmp_path, xss=True)
    try:
        yield s
    finally:
        s.store.close()


@pytest.fixture
async def client(site: Site) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(site.app(), host="127.0.0.1")) as c:
        yield c


async def get(client: TestClient, path: str, status: int = 200) -> str:
    response = await client.get(path)
    text = await response.text()
    assert response.status == status, (path, response.status, text[:500])
    assert response.content_type == "text/html"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert not problems(text), (path, problems(text))
    assert "Traceback" not in text
    return text


def text_of(page: str) -> str:
    """The visible text of the page's <main>, tags removed and whitespace collapsed."""
    main = page[page.index("<main") : page.index("</main>")] if "<main" in page else page
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", main)).split())


def hub_ids(site: Site) -> list[str]:
    return [k.hub_id for k in site.a.founders]


# -- directory ---------------------------------------------------------------------------------------------


async def test_the_directory_lists_everything_newest_first(client: TestClient) -> None:
    page = text_of(await get(client, "/"))
    assert "Find co-ops, guides and offers" in page
    assert re.search(r"\d+ results", page)
    for name in ("Gofal Gwynedd", "Powys Supported Living", "Nitrile gloves", "Accessible members' meetings"):
        assert name in page


async def test_search_ranks_and_counts(client: TestClient, site: Site) -> None:
    page = text_of(await get(client, "/?q=gloves"))
    assert "1 result for “gloves”" in page and "Nitrile gloves" in page
    assert "Showing 1–1 of 1, best matches first" in page
    ranked = await get(client, "/?q=care+home")
    titles = re.findall(r'<h3><a href="[^"]+">([^<]+)</a></h3>', ranked)
    ranked_by_store, total = site.store.search(DirectoryQuery(q="care home"), site.now)
    assert [html.unescape(t) for t in titles] == [
        r["title"] for r in ranked_by_store
    ]  # the store's bm25 order
    assert f"{total} results for “care home”" in text_of(ranked)


async def test_filters_kind_and_open_offers(client: TestClient) -> None:
    page = text_of(await get(client, "/?kind=offer&open=1"))
    assert "Nitrile gloves" in page
    assert "Hoist servicing contract" not in page  # closed (awarded)
    everything = text_of(await get(client, "/?kind=offer"))
    assert "Hoist servicing contract" in everything and "Awarded" in everything


async def test_filters_region_service_and_valid_mark(client: TestClient) -> None:
    assert "Powys Supported Living" in text_of(await get(client, "/?kind=hub&service=housing"))
    assert "Gofal Gwynedd" not in text_of(await get(client, "/?kind=hub&service=housing"))
    marked = text_of(await get(client, "/?kind=hub&mark=care-quality"))
    assert "1 result" in marked and "Gofal Gwynedd" in marked
    assert "Powys" not in marked  # its mark was revoked
    cardiff = text_of(await get(client, "/?region=Cardiff&kind=hub"))
    assert "Cardiff Community Carers" in cardiff and "Gofal Gwynedd" not in cardiff


async def test_results_link_to_hub_guide_and_offer_pages(client: TestClient, site: Site) -> None:
    page = await get(client, "/")
    assert f'href="/hubs/{hub_ids(site)[0]}"' in page
    assert f'href="/guides/{site.sample["guide_access"].id_hex}"' in page
    assert f'href="/offers/{site.sample["offer"].id_hex}"' in page


async def test_paging_keeps_the_filters(client: TestClient) -> None:
    page = await get(client, "/?kind=guide&page=1")
    assert "Next page" not in page
    empty = text_of(await get(client, "/?kind=guide&page=3"))
    assert "Previous page" in empty


@pytest.mark.parametrize(
    "query",
    ["kind=people", "page=0", "page=x", "page=99999", "open=maybe", "mark=no-such-scheme", "q=" + "a" * 501],
)
async def test_bad_search_parameters_are_a_400_page(client: TestClient, query: str) -> None:
    page = text_of(await get(client, "/?" + query, 400))
    assert "Search not understood" in page


# -- hub pages ---------------------------------------------------------------------------------------------


async def test_hub_page_shows_profile_membership_marks_guides_offers(client: TestClient, site: Site) -> None:
    page = text_of(await get(client, f"/hubs/{hub_ids(site)[0]}"))
    for expected in (
        "Gofal Gwynedd",
        "Member of the association (founder)",
        "Home care",
        "Respite care",
        "Gwynedd",
        "Anglesey",
        "helo@gofal.example",
        "Care Quality Mark: gold",
        "Valid",
        "Safe lone working, revised",
        "Hoist servicing contract",
        hub_ids(site)[0],
    ):
        assert expected in page, expected
    assert "Safe lone working (" not in page  # the superseded version is not listed


async def test_an_applicants_page_shows_who_endorsed_it(client: TestClient, site: Site) -> None:
    page = text_of(await get(client, f"/hubs/{site.sample.applicant.hub_id}"))
    assert "Applicant: not yet a member" in page
    assert "Endorsed by 1 member: Gofal Gwynedd" in page
    assert "Unauthorised issuer" in page  # a member that is not the scheme's assessor


async def test_marks_status_is_shown_in_words(client: TestClient, site: Site) -> None:
    assert "Expired" in text_of(await get(client, f"/hubs/{hub_ids(site)[1]}"))
    assert "Revoked" in text_of(await get(client, f"/hubs/{hub_ids(site)[2]}"))


@pytest.mark.parametrize(
    "path",
    [
        "/hubs/not-a-hub",
        "/hubs/hub_aaaa",
        "/guides/xyz",
        "/guides/" + "0" * 64,
        "/offers/" + "f" * 64,
        "/offers/abc",
        "/no/such/page",
        "/guides/" + "0" * 64 + "/files/0",
    ],
)
async def test_unknown_ids_are_a_friendly_404(client: TestClient, path: str) -> None:
    page = text_of(await get(client, path, 404))
    assert "Search the directory" in page


async def test_a_well_formed_but_unknown_hub_is_404(client: TestClient) -> None:
    page = text_of(await get(client, f"/hubs/{hub_key('nobody').hub_id}", 404))
    assert "Hub not found" in page


# -- guides ------------------------------------------------------------------------------------------------


async def test_guide_page_renders_markdown_licence_and_attachments(client: TestClient, site: Site) -> None:
    guide = site.sample["guide_access"]
    raw = await get(client, f"/guides/{guide.id_hex}")
    assert "<h3>Before the meeting</h3>" in raw and "<h4>During the meeting</h4>" in raw
    assert "<strong>a week ahead</strong>" in raw
    assert (
        'href="https://www.scope.org.uk/social-model-of-disability" rel="nofollow noopener noreferrer"' in raw
    )
    page = text_of(raw)
    assert "CC-BY-4.0" in page and "Download meeting-checklist.pdf" in page
    assert "This is the only version." in page


async def test_attachments_download_with_their_name(client: TestClient, site: Site) -> None:
    guide = site.sample["guide_access"]
    response = await client.get(f"/guides/{guide.id_hex}/files/0")
    assert response.status == 200
    assert await response.read() == b"%PDF-1.4\n% a tiny sample checklist\n"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="meeting-checklist.pdf"')
    assert response.headers["Content-Security-Policy"].startswith("sandbox")
    assert (await client.get(f"/guides/{guide.id_hex}/files/1")).status == 404


async def test_guide_versions_follow_the_supersede_chain(client: TestClient, site: Site) -> None:
    v1, v2 = site.sample["guide_v1"], site.sample["guide_v2"]
    newer = await get(client, f"/guides/{v2.id_hex}")
    assert f'href="/guides/{v1.id_hex}"' in newer and "Current" in text_of(newer)
    older = text_of(await get(client, f"/guides/{v1.id_hex}"))
    assert "Replaced by a newer version" in older and "read the current version" in older


# -- offers ------------------------------------------------------------------------------------------------


async def test_offer_page_shows_tally_tier_and_pledgers(client: TestClient, site: Site) -> None:
    page = text_of(await get(client, f"/offers/{site.sample['offer'].id_hex}"))
    # pledges: Gofal Gwynedd 60, Powys 50, Cardiff (the author) 25
    # Money by Babel ("£8.00", never "8.00 GBP"); a unit typed by a member is counted with ×, not pluralised.
    assert "135 × box pledged by 3 co-ops" in page
    assert "Price tier reached: £8.00 per box" in page
    assert "365 more for £7.00 per box" in page
    assert "GBP" not in page.replace("British Pound (GBP)", "")
    assert "Minimum reached" in page and "Open for pledges" in page
    assert re.search(
        r"Gofal Gwynedd 60 .*Powys Supported Living 50 .*Cardiff Community Carers 25 Total 135", page
    )


async def test_a_closed_offer_shows_its_outcome(client: TestClient, site: Site) -> None:
    page = text_of(await get(client, f"/offers/{site.sample['offer_closed'].id_hex}"))
    assert "Awarded" in page and "Closed: the purchase was awarded" in page
    assert "7 × box pledged by 2 co-ops" in page and "Price tier reached: £95.00 per box" in page


# -- mark check --------------------------------------------------------------------------------------------


async def test_the_mark_form_alone(client: TestClient) -> None:
    page = await get(client, "/marks")
    assert '<label for="hub">Hub id</label>' in page and "Care Quality Mark" in page


@pytest.mark.parametrize(
    ("who", "status", "why"),
    [
        (0, "Valid", "gold until 1 January 2027, assessed by Ansawdd Cymru Assessors"),
        (1, "Expired", "Expired on 27 November 2025"),
        (2, "Revoked", "Revoked by the assessor on 1 January 2026: Assessment evidence was withdrawn."),
    ],
)
async def test_mark_check_says_status_and_why(
    client: TestClient, site: Site, who: int, status: str, why: str
) -> None:
    page = text_of(await get(client, f"/marks?hub={hub_ids(site)[who]}&scheme=care-quality"))
    assert (
        "Care Quality Mark for "
        + ["Gofal Gwynedd", "Cardiff Community Carers", "Powys Supported Living"][who]
        in page
    )
    assert status in page and why in page


async def test_mark_check_unauthorised_and_none(client: TestClient, site: Site) -> None:
    page = text_of(await get(client, f"/marks?hub={site.sample.applicant.hub_id}&scheme=care-quality"))
    assert "Unauthorised issuer" in page
    # Named by name, not by hub id (the id is a secondary detail beside the name).
    assert "Cardiff Community Carers is not an assessor of Care Quality Mark in the association's charter" in page
    none = text_of(await get(client, f"/marks?hub={hub_key('nobody').hub_id}&scheme=care-quality"))
    assert "No mark" in none and "No attestation of Care Quality Mark for hub_" in none


@pytest.mark.parametrize(
    "query", ["hub=hub_nonsense&scheme=care-quality", "hub=&scheme=care-quality", "scheme=no-such"]
)
async def test_mark_check_bad_input_is_a_400_form_with_errors(client: TestClient, query: str) -> None:
    page = await get(client, "/marks?" + query, 400)
    assert "There is a problem" in page and 'aria-invalid="true"' in page


# -- network -----------------------------------------------------------------------------------------------


async def test_network_page_shows_peers_counts_and_refusals(client: TestClient) -> None:
    page = text_of(await get(client, "/network"))
    for expected in (
        "https://hub.cardiff.example",
        "Healthy",
        "40 seconds ago",
        "in sync",
        "Failing",
        "12 records behind",
        "https://hub.newport.example",
        "Not yet contacted",
        "records in all",
        "member hubs",
        "Records refused",
        "https://hub.elsewhere.example",
        "https://hub.cardiff.example",
        "Another association",
        "Applicants waiting for a sponsor",
        "Swansea Support Co-op",
    ):
        assert expected in page, expected
    assert "Cardiff Community Carers" in page  # a peer's hub id resolved to its name


async def test_network_page_with_no_peers_and_odd_peer_rows(client: TestClient, site: Site) -> None:
    site.store.upsert_peer("https://odd.example", {"lag": "unknown", "score": None})
    page = text_of(await get(client, "/network"))
    assert "https://odd.example" in page


# -- untrusted text ----------------------------------------------------------------------------------------


async def test_user_controlled_fields_are_escaped_everywhere(client: TestClient, site: Site) -> None:
    s = site.sample
    paths = [
        "/",
        "/?q=Carers",
        f"/hubs/{hub_key('xss-applicant').hub_id}",
        f"/guides/{s['xss_guide'].id_hex}",
        f"/offers/{s['xss_offer'].id_hex}",
        f"/offers/{s['offer'].id_hex}",
        "/?q=" + XSS,
        f"/marks?hub={hub_ids(site)[1]}&scheme=care-quality",
        "/network",
    ]
    for path in paths:
        page = await get(client, path)
        assert "<script>window" not in page and "<img src=x" not in page, path
        assert not re.search(r"href=[\"']?\s*javascript:", page, re.I), path
    guide = text_of(await get(client, f"/guides/{s['xss_guide'].id_hex}"))
    assert XSS in guide  # shown as text, in the title, summary and body
    assert "[click me](javascript:window.__pwned=3)" in guide  # an unsafe link stays plain text
    assert XSS in text_of(await get(client, f"/offers/{s['xss_offer'].id_hex}"))
    xss_hub = hub_key("xss-applicant").hub_id
    assert f"Carers {XSS}" in text_of(await get(client, f"/hubs/{xss_hub}"))
    assert "<script>window" not in await get(client, f"/hubs/{xss_hub}")


async def test_the_static_files_are_served(client: TestClient) -> None:
    css = await client.get("/static/style.css")
    assert css.status == 200 and "--focus" in await css.text()
    assert (await client.get("/static/copy.js")).status == 200


async def test_pages_do_not_accept_writes(client: TestClient) -> None:
    response = await client.post("/", data={"q": "x"})
    assert response.status == 405
    assert "These pages only show information" in text_of(await response.text())


async def test_a_new_hub_with_no_records_still_renders(tmp_path: Path) -> None:
    from hub.app import make_app
    from hub.home import Home, HubConfig
    from hub.store import Store

    store = Store(tmp_path / "hub.sqlite3", blobs_dir=tmp_path / "blobs")
    home = Home(tmp_path, hub_key("fresh"), HubConfig(name="Fresh hub"), "token")
    try:
        async with TestClient(TestServer(make_app(home, store, federation=False), host="127.0.0.1")) as c:
            assert "No results" in text_of(await get(c, "/"))
            network = text_of(await get(c, "/network"))
            assert "This hub has no peers yet" in network and "none yet" in network
            assert "Every scheme" in text_of(await get(c, "/marks"))
            await get(c, f"/marks?hub={hub_key('x').hub_id}")
    finally:
        store.close()
