"""The governance known answers of docs/protocol.md §9 ("Derived state"), recomputed from the vector records'
committed bytes: a change to the rules of §6.9–§6.11 fails here against the JSON another implementation uses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from protocol import (
    adopted_amendments,
    decode_record,
    format_hub_id,
    membership,
    proposal_result,
    review_state,
    terms_at,
)

DATA: dict[str, Any] = json.loads((Path(__file__).resolve().parents[2] / "docs" / "vectors" /
                                   "protocol-vectors.json").read_text(encoding="utf-8"))


def test_the_derived_state_vectors() -> None:
    now = DATA["now_ms"]
    records = {v["name"]: decode_record(bytes.fromhex(v["hex"]), now_ms=now) for v in DATA["records"]}
    every = list(records.values())
    charter, expected = records["charter"], DATA["governance"]
    amendments = adopted_amendments(charter, reversed(every))
    assert [{"proposal": a.record_id.hex(), "effective_ms": a.effective_ms} for a in amendments] == \
        expected["amendments"]
    result = proposal_result(records["proposal"], charter, amendments=amendments, ballots=every,
                             delegations=every, closes=every, endorsements=every, revocations=every, now_ms=now)
    assert (result.status, result.outcome, result.quorum_met) == (
        expected["proposal"]["status"], expected["proposal"]["outcome"], expected["proposal"]["quorum_met"])
    assert [[t.option, t.votes, t.weight] for t in result.options] == [
        [o["option"], o["votes"], o["weight"]] for o in expected["proposal"]["options"]]
    assert [(format_hub_id(v.hub), v.option, format_hub_id(v.proxy) if v.proxy else None) for v in result.votes] \
        == [(v["hub"], v["option"], v["proxy"]) for v in expected["proposal"]["roll_call"]]
    terms = terms_at(charter, amendments, now)
    assert terms.reviews_needed == expected["terms_at_now"]["reviews_needed"]
    assert {s: sorted(format_hub_id(h) for h in hubs) for s, hubs in terms.schemes.items()} == \
        expected["terms_at_now"]["schemes"]
    members = membership(charter, every, every, terms=terms)
    assert {format_hub_id(h): members.classes[h] for h in members.members} == expected["members_at_now"]
    review = review_state(records["guide"], every, every, members.members, terms.reviews_needed)
    assert review.reviewed is expected["guide_reviewed"]["reviewed"]
