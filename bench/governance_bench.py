"""The cost of a proposal's result with 1,000 members and 10,000 ballots (docs/performance.md "Governance").

An association of 10 founders and 990 hubs they admitted (classes of weight 1 and 2), a charter-amending
proposal, 10,000 ballots (each member votes 10 times; the newest counts) with 100 members voting by proxy
instead, then the proposer's close naming the 1,000 counted ids. Timed, median of several rounds:

- ``protocol.proposal_result`` over records in memory: open (live tally) and closed (the named ids only), and
  ``protocol.membership`` alone (the electorate: the fixed point over 990 endorsements), side by side with a
  plain loop that only groups the 10,000 ballots by voter — the floor of any tally;
- the hub's whole view (``hub.proposals.proposal_view``: read and decode the records from SQLite, the result,
  and for a closed proposal the recount), next to reading and decoding every ballot, endorsement and
  delegation (the hub keeps each member's newest countable ballot, so a view reads about one per voter);
- ingesting one more endorsement while that amendment proposal is closed: membership and the amendments in
  force are recomputed in the write transaction (hub.governance.refresh_amendments).

``--quick``: 200 members and 2,000 ballots.
"""

from __future__ import annotations

import hashlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from protocol import HubKey, Record, build_record, membership, proposal_result

T0 = 1_767_225_600_000
MIN = 60_000
DAY = 86_400_000
CLOSES = T0 + 30 * DAY

__all__ = ["build", "run"]


def _key(i: int) -> HubKey:
    return HubKey.from_seed(hashlib.sha256(b"coophub-governance-bench:%d" % i).digest())


def build(members: int, total_ballots: int, proxies: int) -> dict[str, Any]:
    """Every record of the benchmark's association, signed; ``members`` hubs of which 10 are founders."""
    keys = [_key(i) for i in range(members + 1)]
    founders = keys[:10]
    charter = build_record(founders[0], bytes(32), "charter", {
        "name": "Bench Co-operatives", "founders": [k.public for k in founders], "endorsements_needed": 1,
        "schemes": [], "classes": [{"name": "worker-coop", "weight": 1}, {"name": "user-led", "weight": 2}],
        "founder_classes": [{"hub": k.public, "class": "worker-coop"} for k in founders]}, T0)
    aid = charter.id
    endorsements = [build_record(founders[i % 10], aid, "endorsement",
                                 {"subject": k.public, "class": "user-led" if i % 3 == 0 else "worker-coop"},
                                 T0 + MIN + i) for i, k in enumerate(keys[10:members])]
    proposal = build_record(founders[0], aid, "proposal", {
        "title": "Raise the admission rule", "options": ["yes", "no", "abstain"], "abstain": "abstain",
        "rule": "two-thirds", "quorum": 50, "quorum_of": "members", "closes": CLOSES,
        "amendment": {"reviews_needed": 3}}, T0 + DAY)
    voters, delegators = keys[:members - proxies], keys[members - proxies:members]
    # Round-robin over the voters until there are total_ballots: each votes about total/voters times, changing
    # its mind; its newest ballot is yes for 3 voters in 5, no for 1, abstain for 1.
    ballots = []
    for n in range(total_ballots):
        round_, i = divmod(n, len(voters))
        last = round_ == (total_ballots - 1 - i) // len(voters)  # voter i's newest ballot
        option = ("yes", "yes", "yes", "no", "abstain")[i % 5] if last else ("yes", "no", "abstain")[(i + round_) % 3]
        ballots.append(build_record(voters[i], aid, "ballot", {"proposal": proposal.id, "option": option},
                                    T0 + 2 * DAY + round_ * MIN + i))
    delegations = [build_record(k, aid, "delegation", {"to": voters[i].public, "proposal": proposal.id},
                                T0 + 2 * DAY + i) for i, k in enumerate(delegators)]
    return {"keys": keys, "charter": charter, "endorsements": endorsements, "proposal": proposal,
            "ballots": ballots, "delegations": delegations, "extra": keys[members]}


