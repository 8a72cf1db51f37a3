"""Time credits across real hubs on 127.0.0.1 (harness: tests/federation/network.py): a payment published on
one hub is booked by the payee's hub, final after the settle delay and the same on every hub; a payer that
double-spends on both sides of a partition is resolved identically by every hub once the partition heals.

Each test prints its seed (every hub's Random is seeded from it).
"""

from __future__ import annotations

import os
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from protocol import build_record
from protocol.credit import ledger, limit_from_charter

from .network import Hub, Network, eventually, lacking, now_ms

SEED = int(os.environ.get("COOPHUB_TEST_SEED", random.SystemRandom().randrange(2**32)))
#: A booked payment is final after this long (the default is 15 minutes: twice the clock skew plus gossip).
SETTLE_MS = 1500
HOUR = 60


@pytest.fixture
async def net(tmp_path: Path) -> AsyncIterator[Network]:
    print(f"seed: {SEED} (replay with COOPHUB_TEST_SEED={SEED})")
    network = Network(tmp_path, SEED)
    try:
        yield network
    finally:
        await network.close()


def hubs(net: Network, *names: str) -> list[Hub]:
    out = []
    for name in names:
        hub = net.hub(name)
        hub.home.config.limits["credit_settle_ms"] = SETTLE_MS
        hub.home.save_config()
        out.append(hub)
    return out


def account(hub: Hub, of: Hub) -> dict[str, Any]:
    assert hub.store is not None
    view = hub.store.credit_account(of.key.public, now_ms())
    assert view is not None
    return view


def ledger_view(hub: Hub) -> tuple[Any, ...]:
    """What a hub's ledger says: every payment's status, every balance, the flagged hubs."""
    assert hub.store is not None
    data = hub.store.credit_accounts(now_ms())
    statuses = sorted((line["id"], line["status"]) for a in data["accounts"]
                      for line in hub.store.credit_account(bytes.fromhex(_hex(a["hub_id"])), now_ms())["history"]
                      if line["direction"] == "out")
    return (tuple(statuses), tuple((a["hub_id"], a["balance_minutes"]) for a in data["accounts"]),
            tuple(data["flagged"]), data["total_minutes"])


def _hex(hub_id: str) -> str:
    from protocol import parse_hub_id

    return parse_hub_id(hub_id).hex()


async def test_a_payment_is_booked_final_and_the_same_on_every_hub(net: Network) -> None:
    a, b, c = hubs(net, "pay-a", "pay-b", "pay-c")
    net.found([a, b, c])
    net.link(a, b)
    net.link(b, c)  # a reaches c only through b
    await net.start()
    payment = await a.publish("credit-payment", {"payee": c.hub_id, "minutes": 90, "memo": "Cover for a shift"})
    await eventually(lambda: lacking([a, b, c], [payment]), "the payment reaches every hub")

    def booked_everywhere() -> str | None:
        views = {h.name: account(h, a)["history"] for h in (a, b, c)}
        states = {name: [(line["id"], line["status"], line["final"]) for line in lines]
                  for name, lines in views.items()}
        want = [(payment, "stands", True)]
        return None if all(s == want for s in states.values()) else str(states)

    # c's hub books it by itself; once the booking is SETTLE_MS old every hub calls it final.
    await eventually(booked_everywhere, "the payee books the payment and it is final on every hub")
    for hub in (a, b, c):
        assert (account(hub, a)["balance_minutes"], account(hub, c)["balance_minutes"]) == (-90, 90)
    receipt = account(c, c)["history"][0]["receipt"]
    assert receipt is not None and c.store is not None
    record = c.store.get_record(bytes.fromhex(receipt))
    assert record is not None and record.kind == "credit-receipt" and record.author == c.key.public
    # The API shows the same, and a payment past the limit is refused on the payer's hub with balance and limit.
    status, data = await a.try_publish({"kind": "credit-payment",
                                        "body": {"payee": b.hub_id, "minutes": 40 * HOUR, "memo": "Too much"}})
    assert status == 422 and "balance is -1.5 h" in data["detail"] and "-40 h" in data["detail"]
    status, data = await a.try_publish({"kind": "credit-payment",
                                        "body": {"payee": a.hub_id, "minutes": 10, "memo": "Myself"}})
    assert status == 422 and "cannot pay itself" in data["detail"]


