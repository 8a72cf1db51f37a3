"""A real hub with sample data for the web page tests, the browser tests and the screenshots.

It builds on tests/hub/factory.py's ``sample()`` (three founder co-ops, a guide with two versions, an offer
with pledges, a valid mark, an applicant) and adds what the pages need to show everything: a guide with rich
Markdown and an attachment, a guide in Welsh, the assessor's profile, an expired and a revoked mark, an
endorsement, a closed offer, peers and refused records.
The hub that serves the pages is founder 0 (Gofal Gwynedd). Time is fixed (``Site.now``), so pages are
reproducible.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from hub.app import make_app
from hub.home import Home, HubConfig
from hub.store import Store
from tests.hub.factory import DAY, HOUR, Association, Sample, hub_key, raws, sample

GUIDE_BODY = """# Before the meeting

Send papers **a week ahead**, in large print and plain text. Ask every member what they need:

- a British Sign Language interpreter or live captions;
- step-free access and a quiet room;
- breaks every 45 minutes.

## During the meeting

1. Say your name each time you speak.
2. Describe any slides aloud.
3. Check the chat and the captions before moving on.

> Nothing about us without us.

See the [Social Model of Disability](https://www.scope.org.uk/social-model-of-disability) and email
<mailto:access@example.coop> with questions.
"""

#: Debian's Chromium, as the browser tests and docs/screenshots/take.py launch it: no sandbox (root in CI), and
#: none of the background connections this machine's closed network refuses.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

WELSH_BODY = """# Cyn yr ymweliad

Mae gan bob ymweliad **gyfaill**: cydweithiwr sy'n gwybod ble rydych chi a phryd rydych chi'n disgwyl gadael.

1. Anfonwch neges destun pan fyddwch yn cyrraedd a phan fyddwch yn gadael.
2. Os yw'r neges 20 munud yn hwyr, mae'r cyfaill yn ffonio.
"""

XSS = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'
XSS_BODY = f"# Notes\n\n{XSS}\n\n[click me](javascript:window.__pwned=3)\n"


@dataclass
class Site:
    sample: Sample
    now: int
    home: Home
    store: Store
    extra: dict[str, object]

    @property
    def a(self) -> Association:
        return self.sample.a

    def app(self) -> web.Application:
        return make_app(self.home, self.store, now_ms=lambda: self.now, federation=False)


def build(tmp: Path, *, xss: bool = False) -> Site:
    """A store under ``tmp`` holding the sample association, and a Home for founder 0; ``xss`` adds records
    whose user-controlled fields carry script."""
    s = sample()
    a = s.a
    f0, f1, f2 = a.founders
    store = Store(tmp / "hub.sqlite3", blobs_dir=tmp / "blobs")
    checklist = b"%PDF-1.4\n% a tiny sample checklist\n"
    digest = store.put_blob(checklist)
    guide = a.record(
        f2,
        "guide",
        {
            "title": "Accessible members' meetings",
            "summary": "How we make general meetings work for every member.",
            "body": GUIDE_BODY,
            "license": "CC-BY-4.0",
            "tags": ["accessibility", "governance", "meetings"],
            "language": "en",
            "attachments": [
                {
                    "name": "meeting-checklist.pdf",
                    "media_type": "application/pdf",
                    "size": len(checklist),
                    "hash": digest,
                }
            ],
        },
    )
    s.add("guide_access", guide)
    s.add(
        "profile0_full",
        a.record(
            f0,
            "profile",
            {
                "name": "Gofal Gwynedd",
                "legal_form": "Co-operative society (worker-owned)",
                "description": "Worker-owned home care across north-west Wales, in Welsh and English.",
                "regions": ["Gwynedd", "Anglesey"],
                "stakeholders": ["workers", "service-users", "families"],
                "services": [
                    {
                        "name": "Home care",
                        "category": "care",
                        "description": "Personal care visits, day and night.",
                    },
                    {
                        "name": "Respite care",
                        "category": "care",
                        "description": "Short breaks for family carers.",
                    },
                ],
                "contact": {
                    "email": "helo@gofal.example",
                    "phone": "+44 1286 000000",
                    "address": "Stryd Fawr, Caernarfon",
                },
                "website": "https://gofal.example",
                "peer_urls": ["https://hub.gofal.example"],
            },
        ),
    )
    # A guide in Welsh: its title, summary and body carry lang="cy" on English pages (WCAG 3.1.2).
    s.add(
        "guide_cy",
        a.record(
            f0,
            "guide",
            {
                "title": "Gweithio ar eich pen eich hun yn ddiogel",
                "summary": "Sut mae ein gofalwyr yn cadw'n **ddiogel** ar ymweliadau unigol.",
                "body": WELSH_BODY,
                "license": "CC-BY-SA-4.0",
                "tags": ["diogelwch"],
                "language": "cy",
            },
        ),
    )
    # The scheme's assessor publishes a profile, so pages name it instead of showing its hub id.
    s.add(
        "profile_assessor",
        a.profile(
            a.assessor,
            "Ansawdd Cymru Assessors",
            regions=["Wales"],
            services=[("Quality assessment", "care")],
            description="An independent assessor body, authorised by the charter to award the Care Quality Mark.",
        ),
    )
    s.add("endorse_applicant", a.endorse(f0, s.applicant))
    s.add(
        "attest_expired",
        a.attest(f1, level="silver", valid_from=a.clock - 400 * DAY, valid_until=a.clock - 35 * DAY),
    )
    revoked = s.add("attest_revoked", a.attest(f2, level="bronze"))
    s.add("revoke_mark", a.revoke(a.assessor, revoked, reason="Assessment evidence was withdrawn."))
    # A member that is not the scheme's assessor: stored, but its mark is "unauthorised".
    s.add("attest_unauthorised", a.attest(s.applicant, key=f1, level="gold"))
    hoists = s.add(
        "offer_closed",
        a.offer(
            f0,
            "Hoist servicing contract",
            min_total=5,
            category="care",
            tiers=[[1, 12000], [5, 9500]],
            description="Annual servicing of ceiling and mobile hoists, shared between co-ops.",
        ),
    )
    p1 = s.add("pledge_h1", a.pledge(f1, hoists, 3))
    p2 = s.add("pledge_h2", a.pledge(f2, hoists, 4))
    s.add("close", a.close(f0, hoists, [p1, p2]))
    s.add("pledge1", a.pledge(f1, s["offer"], 25))
    if xss:
        s.add(
            "xss_profile",
            a.profile(hub_key("xss-applicant"), f"Carers {XSS}", description=XSS, regions=["Cardiff"]),
        )
        s.add("xss_sponsor", a.endorse(f0, hub_key("xss-applicant")))  # sponsored: its profile is stored
        s.add("xss_guide", a.guide(f1, f"Guide {XSS}", summary=XSS, body=XSS_BODY, tags=["xss-tag"]))
        s.add("xss_offer", a.offer(f1, f"Offer {XSS}", description=XSS))
    now = a.now + HOUR
    results = store.ingest(raws(s.records), now_ms=now)
    assert all(r.status == "accepted" for r in results), results
    # Refusals as the network page shows them: another association's record; a stranger's guide is deferred
    # (held until a member sponsors it), not refused.
    other = Association.create(seed="other-")
    outsider = hub_key("outsider")
    store.ingest(raws([other.charter]), now_ms=now, source="https://hub.elsewhere.example")
    store.ingest(
        raws([a.guide(outsider, "Not a member's guide")]), now_ms=now, source="https://hub.cardiff.example"
    )
    # An applicant that contacted this hub itself: its profile is quarantined and listed on the network page.
    newcomer = hub_key("newcomer")
    store.ingest([a.profile(newcomer, "Swansea Support Co-op", regions=["Swansea"]).raw], now_ms=now,
                 source="session", origin=newcomer.public)
    for url, data in PEERS(now).items():
        store.upsert_peer(url, data)
    config = HubConfig(name="Gofal Gwynedd", region="Gwynedd", association_id=a.id.hex())
    home = Home(tmp, f0, config, "test-token")
    return Site(s, now, home, store, {"digest": digest})


def PEERS(now: int) -> dict[str, dict[str, object]]:  # noqa: N802 (a table)
    return {
        "https://hub.cardiff.example": {
            "state": "healthy",
            "score": 100,
            "last_contact_ms": now - 40_000,
            "last_sync_ms": now - 95_000,
            "lag": 0,
            "records_received": 412,
            "hub_id": hub_key("founder-1").public.hex(),
            "source": "operator",
        },
        "https://hub.powys.example": {
            "state": "failing",
            "score": 70,
            "last_contact_ms": now - 3 * HOUR,
            "last_sync_ms": now - 3 * HOUR,
            "lag": 12,
            "records_received": 380,
            "hub_id": hub_key("founder-2").public.hex(),
            "source": "profile",
        },
        "https://hub.newport.example": {"state": "new", "score": 100, "source": "profile"},
    }


@contextmanager
def serving(make: Callable[[], web.Application]) -> Iterator[str]:
    """Serve the app on 127.0.0.1 in a background thread with its own event loop; yields the base URL."""
    loop = asyncio.new_event_loop()
    bound: list[int] = []
    ready = threading.Event()
    runner: list[web.AppRunner] = []

    async def start() -> None:
        r = web.AppRunner(make(), access_log=None)
        await r.setup()
        await web.TCPSite(r, "127.0.0.1", 0).start()  # the kernel picks the port: no race with other tests
        bound.append(int(r.addresses[0][1]))
        runner.append(r)

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="coophub-web-test", daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("the test hub did not start within 10 s")
    try:
        yield f"http://127.0.0.1:{bound[0]}"
    finally:
        asyncio.run_coroutine_threadsafe(runner[0].cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
