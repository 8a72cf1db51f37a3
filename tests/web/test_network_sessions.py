"""The network page of a running hub shows each peer session's state, direction, score, last contact and lag
(issue 8 item 5) — two real hubs on 127.0.0.1 (tests/federation/network.py), in English and Welsh, checked by
axe-core in Chromium and by the markup checks of tests/web/a11y.py."""

from __future__ import annotations

import asyncio
import json
import os
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.federation.network import Hub, Network, eventually
from tests.web.a11y import problems
from tests.web.site import CHROMIUM, CHROMIUM_ARGS
from tests.web.test_axe import AXE, LOCALES, TIMEOUT_MS, run_axe
from tests.web.test_pages import text_of

SEED = int(os.environ.get("COOPHUB_TEST_SEED", random.SystemRandom().randrange(2**32)))


@pytest.fixture
async def net(tmp_path: Path) -> AsyncIterator[Network]:
    print(f"seed: {SEED} (replay with COOPHUB_TEST_SEED={SEED})")
    network = Network(tmp_path, SEED)
    try:
        yield network
    finally:
        await network.close()


async def page(hub: Hub, lang: str) -> str:
    status, body = await hub.get(f"/network?lang={lang}")
    assert status == 200, body[:300]
    return body.decode()


def session_of(hub: Hub, other: Hub) -> str:
    rows = [r for r in hub.fed.peer_sessions() if r.get("hub") == other.hub_id]
    return str(rows[0]["session_state"]) if rows else "none"


def axe_violations(url: str) -> dict[str, list[dict[str, object]]]:
    """axe-core on ``url`` in each language (a blocking call: run it in a thread while the hubs serve)."""
    from playwright.sync_api import sync_playwright

    found: dict[str, list[dict[str, object]]] = {}
    source = AXE.read_text(encoding="utf-8")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            for lang, locale in LOCALES.items():
                context = browser.new_context(locale=locale)
                try:
                    tab = context.new_page()
                    tab.set_default_timeout(TIMEOUT_MS)
                    tab.goto(url)
                    assert tab.evaluate("document.documentElement.lang") == lang
                    if violations := run_axe(tab, source):
                        found[lang] = violations
                finally:
                    context.close()
        finally:
            browser.close()
    return found


async def test_the_network_page_shows_a_live_inbound_session_then_its_end(net: Network) -> None:
    a, b = net.hub("page-a"), net.hub("page-b")
    net.found([a, b])
    b.add_peers(a.url)  # B dials A; A has no URL for B
    await net.start()
    await eventually(lambda: None if session_of(a, b) == "open" else session_of(a, b), "B's session reaches A")

    english = text_of(await page(a, "en"))
    for expected in ("Open", "it connected to this hub", "No URL: it connected to this hub", "100",
                     "Session: whether this hub has an authenticated connection"):
        assert expected in english, expected
    assert "Session states are not known" not in english, english
    assert "session:hub_" not in english, english
    assert "seconds ago" in english or "just now" in english  # B's frames arrive every sync interval
    on_b = text_of(await page(b, "en"))
    assert "Open" in on_b and "this hub connected to it" in on_b and a.url in on_b

    welsh_html = await page(a, "cy")
    assert problems(welsh_html) == [] and problems(await page(a, "en")) == []
    welsh = text_of(welsh_html)
    assert "Ar agor" in welsh and "cysylltodd â'r hyb hwn" in welsh, welsh[:2000]

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install it with `apt-get install chromium` (or run `make test`).")
    found = await asyncio.to_thread(axe_violations, f"{a.url}/network")
    assert not found, json.dumps(found, indent=1, ensure_ascii=False)

    await b.stop()
    await eventually(lambda: None if session_of(a, b) in ("closed", "backoff") else session_of(a, b),
                     "A sees B's session end")
    after = text_of(await page(a, "en"))
    assert "Closed" in after or "Waiting to retry" in after, after