def _median_ms(fn: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _protocol(data: dict[str, Any], rounds: int) -> tuple[dict[str, float], Record, Any]:
    charter, proposal = data["charter"], data["proposal"]

    def result(closes: list[Record]) -> Any:
        return proposal_result(proposal, charter, ballots=data["ballots"], delegations=data["delegations"],
                               closes=closes, endorsements=data["endorsements"], revocations=[],
                               now_ms=CLOSES + MIN)

    live = result([])
    counted, named = live.counted_ids()
    close = build_record(data["keys"][0], charter.id, "proposal-close", {
        "proposal": proposal.id, "ballots": sorted(counted), "delegations": sorted(named)}, CLOSES)

    def group() -> dict[bytes, Record]:
        newest: dict[bytes, Record] = {}
        for b in data["ballots"]:
            if b.author not in newest or b.created_ms > newest[b.author].created_ms:
                newest[b.author] = b
        return newest

    times = {
        "group": _median_ms(group, rounds),
        "membership": _median_ms(lambda: membership(charter, data["endorsements"], []), rounds),
        "open": _median_ms(lambda: result([]), rounds),
        "closed": _median_ms(lambda: result([close]), rounds),
    }
    return times, close, live


def _hub(data: dict[str, Any], close: Record, rounds: int, tmp: Path) -> dict[str, float]:
    from hub.derive import load_records
    from hub.proposals import proposal_view
    from hub.store import Store

    members = [data["charter"], *data["endorsements"]]
    votes = [data["proposal"], *data["ballots"], *data["delegations"]]
    now = CLOSES + DAY
    with Store(tmp / "hub.sqlite3") as store:
        rates = []
        for records in (members, votes):
            start = time.perf_counter()
            results = store.ingest([r.raw for r in records], now_ms=now)
            rates.append(len(records) / (time.perf_counter() - start))
            assert all(r.status == "accepted" for r in results)
        pid = data["proposal"].id
        view_open = _median_ms(lambda: store.view(proposal_view, pid, CLOSES - 1), rounds)

        def read() -> int:
            def fn(conn: Any) -> int:
                return len(load_records(conn, "SELECT raw, id FROM records WHERE ref = ? AND kind = 'ballot'",
                                        (pid,))) + len(load_records(
                                            conn, "SELECT raw, id FROM records WHERE kind IN "
                                                  "('endorsement', 'delegation')"))
            return int(store.view(fn))

        read_ms = _median_ms(read, rounds)
        start = time.perf_counter()
        assert store.ingest([close.raw], now_ms=now)[0].status == "accepted"
        close_ms = (time.perf_counter() - start) * 1000
        view_closed = _median_ms(lambda: store.view(proposal_view, pid, now), rounds)
        view = store.view(proposal_view, pid, now)
        assert view is not None and view["status"] == "passed" and view["amendment"]["state"] == "adopted"
        extra, founder = data["extra"], data["keys"][0]
        endorse_ms = []
        for at in (now - DAY, CLOSES - DAY):  # made after the close; backdated to before it
            times = []
            for i in range(rounds):
                e = build_record(founder, data["charter"].id, "endorsement", {"subject": extra.public,
                                                                               "statement": f"round {i}"}, at + i)
                start = time.perf_counter()
                assert store.ingest([e.raw], now_ms=now)[0].status == "accepted"
                times.append((time.perf_counter() - start) * 1000)
            endorse_ms.append(statistics.median(times))
    return {"members_rate": rates[0], "votes_rate": rates[1], "view_open": view_open, "view_closed": view_closed,
            "read": read_ms, "close": close_ms, "endorse": endorse_ms[0], "endorse_before": endorse_ms[1]}


def run(quick: bool) -> str:
    members, total, proxies, rounds = (200, 2_000, 20, 5) if quick else (1_000, 10_000, 100, 7)
    print(f"  signing {members} members' records and {total} ballots …", file=sys.stderr, flush=True)
    data = build(members, total, proxies)
    n_ballots = len(data["ballots"])
    p, close, live = _protocol(data, rounds)
    with tempfile.TemporaryDirectory(prefix="coophub-gov-bench-") as tmp:
        h = _hub(data, close, rounds, Path(tmp))
    rows = [
        ("`protocol.proposal_result`, open (live tally)", f"**{p['open']:.1f} ms**",
         f"{p['open'] / p['group']:.1f} × grouping the {n_ballots:,} ballots by voter alone ({p['group']:.1f} ms)"),
        ("… of which the electorate, `protocol.membership`", f"{p['membership']:.1f} ms",
         f"{p['membership'] / p['open']:.0%} of the result"),
        (f"`protocol.proposal_result`, closed (the {len(close.body['ballots']):,} + "
         f"{len(close.body['delegations'])} named ids)", f"{p['closed']:.1f} ms",
         f"the close is {len(close.raw):,} bytes of the 65,536 allowed"),
        ("the hub's view of the open proposal (SQLite read + decode + result)", f"**{h['view_open']:.1f} ms**",
         f"{h['view_open'] / h['read']:.2f} × reading and decoding every ballot, endorsement and delegation "
         f"({h['read']:.1f} ms)"),
        ("the hub's view once closed (result + recount)", f"{h['view_closed']:.1f} ms", "two results"),
        ("ingesting the close (the amendments in force are recomputed)", f"{h['close']:.1f} ms", ""),
        ("ingesting one more endorsement, made after the amendment proposal closed", f"{h['endorse']:.1f} ms",
         "membership recomputed in the write transaction"),
        ("… one dated before the closing time (a late or backdated one)", f"{h['endorse_before']:.1f} ms",
         "membership and the amendments in force recomputed"),
        (f"ingesting the proposal, {n_ballots:,} ballots and {proxies} delegations (one call)",
         f"{h['votes_rate']:,.0f} records/s", ""),
        (f"ingesting the charter and {len(data['endorsements']):,} endorsements (one call)",
         f"{h['members_rate']:,.0f} records/s",
         "membership is recomputed from every endorsement at each one (hub.derive, before this work too)"),
    ]
    table = "\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows)
    return f"""## Governance: a result with {members:,} members and {n_ballots:,} ballots

{members:,} members (10 founders, {members - 10:,} admitted by endorsement; weights 1 and 2), one proposal
carrying an amendment, {n_ballots:,} ballots (about {n_ballots // (members - proxies)} per voting member, the
newest counts) and {proxies} members voting by proxy; {live.turnout:,} votes counted, outcome
**{live.outcome}**. Medians of {rounds} rounds.

| step | time | compared with |
|---|---:|---|
{table}
"""


if __name__ == "__main__":
    print(run("--quick" in sys.argv))
