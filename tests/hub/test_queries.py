"""hub/queries.py: the FTS5 sanitiser, directory search with filters and ranking, result shape."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.queries import MAX_QUERY_TOKENS, DirectoryQuery, fts_query
from hub.store import Store
from protocol import parse_hub_id

from .factory import Sample, raws


def ids(store: Store, now_ms: int, **kw: object) -> list[str]:
    found, total = store.search(DirectoryQuery(**kw), now_ms)  # type: ignore[arg-type]
    assert total >= len(found)
    return [r["id"] for r in found]


# -- the sanitiser -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("home care", '"home" "care"'),
    ('care" OR "x', '"care" "OR" "x"'),
    ("NEAR(a b) NOT c*", '"NEAR" "a" "b" "NOT" "c"'),
    ("title:gloves ^start", '"title" "gloves" "start"'),
    ("   ", ""),
    ("()*\"':-", ""),
    ("Gofal Cymru—gwasanaeth", '"Gofal" "Cymru" "gwasanaeth"'),
])
def test_fts_query_quotes_every_word(text: str, expected: str) -> None:
    assert fts_query(text) == expected


def test_fts_query_bounds_the_number_of_words() -> None:
    assert fts_query("w " * 100).count('"w"') == MAX_QUERY_TOKENS


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=80))
def test_any_text_searches_without_error(loaded: tuple[Store, Sample], text: str) -> None:
    store, s = loaded
    found, total = store.search(DirectoryQuery(q=text), s.a.now)
    assert total == len(found)


# -- search ------------------------------------------------------------------------------------------------


def test_result_shape(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    found, total = store.search(DirectoryQuery(q="gloves"), s.a.now)
    assert total == 1
    (offer,) = found
    assert offer["id"] == s["offer"].id_hex and offer["kind"] == "offer"
    assert offer["author"] == s.a.founders[1].hub_id and offer["title"] == "Nitrile gloves"
    assert offer["status"] == "open" and offer["member"] is True
    assert offer["regions"] == ["Cardiff", "Gwynedd"] and offer["created"].endswith("Z")
    assert "gloves" in offer["snippet"].lower()
    (hub,), _ = store.search(DirectoryQuery(q="Powys Supported"), s.a.now)
    assert hub["kind"] == "hub" and parse_hub_id(hub["id"]) == s.a.founders[2].public
    assert hub["services"] == ["Supported housing"] and hub["marks"] == []
    (marked,), _ = store.search(DirectoryQuery(q="Gofal"), s.a.now)
    assert marked["marks"] == [{"scheme": "care-quality", "status": "valid"}]


def test_text_search_stems_and_ignores_case(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    assert ids(store, s.a.now, q="GLOVE") == [s["offer"].id_hex]
    assert ids(store, s.a.now, q="rota") == [s["guide_rota"].id_hex]


def test_ranking_prefers_title_matches(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    a = s.a
    body_only = a.guide(a.founders[2], "Induction checklist", body="Explain the lone working policy." * 3)
    assert store.ingest([body_only.raw], now_ms=a.now)[0].status == "accepted"
    assert ids(store, a.now, q="lone working") == [s["guide_v2"].id_hex, body_only.id_hex]


def test_filters(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    now = s.a.now
    f0, f1, f2 = (k.hub_id for k in s.a.founders)
    assert set(ids(store, now, kind="hub")) == {f0, f1, f2, s.applicant.hub_id}
    assert set(ids(store, now, region="GWYNEDD")) == {f0, s["offer"].id_hex}
    assert ids(store, now, region="Gwyn") == []  # a region matches whole, not as a prefix
    assert set(ids(store, now, service="home")) == {f0, s.applicant.hub_id}
    assert set(ids(store, now, service="housing")) == {f2}  # a category
    assert set(ids(store, now, service="HEALTH")) == {s["offer"].id_hex}  # an offer's category
    assert set(ids(store, now, mark="care-quality", kind="hub")) == {f0}
    assert ids(store, now, mark="no-such-scheme") == []
    assert ids(store, now, q="care", kind="hub", region="cardiff") == [f1]
    assert ids(store, now, open=True) == [s["offer"].id_hex]


def test_unknown_kind_is_an_error(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    with pytest.raises(ValueError, match="unknown kind"):
        store.search(DirectoryQuery(kind="pledge"), s.a.now)


def test_paging_and_total(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    everything = ids(store, s.a.now, limit=100)
    assert len(everything) == 7  # 4 hubs, 2 current guides, 1 offer
    pages = [ids(store, s.a.now, limit=3, offset=o) for o in (0, 3, 6)]
    assert [x for page in pages for x in page] == everything
    _, total = store.search(DirectoryQuery(limit=3), s.a.now)
    assert total == 7


def test_views_of_unknown_things(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    nobody = bytes(32)
    assert store.hub_view(nobody, s.a.now) is None
    assert store.offer_view(nobody, s.a.now) is None and store.guide_view(nobody) is None
    assert store.marks_view(nobody, s.a.now) == []
    assert store.mark_check(nobody, "care-quality", s.a.now)["status"] == "none"


def test_hub_view(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    view = store.hub_view(s.a.founders[1].public, s.a.now)
    assert view is not None
    assert view["name"] == "Cardiff Community Carers" and view["member"] and view["founder"]
    assert view["profile"]["body"]["regions"] == ["Cardiff"]
    assert [g["id"] for g in view["guides"]] == [s["guide_rota"].id_hex]
    assert [(o["id"], o["status"]) for o in view["offers"]] == [(s["offer"].id_hex, "open")]
    applicant = store.hub_view(s.applicant.public, s.a.now)
    assert applicant is not None and applicant["member"] is False


def test_status_and_counts(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    status = store.status(s.a.founders[0].hub_id, s.a.now)
    assert status["hub_id"] == s.a.founders[0].hub_id
    assert status["association_id"] == s.a.id.hex()
    assert status["member"] is True and status["records"] == len(s.records) and status["peers"] == 0
    store.upsert_peer("https://peer.example", {"score": 90, "last_sync_ms": s.a.now})
    assert store.status(s.a.founders[0].hub_id, s.a.now)["peers"] == 1
    assert store.list_peers() == [{"score": 90, "last_sync_ms": s.a.now, "url": "https://peer.example"}]
    # The whole peer table at once (federation after each anti-entropy round): one transaction, replacing.
    store.upsert_peers([("https://peer.example", {"score": 70}), ("https://other.example", {"score": 100})])
    assert sorted((p["url"], p["score"]) for p in store.list_peers()) == [
        ("https://other.example", 100), ("https://peer.example", 70)]
    with pytest.raises(TypeError):
        store.upsert_peers([("https://third.example", {"score": 1}), ("https://bad.example", {"x": object()})])
    assert len(store.list_peers()) == 2  # nothing of a batch that cannot be saved is saved
    store.set_meta("k", "v")
    assert store.get_meta("k") == "v" and store.get_meta("missing") is None


QUERIES = [DirectoryQuery(), DirectoryQuery(kind="hub"), DirectoryQuery(region="gwynedd"),
           DirectoryQuery(mark="care-quality"), DirectoryQuery(open=True), DirectoryQuery(service="care"),
           DirectoryQuery(open=True, region="cardiff"), DirectoryQuery(limit=2, offset=1)]


@pytest.mark.parametrize("query", QUERIES, ids=repr)
def test_both_query_plans_give_the_same_page(loaded: tuple[Store, Sample], monkeypatch: pytest.MonkeyPatch,
                                             query: DirectoryQuery) -> None:
    """Many matches walk the created_ms index; few go through the filters' indexes: same answer either way."""
    import hub.queries

    store, s = loaded
    by_index = store.search(query, s.a.now)
    monkeypatch.setattr(hub.queries, "SCAN_PLAN_MIN", 0)
    assert store.search(query, s.a.now) == by_index


