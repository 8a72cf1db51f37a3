"""protocol/charter.py: the terms a charter sets, and the terms in force after amendments."""

from __future__ import annotations

from protocol import build_record
from protocol.charter import DEFAULT_CLASS, Amendment, base_terms, terms_at
from tests.protocol.factories import T0, A, B, C, body


def test_base_terms_read_the_round_two_fields() -> None:
    terms = base_terms(build_record(A, bytes(32), "charter", body("charter"), T0))
    assert terms.classes == {"worker-coop": 2, "council": 0}
    # B has no class in the charter: it gets the first class listed (not the first by name, "council").
    assert terms.founder_classes == {A.public: "worker-coop", B.public: "worker-coop"}
    assert terms.default_class == "worker-coop"
    assert terms.assessors("care-quality") == frozenset({C.public})
    assert terms.assessors("unknown") == frozenset()
    assert (terms.reviews_needed, terms.credit_limit_minutes, terms.since_ms) == (2, 2400, T0)


def test_a_round_one_charter_has_one_class_of_weight_one() -> None:
    b = body("charter")
    for name in ("classes", "founder_classes", "reviews_needed", "credit_limit_minutes"):
        del b[name]
    terms = base_terms(build_record(A, bytes(32), "charter", b, T0))
    assert terms.classes == {DEFAULT_CLASS: 1}
    assert set(terms.founder_classes.values()) == {DEFAULT_CLASS}


def test_amendments_apply_from_their_close_in_order_whatever_the_input_order() -> None:
    charter = build_record(A, bytes(32), "charter", body("charter"), T0)
    first = Amendment(T0 + 10, b"\x02" * 32, {"credit_limit_minutes": 600})
    second = Amendment(T0 + 20, b"\x01" * 32, {"credit_limit_minutes": 1200, "reviews_needed": 3})
    assert terms_at(charter, [second, first], T0 + 5).credit_limit_minutes == 2400
    at_15 = terms_at(charter, [second, first], T0 + 15)
    assert (at_15.credit_limit_minutes, at_15.reviews_needed, at_15.since_ms) == (600, 2, T0 + 10)
    later = terms_at(charter, [first, second], T0 + 20)
    assert (later.credit_limit_minutes, later.reviews_needed) == (1200, 3)
    assert later.amended_by == (first.record_id, second.record_id)
