"""The association's collective voice across real hubs on 127.0.0.1 (helpers: tests/federation/network.py).

- a proposal published on one hub, ballots on three others and a proxy on a fifth: every hub computes the
  same live tally, and after the proposer's close the same final result;
- an amendment adopted on one side of a partition: the other side does not have it while cut, and has it in
  force — with a mark of the new scheme valid everywhere — once the partition heals.

Voting needs real time to pass (a closing time a few seconds ahead); every wait is a bounded poll.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hub.proposals import proposal_view

from .network import Hub, Network, eventually, lacking, now_ms

SEED = int(os.environ.get("COOPHUB_TEST_SEED", random.SystemRandom().randrange(2**32)))
#: Ballots must be signed before the closing time: far enough ahead for a loaded 2-core machine.
VOTING_S = 6.0


@pytest.fixture
async def net(tmp_path: Path) -> AsyncIterator[Network]:
    print(f"seed: {SEED} (replay with COOPHUB_TEST_SEED={SEED})")
    network = Network(tmp_path, SEED)
    try:
        yield network
    finally:
        await network.close()


def result(hub: Hub, proposal_id: str) -> dict[str, Any]:
    assert hub.store is not None
    view = hub.store.view(proposal_view, bytes.fromhex(proposal_id), now_ms())
    assert view is not None, f"{hub.name} lacks the proposal"
    return {k: view[k] for k in ("status", "outcome", "options", "roll_call", "quorum", "close_id", "amendment")}


def same_result(hubs: list[Hub], proposal_id: str, want: dict[str, Any]) -> str | None:
    """None when every hub's result has the fields of ``want`` and all agree, else what differs."""
    results = {h.name: result(h, proposal_id) for h in hubs}
    wrong = {name: {k: r[k] for k in want if r[k] != want[k]} for name, r in results.items()}
    wrong = {name: diff for name, diff in wrong.items() if diff}
    if wrong:
        return str(wrong)
    first = next(iter(results.values()))
    return None if all(r == first for r in results.values()) else "hubs disagree"


async def close(hub: Hub, proposal_id: str) -> str:
    """The proposer's close, naming what its own tally counts (as `coophub close-proposal` does)."""
    view = result(hub, proposal_id)
    ballots = sorted({v["ballot"] for v in view["roll_call"]})
    delegations = sorted({v["delegation"] for v in view["roll_call"] if v["delegation"]})
    return await hub.publish("proposal-close", {"proposal": proposal_id, "ballots": ballots,
                                                "delegations": delegations})


async def wait_until(ms: int) -> None:
    await asyncio.sleep(max(0.0, (ms - now_ms()) / 1000) + 0.05)


async def test_a_proposal_on_one_hub_ballots_on_others_same_result_everywhere(net: Network) -> None:
    hubs = [net.hub(f"vote{i}") for i in range(5)]
    net.found(hubs)
    for left, right in zip(hubs, hubs[1:], strict=False):
        net.link(left, right)  # a line: what hub 0 publishes reaches hub 4 through three others
    await net.start()
    closes = now_ms() + int(VOTING_S * 1000)
    pid = await hubs[0].publish("proposal", {
        "title": "Buy a shared minibus", "options": ["yes", "no", "abstain"], "abstain": "abstain",
        "rule": "two-thirds", "quorum": 60, "quorum_of": "members", "closes": closes})
    await eventually(lambda: lacking(hubs, [pid]), "the proposal reaches every hub")
    votes = [await hubs[1].publish("ballot", {"proposal": pid, "option": "yes"}),
             await hubs[2].publish("ballot", {"proposal": pid, "option": "no"}),
             await hubs[3].publish("ballot", {"proposal": pid, "option": "abstain"}),
             await hubs[4].publish("delegation", {"to": hubs[1].hub_id, "proposal": pid})]
    await eventually(lambda: lacking(hubs, votes), "every ballot and the proxy reach every hub")
    live = {"status": "open", "outcome": "passed", "close_id": None}  # yes 2 (one by proxy) of 3 decisive
    await eventually(lambda: same_result(hubs, pid, live), "every hub shows the same live tally")
    tally = result(hubs[0], pid)
    assert [(o["option"], o["votes"]) for o in tally["options"]] == [("yes", 2), ("no", 1), ("abstain", 1)]
    assert {v["hub"]: v["proxy"] for v in tally["roll_call"]}[hubs[4].hub_id] == hubs[1].hub_id

    await wait_until(closes)
    closing = {"status": "closing", "outcome": "passed"}
    await eventually(lambda: same_result(hubs, pid, closing), "every hub awaits the proposer's close")
    close_id = await close(hubs[0], pid)
    await eventually(lambda: lacking(hubs, [close_id]), "the close reaches every hub")
    final = {"status": "passed", "close_id": close_id, "options": tally["options"],
             "roll_call": tally["roll_call"]}
    await eventually(lambda: same_result(hubs, pid, final), "every hub shows the same final result")