def test_a_text_query_ranks_within_the_newest_matches(loaded: tuple[Store, Sample],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import hub.queries

    store, s = loaded
    _, total = store.search(DirectoryQuery(q="care"), s.a.now)
    monkeypatch.setattr(hub.queries, "RANK_WINDOW", 1)
    found, total_windowed = store.search(DirectoryQuery(q="care", limit=1), s.a.now)
    assert total_windowed == total == 3  # the count stays exact
    assert [r["id"] for r in found] == [s.applicant.hub_id]  # the newest matching entry only
    # A page beyond the window widens it to the page's end, so a page the total promises is never empty.
    assert all(len(store.search(DirectoryQuery(q="care", limit=1, offset=n), s.a.now)[0]) == 1 for n in range(3))
    assert store.search(DirectoryQuery(q="care", limit=1, offset=3), s.a.now)[0] == []


def test_text_with_a_region_matches_the_whole_region_name(loaded: tuple[Store, Sample]) -> None:
    store, s = loaded
    a = s.a
    vale = a.profile(a.founders[0], "Vale Carers", regions=["Vale of Glamorgan"])
    plain = a.profile(a.founders[1], "Glamorgan Carers", regions=["Glamorgan"])
    assert [r.status for r in store.ingest([vale.raw, plain.raw], now_ms=a.now)] == ["accepted"] * 2
    assert ids(store, a.now, q="carers", region="glamorgan") == [a.founders[1].hub_id]
    assert ids(store, a.now, q="carers", region="VALE OF GLAMORGAN") == [a.founders[0].hub_id]
    assert ids(store, a.now, q="carers", region="of") == []
    assert ids(store, a.now, q="carers", region="--") == []  # no words: only the exact filter applies


def test_kept_counts_agree_with_the_entries(loaded: tuple[Store, Sample]) -> None:
    """Totals of unfiltered and open-offer searches come from kept counts; they must equal the entries."""
    store, s = loaded
    a = s.a
    f1 = a.founders[1]
    gone, closed = a.offer(f1, "Withdrawn"), a.offer(f1, "Closed")
    newer = a.profile(a.founders[2], "Powys Supported Living Cyf")
    records = [gone, closed, newer, a.revoke(f1, gone), a.close(f1, closed, [], "cancelled"),
               a.revoke(a.founders[0], s["guide_v2"])]
    assert {r.status for r in store.ingest(raws(records), now_ms=a.now)} == {"accepted"}
    for query in (DirectoryQuery(limit=200), DirectoryQuery(kind="hub", limit=200),
                  DirectoryQuery(kind="guide", limit=200), DirectoryQuery(kind="offer", limit=200),
                  DirectoryQuery(open=True, limit=200), DirectoryQuery(open=True, kind="hub", limit=200)):
        found, total = store.search(query, a.now)
        assert total == len(found), query
    assert store.search(DirectoryQuery(kind="offer"), a.now)[1] == 2
    assert store.search(DirectoryQuery(open=True), a.now)[1] == 1
    assert store.search(DirectoryQuery(kind="guide"), a.now)[1] == 1


def test_member_peer_urls_come_from_members_current_profiles(store: Store) -> None:
    from .factory import Association, hub_key

    a = Association.create(founders=2, needed=2)
    f0, f1 = a.founders
    applicant = hub_key("peer-url-applicant")
    records = [
        a.charter,
        a.profile(f0, "Old Zero", peer_urls=["https://old.zero.example"]),
        a.profile(f0, "Zero", peer_urls=["https://zero.example", "https://zero-2.example"]),  # replaces it
        a.profile(f1, "One", peer_urls=["https://one.example"]),
        # Sponsored by one founder of the two needed: its profile is stored, but it is not a member.
        a.profile(applicant, "Applicant", peer_urls=["https://applicant.example"]),
        a.endorse(f0, applicant),
    ]
    assert {r.status for r in store.ingest(raws(records), now_ms=a.now)} == {"accepted"}
    assert store.is_eligible(applicant.public) and not store.is_member(applicant.public)
    urls = store.member_peer_urls()
    assert sorted(urls) == ["https://one.example", "https://zero-2.example", "https://zero.example"]


@pytest.mark.parametrize("query", [DirectoryQuery(q="care"), DirectoryQuery(region="cardiff"),
                                   DirectoryQuery(service="care"), DirectoryQuery(open=True),
                                   DirectoryQuery(open=True, region="cardiff")], ids=repr)
def test_totals_are_counted_up_to_the_cap_then_say_at_least(loaded: tuple[Store, Sample],
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           query: DirectoryQuery) -> None:
    import hub.queries

    store, s = loaded
    found, exact = store.search(query, s.a.now)
    assert exact >= 1 and not exact.at_least and exact == len(found)  # the sample is under the cap
    monkeypatch.setattr(hub.queries, "TOTAL_CAP", exact - 1)
    page = replace(query, limit=max(1, exact - 2))
    capped_found, capped = store.search(page, s.a.now)
    if exact - 1 >= page.limit + 1:
        assert capped == exact - 1 and capped.at_least  # counting stopped at the cap
    else:
        assert capped == exact and not capped.at_least  # the cap is raised to just past the page asked for
    assert capped_found == found[:page.limit]  # the page itself does not change
    monkeypatch.setattr(hub.queries, "TOTAL_CAP", exact)
    assert store.search(query, s.a.now)[1] == exact and not store.search(query, s.a.now)[1].at_least


def test_a_page_past_the_cap_still_has_a_next_page(loaded: tuple[Store, Sample],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import hub.queries

    store, s = loaded
    everything, exact = store.search(DirectoryQuery(region="cardiff", limit=50), s.a.now)
    monkeypatch.setattr(hub.queries, "TOTAL_CAP", 0)
    found, total = store.search(DirectoryQuery(region="cardiff", limit=1, offset=0), s.a.now)
    assert found == everything[:1]
    assert exact >= 2
    if exact > 2:
        assert total.at_least and total == 2  # one past the page: "there is a next page"
    else:
        assert total == 2 and not total.at_least
