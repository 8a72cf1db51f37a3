"""`coophub credit …` and `coophub fund …` end to end, through subprocesses on temporary homes (docs/cli.md).

Records move between hubs with `export --format jsonl` / `import`, so no hub runs: the payee books payments with
`credit accept` (a running hub does so by itself, tests/federation/test_aid_network.py). Every bad input prints
one error line, exits non-zero and stores nothing.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .test_cli import assert_one_error_line, coophub, ok, ok_json


@dataclass
class Trio:
    root: Path
    a: Path
    b: Path
    c: Path
    ids: dict[str, str] = field(default_factory=dict)

    def move(self, source: Path, *targets: Path) -> None:
        dump = self.root / "dump.jsonl"
        ok("export", "--format", "jsonl", "--output", str(dump), home=source)
        for target in targets:
            ok_json("import", str(dump), home=target)


@pytest.fixture(scope="module")
def trio(tmp_path_factory: pytest.TempPathFactory) -> Trio:
    """Three founders; A pays B 1.5 h and B books it; A starts a fund that B and C join; C claims 40.00, which
    A approves (one approval needed) and B pays 20.00 toward."""
    root = tmp_path_factory.mktemp("aid")
    t = Trio(root, root / "a", root / "b", root / "c")
    t.ids["A"] = ok("init", "--name", "Alpha Care", home=t.a)
    t.ids["B"] = ok("init", "--name", "Beta Meals", home=t.b)
    t.ids["C"] = ok("init", "--name", "Gamma Living", home=t.c)
    t.ids["assoc"] = ok("charter", "create", "--association", "Care Co-ops", "--founder", t.ids["B"], "--founder",
                        t.ids["C"], home=t.a)
    for home in (t.b, t.c):
        ok("join", t.ids["assoc"], "--peer", "http://127.0.0.1:9", home=home)
    t.ids["pay"] = ok_json("credit", "pay", t.ids["B"], "1.5", "--memo", "Cover for a night shift", home=t.a)["id"]
    t.ids["fund"] = ok("fund", "create", "--name", "Sick pay circle", "--contribution", "25.00", "--currency", "gbp",
                       "--approvals", "1", "--notice-days", "30", home=t.a)
    t.move(t.a, t.b, t.c)
    booked = ok_json("credit", "accept", home=t.b)
    assert booked["payments"] == [t.ids["pay"]]
    ok("fund", "join", t.ids["fund"], home=t.b)
    t.move(t.b, t.c)
    ok("fund", "join", t.ids["fund"], home=t.c)
    t.ids["claim"] = ok("fund", "claim", t.ids["fund"], "--amount", "40.00", "--reason", "Two carers off sick",
                        home=t.c)
    t.move(t.c, t.a, t.b)
    t.ids["approval"] = ok("fund", "approve", t.ids["claim"], home=t.a)
    t.move(t.a, t.b, t.c)
    t.ids["paid"] = ok("fund", "paid", t.ids["claim"], "--amount", "20.00", "--reference", "SICK-1", home=t.b)
    t.move(t.b, t.a, t.c)
    return t


def test_balance_json_has_the_contract_fields_and_balances_sum_to_zero(trio: Trio) -> None:
    a = ok_json("credit", "balance", home=trio.a)
    b = ok_json("credit", "balance", trio.ids["B"], home=trio.a)
    assert {"hub_id", "balance_hours", "limit_hours"} <= set(a)
    assert (a["hub_id"], a["balance_hours"], a["limit_hours"]) == (trio.ids["A"], -1.5, 40.0)
    assert (b["balance_minutes"], a["balance_minutes"] + b["balance_minutes"]) == (90, 0)
    text = ok("credit", "balance", home=trio.a)
    assert "-1.5 h" in text and "down to -40 h" in text and "38.5 h" in text


def test_history_shows_the_booked_payment(trio: Trio) -> None:
    history = ok_json("credit", "history", trio.ids["B"], home=trio.c)["history"]
    assert [(h["id"], h["direction"], h["status"], h["memo"]) for h in history] == [
        (trio.ids["pay"], "in", "stands", "Cover for a night shift")]
    assert "Cover for a night shift" in ok("credit", "history", home=trio.a)


def test_fund_status_json_has_members_claims_approvals_paid_owed(trio: Trio) -> None:
    view = ok_json("fund", "status", trio.ids["fund"], home=trio.c)
    assert {m["hub"] for m in view["members"]} == {trio.ids["A"], trio.ids["B"], trio.ids["C"]}
    (claim,) = view["claims"]
    assert {"id", "status", "approvals", "paid", "owed"} <= set(claim)
    assert (claim["id"], claim["status"], claim["approvals"]) == (trio.ids["claim"], "approved", 1)
    assert (claim["paid"], claim["owed"]) == (2000, 2000)
    assert {s["hub"]: (s["share"], s["paid"], s["owed"]) for s in claim["shares"]} == {
        trio.ids["A"]: (2000, 0, 2000), trio.ids["B"]: (2000, 2000, 0)}
    text = ok("fund", "status", trio.ids["fund"], home=trio.a)
    assert "Sick pay circle" in text and "approved" in text and "20.00 GBP" in text
    assert trio.ids["fund"] in ok("fund", "list", home=trio.b)


def _records(home: Path) -> int:
    return int(ok_json("status", home=home)["records"])


def test_bad_input_is_one_line_and_stores_nothing(trio: Trio) -> None:
    ids = trio.ids
    outsider = ok("init", "--name", "Outsider", home=trio.root / "outsider")
    unknown = "ab" * 32
    cases = {
        trio.a: [
            f"credit pay {ids['A']} 1 --memo self",  # paying oneself
            f"credit pay {outsider} 1 --memo stranger",  # paying a non-member
            f"credit pay {ids['B']} -2 --memo negative",
            f"credit pay {ids['B']} 0 --memo nothing",
            f"credit pay {ids['B']} 0.01 --memo seconds",
            f"credit pay {ids['B']} 99999999 --memo absurd",
            f"credit pay {ids['B']} lots --memo words",
            f"credit pay {ids['B']} 39 --memo past-the-limit",
            f"credit pay {ids['B']} 1",  # no memo
            "credit pay nothub 1 --memo x",
            f"credit balance {outsider}",
            f"credit accept {unknown}",
            f"credit accept {ids['pay']}",  # A is the payer, not the payee
            "fund create --name N --contribution -5 --currency GBP --approvals 1",
            "fund create --name N --contribution 5 --currency pounds --approvals 1",
            "fund create --name N --contribution 5 --currency GBP --approvals 0",
            f"fund join {ids['fund']}",  # already a member
            f"fund join {unknown}",
            f"fund claim {ids['fund']} --amount 51.00 --reason greedy",  # over one contribution from each
            f"fund claim {ids['fund']} --amount -3 --reason negative",
            f"fund approve {ids['claim']}",  # twice
            f"fund approve {ids['fund']}",  # not a claim
            f"fund paid {ids['claim']} --amount 99999.00",  # more than the whole claim
            f"fund status {unknown}",
        ],
        trio.c: [
            f"fund approve {ids['claim']}",  # one's own claim
        ],
    }
    for home, lines in cases.items():
        before = _records(home)
        for line in lines:
            args = tuple(shlex.split(line))
            assert_one_error_line(coophub(*args, home=home), args)
        assert _records(home) == before
    past = coophub("credit", "pay", ids["B"], "39", "--memo", "past-the-limit", home=trio.a)
    assert "balance is -1.5 h" in past.stderr and "credit limit is -40 h" in past.stderr


def test_a_payment_to_an_unapproved_claim_is_refused(trio: Trio) -> None:
    claim = ok("fund", "claim", trio.ids["fund"], "--amount", "10.00", "--reason", "Boiler", home=trio.a)
    trio.move(trio.a, trio.b)
    before = _records(trio.b)
    result = coophub("fund", "paid", claim, "--amount", "5.00", home=trio.b)
    assert_one_error_line(result, ("paid unapproved",))
    assert "not approved" in result.stderr and _records(trio.b) == before
