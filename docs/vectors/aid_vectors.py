"""Mutual-aid test vectors, used by generate.py: one record of each mutual-aid kind (§9), and two derived-state
scenarios — a time-credit ledger (§6.6) and a solidarity fund (§6.7) — as signed records with the answers every
implementation must compute from them, whatever order it reads them in.

Deterministic like the rest of generate.py: fixed seeds, fixed times, deterministic Ed25519.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from protocol import HubKey, Record, build_record, format_hub_id
from protocol.credit import ledger
from protocol.fund import DAY_MS, fund_state

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DAY = 86_400_000
MIN = 60_000
#: The credit scenario's limit: 10 hours, constant (a charter sets it with credit_limit_minutes; §6.6).
LIMIT_MINUTES = 600


def record_specs(h: dict[int, bytes]) -> list[tuple[str, int, str, dict[str, Any], int, str]]:
    """One record of each mutual-aid kind, in generate.py's form (name, author hub, kind, body, created_ms,
    association); ``"@name"`` names another record's id."""
    return [
        ("credit-payment", 1, "credit-payment", {
            "payee": h[2], "minutes": 90, "memo": "Cover for two evening visits in Bangor.",
        }, T0 + 8 * DAY, "charter"),
        ("credit-receipt", 2, "credit-receipt", {"payment": "@credit-payment"}, T0 + 8 * DAY + MIN, "charter"),
        ("fund", 1, "fund", {
            "name": "Sick pay circle",
            "description": "Gifts to a member co-op whose carers are off sick.",
            "contribution": 2500, "currency": "GBP", "approvals": 2, "notice_days": 30,
        }, T0 + 9 * DAY, "charter"),
        ("fund-join", 2, "fund-join", {"fund": "@fund"}, T0 + 10 * DAY, "charter"),
        ("fund-claim", 2, "fund-claim", {
            "fund": "@fund", "amount": 2500, "reason": "Two carers off sick for three weeks.",
        }, T0 + 11 * DAY, "charter"),
        ("fund-approval", 1, "fund-approval", {"claim": "@fund-claim"}, T0 + 12 * DAY, "charter"),
        ("fund-payment", 1, "fund-payment", {
            "claim": "@fund-claim", "amount": 2500, "reference": "SICK-2026-01",
        }, T0 + 13 * DAY, "charter"),
        ("fund-leave", 2, "fund-leave", {"fund": "@fund"}, T0 + 14 * DAY, "charter"),
    ]


Build = Callable[[str, int, str, dict[str, Any], int], Record]


def _builder(keys: dict[int, HubKey], association: bytes) -> tuple[Build, dict[str, Record]]:
    built: dict[str, Record] = {}

    def build(name: str, author: int, kind: str, body: dict[str, Any], at: int) -> Record:
        resolved = {k: built[v[1:]].id if isinstance(v, str) and v.startswith("@") else v for k, v in body.items()}
        built[name] = build_record(keys[author], association, kind, resolved, at)
        return built[name]

    return build, built