async def test_an_amendment_adopted_during_a_partition_takes_effect_on_the_other_side_after_healing(
        net: Network) -> None:
    left = [net.hub("left0"), net.hub("left1")]
    right = [net.hub("right0"), net.hub("right1")]
    net.found(left + right)
    net.link(*left)
    net.link(*right)
    proxies = []
    for x, y in ((left[1], right[0]), (left[0], right[1])):
        to_y, to_x = await net.proxy(y), await net.proxy(x)
        x.add_peers(to_y.url)
        y.add_peers(to_x.url)
        proxies += [to_y, to_x]
    await net.start()
    await net.converged()
    for proxy in proxies:
        proxy.cut()

    scheme = {"id": "user-led-standard", "name": "User-Led Support Standard", "assessors": [right[1].hub_id]}
    closes = now_ms() + int(VOTING_S * 1000)
    pid = await left[0].publish("proposal", {
        "title": "Adopt the User-Led Support Standard", "options": ["adopt", "reject"], "rule": "two-thirds",
        "quorum": 50, "quorum_of": "members", "closes": closes, "amendment": {"schemes": [scheme]}})
    await eventually(lambda: lacking(left, [pid]), "the proposal reaches the left half")
    ballots = [await hub.publish("ballot", {"proposal": pid, "option": "adopt"}) for hub in left]
    await eventually(lambda: lacking(left, ballots), "both ballots reach the left half")
    await wait_until(closes)
    close_id = await close(left[0], pid)
    adopted = {"status": "passed"}
    await eventually(lambda: lacking(left, [close_id]) or same_result(left, pid, adopted),
                     "the left half closes the proposal: 2 of 4 voters is the quorum, both adopt")
    for hub in left:
        assert hub.store is not None
        terms = hub.store.terms()
        assert terms is not None and "user-led-standard" in terms.schemes
        assert result(hub, pid)["amendment"]["state"] == "adopted"
    for hub in right:
        assert hub.store is not None
        terms = hub.store.terms()
        assert terms is not None and "user-led-standard" not in terms.schemes, f"{hub.name} crossed a cut link"
        assert not hub.ids() & {pid, close_id, *ballots}

    for proxy in proxies:
        proxy.restore()
    await eventually(lambda: lacking(right, [pid, close_id, *ballots]),
                     "the right half gets the vote after healing")

    def in_force() -> str | None:
        for hub in right:
            assert hub.store is not None
            terms = hub.store.terms()
            if terms is None or "user-led-standard" not in terms.schemes:
                return hub.name
        return None

    await eventually(in_force, "the amendment is in force on the right half")
    # The new scheme's assessor — on the side that was cut off — gives its first mark, valid everywhere.
    mark = await right[1].publish("attestation", {
        "subject": left[0].hub_id, "scheme": "user-led-standard", "level": "full",
        "valid_from": now_ms(), "valid_until": now_ms() + 365 * 86_400_000})
    await eventually(lambda: lacking(left + right, [mark]), "the mark reaches every hub")
    for hub in left + right:
        assert hub.store is not None
        check = hub.store.mark_check(left[0].key.public, "user-led-standard", now_ms())
        assert check["status"] == "valid", (hub.name, check)
    await net.converged()
