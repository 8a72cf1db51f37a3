"""hub/peer_status.py: one row per peer, and one per hub where its URL entry and its ``session:`` entry are
both known (the open session with real hubs is in tests/federation/test_session_network.py)."""

from __future__ import annotations

from typing import Any

from hub.peer_status import peer_rows
from protocol import format_hub_id

B = bytes([2]) * 32
C = bytes([3]) * 32
URL_B, URL_C = "http://b.example", "http://c.example"
ALIAS_B = f"session:{format_hub_id(B)}"


def saved(url: str, **kw: Any) -> dict[str, Any]:
    return {"url": url, "state": "new", "score": 100, "hub_id": "", "session": "", **kw}


def test_an_alias_is_folded_into_the_url_its_profile_names_and_the_open_session_wins() -> None:
    table = [saved(URL_B, state="failing", failures=3), saved(ALIAS_B, hub_id=B.hex(), state="healthy")]
    live = [{**table[0], "session_state": "backoff"},
            {**table[1], "session_state": "open", "direction": "inbound", "score": 90}]
    rows = peer_rows([URL_B], table, live, {format_hub_id(B): "Beta"}, {URL_B + "/": B})
    assert len(rows) == 1, rows
    row = rows[0]
    assert (row["url"], row["session_key"], row["configured"], row["inbound_only"]) == (URL_B, ALIAS_B, True, False)
    assert (row["session_state"], row["direction"], row["score"]) == ("open", "inbound", 90)
    assert (row["hub"], row["name"]) == (format_hub_id(B), "Beta")


def test_a_dropped_alias_is_never_hidden_behind_its_url() -> None:
    table = [saved(URL_B), saved(ALIAS_B, hub_id=B.hex(), state="dropped", score=0, drop_reason="score")]
    for live in (None, [{**table[0], "session_state": "none"}, {**table[1], "session_state": "dropped"}]):
        rows = peer_rows([], table, live, None, {URL_B: B})
        assert [(r["url"], r["state"], r["score"]) for r in rows] == [(URL_B, "dropped", 0)], rows


def test_a_proven_url_entry_ties_without_a_profile_and_the_url_row_wins_when_no_session_is_open() -> None:
    table = [saved(URL_B, hub_id=B.hex(), state="healthy", score=80), saved(ALIAS_B, hub_id=B.hex())]
    rows = peer_rows([], table, None)
    assert [(r["url"], r["score"], r["session_key"], r["session_state"]) for r in rows] == [
        (URL_B, 80, ALIAS_B, "unknown")]


def test_what_cannot_be_told_apart_stays_two_rows() -> None:
    # The alias's hub names two URLs, or no profile ties the URL: nothing says which, so nothing is merged.
    table = [saved(URL_B), saved(URL_C), saved(ALIAS_B, hub_id=B.hex())]
    assert len(peer_rows([], table, None, None, {URL_B: B, URL_C: B})) == 3
    assert len(peer_rows([], table, None)) == 3
    # A URL another hub's profile names is that hub's: B's alias stays apart, C's URL row is unchanged.
    rows = peer_rows([], table, None, None, {URL_B: C, URL_C: C})
    assert [(r["url"], r["session_key"], r["hub"]) for r in rows] == [
        (URL_B, "", ""), (URL_C, "", ""), (ALIAS_B, "", format_hub_id(B))]