def credit_scenario(keys: dict[int, HubKey], association: bytes) -> dict[str, Any]:
    """Payments among hubs 1–4 with a 10-hour limit: booking order, over-limit, unfunded, pending, and receipts
    that do not count."""
    build, built = _builder(keys, association)
    h = {i: k.public for i, k in keys.items()}
    day1 = T0 + DAY

    def pay(name: str, payer: int, payee: int, minutes: int, at: int, booked: int | None) -> None:
        build(name, payer, "credit-payment", {"payee": h[payee], "minutes": minutes, "memo": name}, at)
        if booked is not None:
            build(f"{name}-receipt", payee, "credit-receipt", {"payment": f"@{name}"}, booked)

    pay("p1", 1, 2, 360, day1, day1 + 1 * MIN)
    pay("p2", 1, 3, 180, day1 + 10 * MIN, day1 + 11 * MIN)
    pay("p3", 1, 4, 120, day1 - 60 * MIN, day1 + 20 * MIN)  # dated first, booked third: over the limit
    pay("p4", 2, 1, 60, day1 + 30 * MIN, day1 + 30 * MIN)
    pay("p5", 1, 3, 60, day1 + 40 * MIN, day1 + 40 * MIN)
    pay("p6", 4, 2, 650, day1 + 50 * MIN, day1 + 51 * MIN)  # over only because p3 did not stand: unfunded
    pay("p7", 2, 3, 30, day1 + 60 * MIN, None)  # never booked: pending
    build("p7-receipt-by-hub-1", 1, "credit-receipt", {"payment": "@p7"}, day1 + 61 * MIN)  # not the payee
    build("p1-second-receipt", 2, "credit-receipt", {"payment": "@p1"}, day1 + 90 * MIN)  # later: changes nothing
    records = list(built.values())
    led = ledger([r for r in records if r.kind == "credit-payment"],
                 [r for r in records if r.kind == "credit-receipt"], lambda at: LIMIT_MINUTES)
    names = {r.id: n for n, r in built.items()}
    statuses = {names[e.booking.payment]: e.status for e in led.entries} | {names[p.id]: "pending"
                                                                          for p in led.pending}
    return {
        "limit_minutes": LIMIT_MINUTES,
        "records": [{"name": n, "kind": r.kind, "hex": r.raw.hex(), "id": r.id_hex} for n, r in built.items()],
        "expected": {
            "order": [names[e.booking.payment] for e in led.entries],
            "statuses": dict(sorted(statuses.items())),
            "balances": {format_hub_id(hub): p.balance for hub, p in sorted(led.positions.items()) if p.balance},
            "flagged": sorted(format_hub_id(hub) for hub in led.flagged),
        },
    }


def fund_scenario(keys: dict[int, HubKey], association: bytes) -> dict[str, Any]:
    """A fund of hubs 1–4 with 2 approvals and 30 days' notice: approvals that do not count, a member within its
    notice sharing a claim, an uneven split, payments, and claims that are ignored."""
    build, built = _builder(keys, association)
    fund = build("fund", 1, "fund", {"name": "Sick pay circle", "contribution": 2500, "currency": "GBP",
                                     "approvals": 2, "notice_days": 30}, T0)
    for i in (2, 3, 4):
        build(f"join-{i}", i, "fund-join", {"fund": "@fund"}, T0 + i * MIN)
    build("leave-4", 4, "fund-leave", {"fund": "@fund"}, T0 + 5 * DAY)  # a member until day 35
    build("claim-2", 2, "fund-claim", {"fund": "@fund", "amount": 5000, "reason": "Off sick"}, T0 + 10 * DAY)
    build("approve-2-own", 2, "fund-approval", {"claim": "@claim-2"}, T0 + 10 * DAY + MIN)  # the claimant
    build("approve-3", 3, "fund-approval", {"claim": "@claim-2"}, T0 + 11 * DAY)
    build("approve-3-again", 3, "fund-approval", {"claim": "@claim-2"}, T0 + 11 * DAY + MIN)  # counts once
    build("approve-1", 1, "fund-approval", {"claim": "@claim-2"}, T0 + 12 * DAY)  # the second: approved
    build("pay-3", 3, "fund-payment", {"claim": "@claim-2", "amount": 1667}, T0 + 13 * DAY)
    build("pay-1", 1, "fund-payment", {"claim": "@claim-2", "amount": 1000}, T0 + 13 * DAY + MIN)
    build("claim-4", 4, "fund-claim", {"fund": "@fund", "amount": 100, "reason": "After leaving"}, T0 + 40 * DAY)
    build("claim-3-big", 3, "fund-claim", {"fund": "@fund", "amount": 7501, "reason": "Too much"},
          T0 + 20 * DAY)  # three others × 25.00 = 75.00 at most
    build("claim-1", 1, "fund-claim", {"fund": "@fund", "amount": 3000, "reason": "Flood"}, T0 + 21 * DAY)
    for i in (2, 3):
        build(f"approve-1-by-{i}", i, "fund-approval", {"claim": "@claim-1"}, T0 + 22 * DAY + i)
    for i in (2, 3, 4):  # hub 4 is still within its notice: it holds a share and pays it
        build(f"pay-1-by-{i}", i, "fund-payment", {"claim": "@claim-1", "amount": 1000}, T0 + 23 * DAY + i)
    build("claim-3", 3, "fund-claim", {"fund": "@fund", "amount": 100, "reason": "Boiler"}, T0 + 24 * DAY)
    build("approve-3-by-1", 1, "fund-approval", {"claim": "@claim-3"}, T0 + 25 * DAY)  # one of two: open
    records = list(built.values())
    now = T0 + 60 * DAY
    by_kind = {k: [r for r in records if r.kind == k] for k in
               ("fund-join", "fund-leave", "fund-claim", "fund-approval", "fund-payment")}
    state = fund_state(fund, by_kind["fund-join"], by_kind["fund-leave"], by_kind["fund-claim"],
                       by_kind["fund-approval"], by_kind["fund-payment"], now)
    names = {r.id: n for n, r in built.items()}
    return {
        "now_ms": now,
        "records": [{"name": n, "kind": r.kind, "hex": r.raw.hex(), "id": r.id_hex} for n, r in built.items()],
        "expected": {
            "members": [{"hub": format_hub_id(m.hub), "state": m.state} for m in state.members],
            "claims": {names[c.claim.id]: {
                "status": c.status,
                "approvals": [names[a.record] for a in c.approvals],
                "approved_ms": c.approved_ms,
                "shares": {format_hub_id(s.hub): [s.share, s.paid, s.owed] for s in c.shares},
                "paid": c.paid, "owed": c.owed,
            } for c in state.claims},
        },
    }


