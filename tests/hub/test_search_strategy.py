"""The directory search's shortcuts (hub/queries.py) give exactly what the plain computation gives: the
result cache, ranking without the directory join, and a page's marks and offer statuses fetched for the
whole page at once — checked against the single-item views and the plain SQL on a random association."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from hub import pagedata, queries
from hub.queries import DirectoryQuery, SearchCache
from hub.store import Store
from protocol import Record, parse_hub_id

from .factory import DAY, Association, raws

WORDS = "care rota gloves training night visit meals dementia safeguarding transport".split()
REGIONS = ["Gwynedd", "Conwy", "Powys", "Cardiff"]


def _association(seed: int) -> tuple[Association, list[Record]]:
    """Founders publishing profiles, guides, offers (some closed or revoked), pledges, and marks (some
    revoked, expired or not yet valid), with words drawn so that some are common and some rare."""
    rng = random.Random(seed)
    a = Association.create(founders=5, needed=2, seed=f"strategy-{seed}")
    out: list[Record] = [a.charter]
    offers: list[Record] = []
    for i in range(160):
        key = rng.choice(a.founders)
        words = " ".join(rng.choices(WORDS, weights=[10, 5, 4, 3, 2, 1, 1, 1, 1, 1], k=4))
        roll = rng.random()
        if roll < 0.35:
            out.append(a.guide(key, f"{words} {i}", summary=words))
        elif roll < 0.55:
            offers.append(a.offer(key, f"{words} offer {i}", deadline=a.now + rng.randrange(-3, 30) * DAY))
            out.append(offers[-1])
        elif roll < 0.65 and offers:
            offer = rng.choice(offers)
            out.append(a.pledge(rng.choice(a.founders), offer, rng.randrange(1, 40)))
        elif roll < 0.72 and offers:
            offer = rng.choice(offers)
            author = next(k for k in a.founders if k.public == offer.author)
            if rng.random() < 0.25:  # someone else's close or revocation: stored and ignored
                author = rng.choice([k for k in a.founders if k.public != offer.author])
            outcome = rng.choice(["awarded", "cancelled"])
            out.append(a.revoke(author, offer) if rng.random() < 0.5 else a.close(author, offer, [], outcome))
        elif roll < 0.82:
            out.append(a.profile(key, f"{words} co-op", regions=rng.sample(REGIONS, 2)))
        else:
            start = a.now + rng.randrange(-400, 10) * DAY
            mark = a.attest(rng.choice(a.founders), valid_from=start, valid_until=start + 365 * DAY)
            out.append(mark)
            if rng.random() < 0.3:
                out.append(a.revoke(a.assessor, mark))
    return a, out


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, Association]:
    a, records = _association(3)
    print("seed=3")
    store = Store(tmp_path_factory.mktemp("strategy") / "hub.sqlite3")
    results = store.ingest(raws(records), now_ms=a.now)
    assert sum(r.status == "accepted" for r in results) > 140
    assert store.wait_indexed()  # the full-text index is filled after COMMIT; these tests read it directly
    return store, a


def _queries(rng: random.Random) -> list[DirectoryQuery]:
    out = [DirectoryQuery(), DirectoryQuery(kind="offer"), DirectoryQuery(limit=5, offset=3)]
    for word in WORDS:
        out += [DirectoryQuery(q=word), DirectoryQuery(q=f"{word} {rng.choice(WORDS)}", region=rng.choice(REGIONS)),
                DirectoryQuery(q=word, kind=rng.choice(["hub", "guide", "offer"])),
                DirectoryQuery(q=word, limit=3, offset=rng.randrange(5))]
    return out


def test_cached_searches_equal_fresh_ones_and_see_new_records(world: tuple[Store, Association]) -> None:
    store, a = world
    cache = SearchCache(size=8)  # small: entries are evicted too
    for query in _queries(random.Random(1)):
        plain = store.view(queries.search, query, a.now)
        assert store.view(queries.search, query, a.now, cache) == plain  # miss, then stored
        assert store.view(queries.search, query, a.now, cache) == plain  # hit
        assert store.view(queries.search, query, a.now + DAY, cache) == store.view(queries.search, query,
                                                                                a.now + DAY)
    assert cache.hits >= len(_queries(random.Random(1))) and cache.misses >= 1
    # A new record changes the answer: the cache must not hide it.
    query = DirectoryQuery(q="zebracrossing")
    assert store.view(queries.search, query, a.now, cache)[1] == 0
    store.ingest([a.guide(a.founders[0], "zebracrossing safety").raw], now_ms=a.now)
    assert store.wait_indexed()
    found, total = store.view(queries.search, query, a.now, cache)
    assert total == 1 and found[0]["title"] == "zebracrossing safety"


def test_ranking_without_the_join_is_the_joined_ranking(world: tuple[Store, Association]) -> None:
    store, a = world
    for word in WORDS:
        text = queries.fts_query(word)
        joined = store.view(lambda conn, text=text: [rid for (rid,) in conn.execute(
            f"SELECT rid FROM (SELECT d.rid AS rid, {queries._BM25} AS score FROM directory_fts JOIN directory d "
            "ON d.rid = directory_fts.rowid WHERE directory_fts MATCH ? ORDER BY directory_fts.rowid DESC "
            f"LIMIT {queries.RANK_WINDOW}) ORDER BY score, rid DESC LIMIT 200", (text,))])
        mine = store.view(queries._ranked, DirectoryQuery(q=word), a.now, text, 200, 0)
        assert mine == joined and (joined or word == "meals")


def test_page_marks_and_statuses_equal_the_single_item_views(world: tuple[Store, Association]) -> None:
    store, a = world
    seen_marks = seen_offers = 0
    for when in (a.now, a.now + 20 * DAY, a.now - 200 * DAY):
        for query in [DirectoryQuery(limit=200), DirectoryQuery(kind="offer", limit=200)]:
            found, _ = store.search(query, when)
            for result in found:
                hub = parse_hub_id(result["author"])
                expected = [{"scheme": m["scheme"], "status": store.mark_check(hub, m["scheme"], when)["status"]}
                            for m in result["marks"]]
                assert result["marks"] == expected
                schemes = {v["scheme"] for v in store.marks_view(hub, when)}
                assert {m["scheme"] for m in result["marks"]} == schemes
                seen_marks += len(result["marks"])
                if result["kind"] == "offer":
                    view = store.offer_view(bytes.fromhex(result["id"]), when)
                    assert view is not None and result["status"] == view["status"]
                    seen_offers += 1
    assert seen_marks > 10 and seen_offers > 20


def test_hub_pages_list_offer_statuses_as_the_offer_view_does(world: tuple[Store, Association]) -> None:
    store, a = world
    for key in a.founders:
        view = store.hub_view(key.public, a.now)
        assert view is not None
        for offer in view["offers"]:
            single = store.offer_view(bytes.fromhex(offer["id"]), a.now)
            assert single is not None and offer["status"] == single["status"]


def test_cache_stays_within_its_size(tmp_path: Path) -> None:
    cache = SearchCache(size=3)
    for i in range(10):
        cache.put(i, (i, [], {}))
    assert [k for k in range(10) if cache.get(k) is not None] == [7, 8, 9]


def test_offer_statuses_equal_offer_tally_for_every_offer(world: tuple[Store, Association]) -> None:
    """Also revoked offers, which no page lists: the derived row gives offer_tally's status at any time."""
    store, a = world
    ids = store.view(lambda conn: [i for (i,) in conn.execute("SELECT id FROM offers")])
    seen = set()
    for when in (a.now, a.now + 20 * DAY, a.now - 200 * DAY, a.now + 400 * DAY):
        statuses = store.view(pagedata.offer_statuses, ids, when)
        for offer_id in ids:
            view = store.offer_view(offer_id, when)
            assert view is not None and statuses[offer_id] == view["status"], offer_id.hex()
            seen.add(view["status"])
    assert seen == {"open", "past-deadline", "awarded", "cancelled"}


