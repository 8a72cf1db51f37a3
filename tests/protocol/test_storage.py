"""The storage rule as pure functions (protocol/storage.py, docs/protocol.md §2.3)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from protocol import DEFAULT_LIMITS, Record, classify, eligible_authors, references, stored_set

from .factories import DAY, ID_X, T0, A, B, C, D, E, F, G, body, charter, endorse, make, revoke

SKEW = DEFAULT_LIMITS.max_future_skew_ms
NOW = T0 + DAY


def test_eligible_are_founders_assessors_and_the_closure_under_endorsements() -> None:
    ch = charter()  # founders A, B; assessor C
    assert eligible_authors(ch, []) == {A.public, B.public, C.public}
    chain = [endorse(A, D, ch), endorse(D, E, ch), endorse(F, G, ch)]  # F is not eligible: G is not either
    assert eligible_authors(ch, chain) == {A.public, B.public, C.public, D.public, E.public}
    # An assessor's endorsement sponsors too: the charter names it.
    assert G.public in eligible_authors(ch, [endorse(C, G, ch)])


def test_eligibility_ignores_revocations_and_other_associations() -> None:
    ch, other = charter(), charter(founders=[F])
    e = endorse(A, D, ch)
    # A revocation is not an endorsement: passing it changes nothing (eligible_authors never reads revocations).
    assert D.public in eligible_authors(ch, [e, revoke(A, e)])
    assert D.public not in eligible_authors(ch, [endorse(F, D, other)])
    assert D.public not in eligible_authors(ch, [make(A, "endorsement", {"subject": D.public}, T0, other.id)])


def test_eligibility_is_monotone_and_order_free() -> None:
    ch = charter()
    records = [endorse(A, D, ch), endorse(D, E, ch), endorse(E, F, ch), endorse(G, A, ch), endorse(F, G, ch)]
    expected = eligible_authors(ch, records)
    assert expected == {k.public for k in (A, B, C, D, E, F, G)}
    for seed in range(20):
        shuffled = records[:]
        random.Random(seed).shuffle(shuffled)
        assert eligible_authors(ch, shuffled) == expected
        for n in range(len(records)):
            assert eligible_authors(ch, shuffled[:n]) <= expected


def _verdict(record: Record, *, stored: dict[bytes, Record] | None = None, eligible: set[bytes] | None = None,
             ch: Record | None = None, **kw: Any) -> tuple[str, str | None]:
    ch = ch if ch is not None else charter()
    held = {ch.id: ch, **(stored or {})}
    allowed = eligible if eligible is not None else {A.public, B.public, C.public}
    v = classify(record, now_ms=kw.pop("now_ms", NOW), charter=kw.pop("charter", ch),
                 eligible=allowed.__contains__, kind_of=lambda i: held[i].kind if i in held else None, **kw)
    return v.action, v.reason


def test_each_row_of_the_verdict_table() -> None:
    ch = charter()
    offer = make(A, "offer", body("offer"), T0, ch.id)
    guide = make(B, "guide", body("guide", supersedes=offer.id), T0, ch.id)
    pledge = make(B, "pledge", body("pledge", offer=offer.id), T0, ch.id)
    assert _verdict(make(A, "pledge", body("pledge"), NOW + SKEW + 1, ch.id)) == ("defer", "future")
    assert _verdict(charter(founders=[F])) == ("refuse", "wrong-association")
    assert _verdict(ch, charter=None) == ("store", None)
    assert _verdict(ch, charter=None, expected=ID_X) == ("refuse", "wrong-association")
    assert _verdict(make(A, "profile", body("profile"), T0, ID_X), expected=ch.id) == ("refuse", "wrong-association")
    assert _verdict(make(A, "profile", body("profile"), T0, ch.id), charter=None) == ("defer", "missing-reference")
    assert _verdict(make(A, "profile", body("profile"), T0, ID_X)) == ("refuse", "wrong-association")
    applicant = make(D, "profile", body("profile"), T0, ch.id)
    assert _verdict(applicant, origin=D.public) == ("quarantine", "not-a-member")
    assert _verdict(applicant, origin=A.public) == ("defer", "not-a-member")
    assert _verdict(applicant) == ("defer", "not-a-member")
    assert _verdict(make(D, "guide", body("guide"), T0, ch.id), origin=D.public) == ("defer", "not-a-member")
    assert _verdict(pledge) == ("defer", "missing-reference")
    assert _verdict(pledge, stored={offer.id: offer}) == ("store", None)
    assert _verdict(guide, stored={offer.id: offer}) == ("refuse", "invalid")  # supersedes an offer
    wrong = make(A, "pledge", body("pledge", offer=guide.id), T0, ch.id)
    assert _verdict(wrong, stored={guide.id: guide}) == ("refuse", "invalid")
    assert _verdict(make(A, "revocation", body("revocation", target=ch.id), T0, ch.id)) == ("refuse", "invalid")


def test_no_effect_cases_are_stored() -> None:
    """Only the kind of a referenced record is checked; its author never is (docs/protocol.md §2.3)."""
    ch = charter()
    offer = make(A, "offer", body("offer"), T0, ch.id)
    other_offer = make(A, "offer", body("offer", title="Aprons"), T0, ch.id)
    guide = make(A, "guide", {k: v for k, v in body("guide").items() if k != "supersedes"}, T0, ch.id)
    pledge = make(B, "pledge", body("pledge", offer=other_offer.id), T0, ch.id)
    stored = {r.id: r for r in (offer, other_offer, guide, pledge)}
    cases = [
        make(B, "revocation", body("revocation", target=guide.id), T0, ch.id),  # another author's guide
        make(B, "offer-close", body("offer-close", offer=offer.id, pledges=[]), T0, ch.id),  # not the author
        make(A, "offer-close", body("offer-close", offer=offer.id, pledges=[pledge.id]), T0, ch.id),  # other offer
        make(B, "guide", body("guide", supersedes=guide.id), T0, ch.id),  # another author's guide
    ]
    for record in cases:
        assert _verdict(record, stored=stored) == ("store", None), record.kind


def test_a_close_waits_for_each_pledge_it_names_in_order() -> None:
    ch = charter()
    offer = make(A, "offer", body("offer"), T0, ch.id)
    p1, p2 = (make(B, "pledge", body("pledge", offer=offer.id, quantity=q), T0, ch.id) for q in (1, 2))
    close = make(A, "offer-close", body("offer-close", offer=offer.id, pledges=[p1.id, p2.id]), T0, ch.id)
    assert [rid for _, rid, _ in references(close)] == [offer.id, p1.id, p2.id]
    v = classify(close, now_ms=NOW, charter=ch, eligible=lambda h: True,
                 kind_of=lambda i: {offer.id: "offer", p1.id: "pledge"}.get(i))
    assert (v.action, v.wait_id) == ("defer", p2.id)


def test_future_waits_for_its_time() -> None:
    r = make(A, "pledge", body("pledge"), NOW + SKEW + 10, charter().id)
    v = classify(r, now_ms=NOW, charter=None, eligible=lambda h: True, kind_of=lambda i: None)
    assert (v.action, v.reason, v.wait_ms) == ("defer", "future", NOW + 10)


@pytest.mark.parametrize("seed", range(10))
def test_stored_set_is_a_fixed_point_independent_of_order(seed: int) -> None:
    ch = charter()
    offer = make(D, "offer", body("offer"), T0 + 5, ch.id)  # D becomes eligible only through E's chain
    records = [ch, endorse(A, E, ch, T0 + 1), endorse(E, D, ch, T0 + 2), offer,
               make(B, "pledge", body("pledge", offer=offer.id), T0 + 6, ch.id),
               make(F, "profile", body("profile"), T0 + 7, ch.id),  # never sponsored
               make(A, "pledge", body("pledge", offer=ID_X), T0 + 8, ch.id)]  # its offer never arrives
    expected = {r.id for r in records[:5]}
    shuffled = records[:]
    random.Random(seed).shuffle(shuffled)
    assert set(stored_set(shuffled, ch.id, now_ms=NOW)) == expected
    assert stored_set(shuffled, ID_X, now_ms=NOW) == {}