async def test_a_double_spend_across_a_partition_resolves_identically_after_heal(net: Network) -> None:
    """The payer's key signs on both sides of a partition (its hub on the left; a second machine whose records
    reach the right side through a right-side hub's API). Each side's payees book what they see. After the
    partition heals every hub holds the same records, the same standing set, the same balances and the same
    flag, its standing debt stays within the limit, and the result is protocol.credit's rule over all of them."""
    payer, left_payee, right0, right1 = hubs(net, "payer", "left-payee", "right0", "right1")
    charter = net.found([payer, left_payee, right0, right1])
    net.link(payer, left_payee)
    net.link(right0, right1)
    proxies = []
    for x, y in ((left_payee, right0), (payer, right1)):
        to_y, to_x = await net.proxy(y), await net.proxy(x)
        x.add_peers(to_y.url)
        y.add_peers(to_x.url)
        proxies += [to_y, to_x]
    await net.start()
    await net.converged()
    for proxy in proxies:
        proxy.cut()

    # Left: 30 hours to left-payee, through the payer's own hub (its local check sees 40 h of room).
    left = [await payer.publish("credit-payment", {"payee": left_payee.hub_id, "minutes": 30 * HOUR,
                                                   "memo": "Left: cover for a fortnight"})]
    # Right: the payer's second machine signs 20 + 15 hours to right0 and right1; a right-side hub relays them.
    association = charter.id
    right = []
    for payee, minutes in ((right0, 20 * HOUR), (right1, 15 * HOUR)):
        record = build_record(payer.key, association, "credit-payment",
                              {"payee": payee.key.public, "minutes": minutes, "memo": f"Right: {minutes} min"},
                              now_ms())
        status, data = await right0.try_publish({"record": record.raw.hex()})
        assert status == 200, data
        right.append(record.id_hex)

    def booked_on(side: list[Hub], ids: list[str], payees: list[Hub]) -> str | None:
        gaps = lacking(side, ids)
        if gaps:
            return gaps
        for payee in payees:
            lines = {line["id"]: line for line in account(payee, payee)["history"]}
            if any(lines.get(i, {}).get("receipt") is None for i in ids if i in lines):
                return f"{payee.name} has not booked yet"
        return None

    await eventually(lambda: booked_on([payer, left_payee], left, [left_payee]), "the left side books its payment")
    await eventually(lambda: booked_on([right0, right1], right, [right0, right1]), "the right side books its two")
    for hub in (payer, left_payee, right0, right1):
        assert not account(hub, payer)["flagged"], f"{hub.name} flags the payer before it holds both sides"

    for proxy in proxies:
        proxy.restore()
    await net.converged()
    views = {h.name: ledger_view(h) for h in (payer, left_payee, right0, right1)}
    assert len(set(views.values())) == 1, views
    statuses, balances, flagged, total = views["payer"]
    assert total == 0 and flagged == (payer.hub_id,)
    by_id = dict(statuses)
    standing = [i for i in left + right if by_id[i] == "stands"]
    assert [by_id[i] for i in left + right].count("over-limit") >= 1
    assert dict(balances)[payer.hub_id] >= -40 * HOUR

    # The same answer as the pure rule over every record the hubs hold.
    store = payer.store
    assert store is not None
    records = [r for r in (store.get_record(i) for _, i in store.sync_items()) if r is not None]
    led = ledger([r for r in records if r.kind == "credit-payment"],
                 [r for r in records if r.kind == "credit-receipt"], limit_from_charter(charter))
    assert sorted(e.booking.payment.hex() for e in led.entries if e.status == "stands") == sorted(standing)
    assert led.flagged == {payer.key.public}
