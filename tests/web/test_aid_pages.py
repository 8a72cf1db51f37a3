"""The mutual-aid pages (hub/aid_web.py): time credits and a solidarity fund, from a real Store holding the
sample association of tests/web/site.py plus payments, a fund, claims, approvals and payments toward them
(tests/web/aid_site.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.web.a11y import problems
from tests.web.aid_site import build_aid
from tests.web.site import Site

from .test_pages import text_of


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    s = build_aid(tmp_path)
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
    assert not problems(text), (path, problems(text))
    assert "<script>window" not in text, "a record's text reached the page unescaped"
    return text


async def test_the_ledger_lists_balances_that_sum_to_zero_and_the_flag(client: TestClient, site: Site) -> None:
    page = text_of(await get(client, "/credit"))
    assert "Time credits" in page and "Total (always zero) 0" in page
    assert "Cardiff Community Carers" in page and "−6" in page  # paid 6 hours for cover
    assert "Flagged: signed payments beyond its limit" in page  # Powys paid past its limit
    assert "1 waiting for the payee to book them" in page


async def test_an_account_shows_balance_limit_and_history(client: TestClient, site: Site) -> None:
    f0 = site.a.founders[0]
    page = text_of(await get(client, f"/credit/{f0.hub_id}"))
    assert "Gofal Gwynedd" in page
    assert "4.5 hours" in page  # +6 h cover, −1.5 h training
    assert "down to −40 hours" in page
    assert "Cover for two night shifts" in page and "Moving and handling training" in page
    assert "Over the payer's limit: does not count" in page
    assert "Booked, settling" in page or "Final" in page


async def test_a_flagged_account_says_so(client: TestClient, site: Site) -> None:
    page = text_of(await get(client, f"/credit/{site.a.founders[2].hub_id}"))
    assert "Flagged: signed payments beyond its credit limit" in page
    assert "Pending: not booked by the payee yet" in page


async def test_the_fund_shows_members_claims_shares_and_what_is_owed(client: TestClient, site: Site) -> None:
    fund = site.extra["fund"]
    page = text_of(await get(client, f"/funds/{fund.id.hex()}"))  # type: ignore[attr-defined]
    assert "Sick pay circle" in page and "£50.00 per member" in page
    assert "Leaving: notice given" in page
    assert "£60.00 for Cardiff Community Carers" in page and "Approved: members are paying" in page
    assert "Approvals: 1 of 1" in page
    assert "What is still owed" in page and "£30.00" in page
    assert "Waiting for approvals" in page


async def test_the_list_of_funds(client: TestClient, site: Site) -> None:
    page = text_of(await get(client, "/funds"))
    assert "Sick pay circle" in page and "£50.00" in page


async def test_unknown_ids_are_friendly_404_pages(client: TestClient, site: Site) -> None:
    assert "not a fund id" in text_of(await get(client, "/funds/nothex", status=404))
    assert "Fund not found" in text_of(await get(client, "/funds/" + "ab" * 32, status=404))
    assert "not a hub id" in text_of(await get(client, "/credit/hub_nope", status=404))


async def test_the_navigation_links_the_pages(client: TestClient) -> None:
    page = await get(client, "/credit")
    assert 'href="/credit" aria-current="page"' in page and 'href="/funds"' in page
