"""The mutual-aid derived-state vectors (docs/protocol.md §9.1, docs/vectors/protocol-vectors.json "derived"):
decode every record, read them in several orders, and compute the committed answers with protocol.credit and
protocol.fund. The records are decoded from their bytes, not rebuilt, so the answers are checked against what
another implementation would read."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from protocol import Record, decode_record, format_hub_id
from protocol.credit import ledger
from protocol.fund import fund_state

ROOT = Path(__file__).resolve().parents[2]
DATA: dict[str, Any] = json.loads((ROOT / "docs" / "vectors" / "protocol-vectors.json").read_text("utf-8"))
DERIVED = DATA["derived"]
NOW = DATA["now_ms"] + 10**12  # every vector record is in the past


def records(scenario: dict[str, Any]) -> dict[str, Record]:
    out = {}
    for v in scenario["records"]:
        record = decode_record(bytes.fromhex(v["hex"]), now_ms=NOW)
        assert record.id_hex == v["id"] and record.kind == v["kind"]
        out[v["name"]] = record
    return out


@pytest.mark.parametrize("seed", range(5))
def test_the_credit_scenario(seed: int) -> None:
    scenario = DERIVED["credit"]
    named = records(scenario)
    names = {r.id: n for n, r in named.items()}
    order = list(named.values())
    random.Random(seed).shuffle(order)
    limit = scenario["limit_minutes"]
    led = ledger([r for r in order if r.kind == "credit-payment"], [r for r in order if r.kind == "credit-receipt"],
                 lambda at: limit)
    want = scenario["expected"]
    assert [names[e.booking.payment] for e in led.entries] == want["order"]
    statuses = {names[e.booking.payment]: e.status for e in led.entries} | {names[p.id]: "pending"
                                                                          for p in led.pending}
    assert statuses == want["statuses"]
    assert {format_hub_id(h): p.balance for h, p in led.positions.items() if p.balance} == want["balances"]
    assert sum(want["balances"].values()) == 0
    assert sorted(format_hub_id(h) for h in led.flagged) == want["flagged"]


@pytest.mark.parametrize("seed", range(5))
def test_the_fund_scenario(seed: int) -> None:
    scenario = DERIVED["fund"]
    named = records(scenario)
    names = {r.id: n for n, r in named.items()}
    order = list(named.values())
    random.Random(seed).shuffle(order)
    by = {k: [r for r in order if r.kind == k] for k in
          ("fund-join", "fund-leave", "fund-claim", "fund-approval", "fund-payment")}
    state = fund_state(named["fund"], by["fund-join"], by["fund-leave"], by["fund-claim"], by["fund-approval"],
                       by["fund-payment"], scenario["now_ms"])
    want = scenario["expected"]
    assert [{"hub": format_hub_id(m.hub), "state": m.state} for m in state.members] == want["members"]
    got = {names[c.claim.id]: {"status": c.status, "approvals": [names[a.record] for a in c.approvals],
                               "approved_ms": c.approved_ms,
                               "shares": {format_hub_id(s.hub): [s.share, s.paid, s.owed] for s in c.shares},
                               "paid": c.paid, "owed": c.owed} for c in state.claims}
    assert got == want["claims"]


def test_the_scenarios_cover_every_status() -> None:
    assert set(DERIVED["credit"]["expected"]["statuses"].values()) == {"stands", "over-limit", "unfunded",
                                                                      "pending"}
    assert {c["status"] for c in DERIVED["fund"]["expected"]["claims"].values()} >= {
        "not-member", "over-capacity", "open", "approved", "paid"}