def scenarios(keys: dict[int, HubKey], association: bytes) -> dict[str, Any]:
    assert DAY == DAY_MS
    return {"credit": credit_scenario(keys, association), "fund": fund_scenario(keys, association)}


def _short(hub_id: str, hubs: dict[str, int]) -> str:
    return f"hub {hubs[hub_id]}"


def render(data: dict[str, Any], hub_ids: list[str]) -> str:
    """The scenarios as tables for docs/protocol.md §9 (the signed records are in protocol-vectors.json)."""
    hubs = {hub_id: i for i, hub_id in enumerate(hub_ids, 1)}
    credit, fund = data["credit"], data["fund"]
    out = ["#### Time-credit ledger", "",
           f"`derived.credit` in protocol-vectors.json: {len(credit['records'])} signed records among hubs 1–4 "
           f"(each payment's memo is its name), a constant limit of {credit['limit_minutes']} minutes. Read in "
           "any order, they give:", "",
           "| payment | status |", "|---|---|"]
    out += [f"| {name} | `{status}` |" for name, status in credit["expected"]["statuses"].items()]
    out += ["", "Ledger order: " + ", ".join(credit["expected"]["order"]) + ". Balances (minutes): "
            + ", ".join(f"{_short(h, hubs)} {b:+d}" for h, b in
                        sorted(credit["expected"]["balances"].items(), key=lambda item: hubs[item[0]]))
            + "; every other hub 0. Flagged: " + ", ".join(_short(h, hubs) for h in credit["expected"]["flagged"])
            + ".", "",
            "#### Solidarity fund", "",
            f"`derived.fund` in protocol-vectors.json: {len(fund['records'])} signed records, read at now_ms "
            f"{fund['now_ms']}. Members then: "
            + ", ".join(f"{_short(m['hub'], hubs)} ({m['state']})" for m in
                        sorted(fund["expected"]["members"], key=lambda m: hubs[m["hub"]])) + ".", "",
            "| claim | status | counting approvals | shares (share / paid / owed, minor units) | paid | owed |",
            "|---|---|---|---|---|---|"]
    for name, c in fund["expected"]["claims"].items():
        shares = "; ".join(f"{_short(h, hubs)}: {s} / {p} / {o}" for h, (s, p, o) in
                           sorted(c["shares"].items(), key=lambda item: hubs[item[0]])) or "—"
        out.append(f"| {name} | `{c['status']}` | {', '.join(c['approvals']) or '—'} | {shares} | {c['paid']} | "
                   f"{c['owed']} |")
    return "\n".join(out) + "\n"