def test_cached_marks_equal_fresh_ones_at_every_time_a_mark_changes(world: tuple[Store, Association]) -> None:
    """pagedata.MarksCache keeps an answer while no attestation of the hub starts, ends or is revoked: at each
    of those times (and a millisecond either side), with the cache warmed at another time, marks_brief,
    marks_view and mark_check answer as the fresh computation does."""
    store, a = world
    hubs = [k.public for k in a.founders]
    times = store.view(lambda conn: sorted({t for row in conn.execute(
        "SELECT valid_from, valid_until, revoked_ms FROM attestations") for t in row if t is not None}))
    assert len(times) > 10
    charter = store.charter()
    cache = pagedata.MarksCache()
    checked = 0
    for t in times:
        for when in (t - 1, t, t + 1):
            fresh = store.view(pagedata.marks_brief, charter, hubs, when)
            assert store.view(pagedata.marks_brief, charter, hubs, when, cache) == fresh
            assert store.view(pagedata.marks_brief, charter, hubs, when, cache) == fresh  # a hit
            checked += sum(len(v) for v in fresh.values())
            for hub in hubs:  # a hub's page lists its marks; a mark check answers for one scheme
                view = store.view(queries.marks_view, hub, when)
                assert store.view(queries.marks_view, hub, when, cache) == view
                assert store.view(queries.marks_view, hub, when, cache) == view
                for scheme in ("care-quality", "no-such-scheme"):
                    one = store.view(queries.mark_check, hub, scheme, when)
                    assert store.view(queries.mark_check, hub, scheme, when, cache) == one
                    assert store.view(queries.mark_check, hub, scheme, when, cache) == one
    assert cache.hits > 0 and checked > 0
    # A new revocation changes the answer: the cache must not hide it.
    found = store.view(lambda conn: conn.execute(
        "SELECT id FROM attestations WHERE authorised = 1 AND revoked_ms IS NULL AND valid_from <= ? AND "
        "valid_until > ? LIMIT 1", (a.now, a.now)).fetchone())
    assert found is not None
    mark = store.get_record(found[0])
    assert mark is not None
    revocation = a.revoke(a.assessor, mark)
    when = revocation.created_ms + 1
    store.view(pagedata.marks_brief, charter, hubs, when, cache)
    misses = cache.misses
    store.ingest([revocation.raw], now_ms=when)
    after = store.view(pagedata.marks_brief, charter, hubs, when, cache)
    assert cache.misses > misses  # the stored revocation invalidated the answers
    assert after == store.view(pagedata.marks_brief, charter, hubs, when)
