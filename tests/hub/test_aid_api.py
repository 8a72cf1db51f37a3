"""The mutual-aid API (hub/aid_api.py, docs/api.md) and its local publish checks (hub/aid_checks.py) over a real
Store and a real aiohttp server on 127.0.0.1: routes, booking by the running hub, and bad input answered with a
4xx JSON error that stores nothing."""

from __future__ import annotations

import asyncio
from typing import Any

from protocol import format_hub_id

from . import test_api as _api
from .test_api import Hub, now_ms

hub = _api.hub  # the fixture: a real hub with a charter and a second founder, served on 127.0.0.1

HOUR = 60


def pay_body(to: bytes | str, minutes: int, memo: str = "Cover for a shift") -> dict[str, Any]:
    return {"payee": to if isinstance(to, str) else format_hub_id(to), "minutes": minutes, "memo": memo}


async def wait_for(check: Any, what: str, timeout_s: float = 10.0) -> None:
    for _ in range(int(timeout_s / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {timeout_s} s: {what}")


async def test_the_running_hub_books_payments_made_to_it(hub: Hub) -> None:
    body = {"payee": hub.home.key.public, "minutes": 90, "memo": "Cover"}
    payment = hub.ingest(hub.other, "credit-payment", body)

    def booked() -> bool:
        view = hub.store.credit_account(hub.home.key.public, now_ms())
        return view is not None and view["balance_minutes"] == 90

    await wait_for(booked, "the hub books the payment made to it")
    status, view = await hub.get(f"/api/v1/credit/{hub.home.hub_id}")
    assert status == 200
    (line,) = view["history"]
    assert (line["id"], line["direction"], line["status"]) == (payment.id_hex, "in", "stands")
    receipt = hub.store.get_record(bytes.fromhex(line["receipt"]))
    assert receipt is not None and receipt.author == hub.home.key.public


async def test_credit_routes(hub: Hub) -> None:
    status, data = await hub.publish({"kind": "credit-payment", "body": pay_body(hub.other.public, 2 * HOUR)})
    assert status == 200, data
    status, ledger = await hub.get("/api/v1/credit")
    assert status == 200 and ledger["limit_hours"] == 40.0 and ledger["payments"]["pending"] == 1
    status, mine = await hub.get(f"/api/v1/credit/{hub.home.hub_id}")
    assert (mine["hub_id"], mine["balance_hours"], mine["pending_out_minutes"]) == (hub.home.hub_id, 0.0, 120)
    assert (await hub.get("/api/v1/credit/hub_nope"))[0] == 400
    assert (await hub.get(f"/api/v1/credit/{format_hub_id(bytes(32))}"))[0] == 404
    assert (await hub.get("/api/v1/credit?x=1"))[0] == 400


async def test_fund_routes(hub: Hub) -> None:
    status, data = await hub.publish({"kind": "fund", "body": {"name": "Sick pay", "contribution": 2500,
                                                              "currency": "GBP", "approvals": 1, "notice_days": 30}})
    assert status == 200, data
    fund_id = data["id"]
    status, funds = await hub.get("/api/v1/funds")
    assert status == 200 and [f["id"] for f in funds["funds"]] == [fund_id]
    status, view = await hub.get(f"/api/v1/funds/{fund_id}")
    assert status == 200 and [m["hub"] for m in view["members"]] == [hub.home.hub_id] and view["claims"] == []
    assert (await hub.get("/api/v1/funds/nothex"))[0] == 400
    assert (await hub.get(f"/api/v1/funds/{'ab' * 32}"))[0] == 404
    assert (await hub.get(f"/api/v1/funds/{hub.charter.id_hex}"))[0] == 404


async def refused(hub: Hub, kind: str, body: dict[str, Any], status: int, *words: str) -> dict[str, Any]:
    before = hub.store.count()
    got, data = await hub.publish({"kind": kind, "body": body})
    assert got == status, (kind, body, got, data)
    assert set(data) == {"error", "detail"}
    for word in words:
        assert word in data["detail"], (word, data)
    assert hub.store.count() == before, "a refused record changed the store"
    return data


async def test_bad_payments_are_4xx_and_store_nothing(hub: Hub) -> None:
    me = hub.home.key.public
    await refused(hub, "credit-payment", pay_body(me, 30), 422, "cannot pay itself")
    await refused(hub, "credit-payment", pay_body(hub.outsider.public, 30), 422, "not a member")
    await refused(hub, "credit-payment", pay_body(hub.other.public, -30), 400, "minutes")
    await refused(hub, "credit-payment", pay_body(hub.other.public, 0), 400, "minutes")
    await refused(hub, "credit-payment", pay_body(hub.other.public, 10**9), 400, "minutes")
    data = await refused(hub, "credit-payment", pay_body(hub.other.public, 41 * HOUR), 422,
                         "balance is 0 h", "credit limit is -40 h", "pay at most 40 h")
    assert data["error"] == "invalid"
    # A pending payment of 39 h leaves room for 1 h more, and the message says so.
    assert (await hub.publish({"kind": "credit-payment", "body": pay_body(hub.other.public, 39 * HOUR)}))[0] == 200
    await refused(hub, "credit-payment", pay_body(hub.other.public, 2 * HOUR), 422, "39 h more not yet booked",
                  "pay at most 1 h")


async def test_bad_receipts_are_refused(hub: Hub) -> None:
    status, data = await hub.publish({"kind": "credit-payment", "body": pay_body(hub.other.public, 30)})
    assert status == 200
    await refused(hub, "credit-receipt", {"payment": data["id"]}, 422, "only the payee books")
    await refused(hub, "credit-receipt", {"payment": "cd" * 32}, 422, "no time-credit payment")
    await refused(hub, "credit-receipt", {"payment": hub.charter.id_hex}, 422, "is a charter")


async def test_bad_fund_records_are_refused(hub: Hub) -> None:
    me, other = hub.home.key.public, hub.other
    fund = hub.ingest(other, "fund", {"name": "Sick pay", "contribution": 1000, "currency": "GBP", "approvals": 1,
                                      "notice_days": 30})
    await refused(hub, "fund-claim", {"fund": fund.id_hex, "amount": 500, "reason": "Off sick"}, 422,
                  "only members of the fund")
    await refused(hub, "fund-leave", {"fund": fund.id_hex}, 422, "not a member of the fund")
    assert (await hub.publish({"kind": "fund-join", "body": {"fund": fund.id_hex}}))[0] == 200
    await refused(hub, "fund-join", {"fund": fund.id_hex}, 422, "already a member")
    await refused(hub, "fund-claim", {"fund": fund.id_hex, "amount": 1001, "reason": "Greedy"}, 422,
                  "at most one monthly contribution", "10.00 GBP")
    await refused(hub, "fund-claim", {"fund": fund.id_hex, "amount": -1, "reason": "Negative"}, 400, "amount")
    status, data = await hub.publish({"kind": "fund-claim", "body": {"fund": fund.id_hex, "amount": 800,
                                                                     "reason": "Off sick"}})
    assert status == 200
    mine = data["id"]
    await refused(hub, "fund-approval", {"claim": mine}, 422, "cannot approve its own claim")
    await refused(hub, "fund-payment", {"claim": mine, "amount": 100}, 422, "not approved", "0 of 1")
    theirs = hub.ingest(other, "fund-claim", {"fund": fund.id, "amount": 600, "reason": "Boiler"})
    assert (await hub.publish({"kind": "fund-approval", "body": {"claim": theirs.id_hex}}))[0] == 200
    await refused(hub, "fund-approval", {"claim": theirs.id_hex}, 422, "already approved")
    await refused(hub, "fund-payment", {"claim": theirs.id_hex, "amount": 601}, 422, "more than the whole claim")
    assert (await hub.publish({"kind": "fund-payment", "body": {"claim": theirs.id_hex, "amount": 600}}))[0] == 200
    await refused(hub, "fund-approval", {"claim": fund.id_hex}, 422, "is a fund, not a claim")
    status, view = await hub.get(f"/api/v1/funds/{fund.id_hex}")
    claims = {c["id"]: c for c in view["claims"]}
    assert (claims[theirs.id_hex]["status"], claims[theirs.id_hex]["paid"]) == ("paid", 600)
    assert claims[mine]["status"] == "open" and me not in {a["hub"] for a in claims[mine]["approvers"]}
