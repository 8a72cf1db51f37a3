"""Federation on real hubs: N separate ``coophub serve`` processes on 127.0.0.1 (``cli/localnet.py``).

``run(quick)`` returns one markdown section with three measurements, each taken in this run:

1. **Dissemination** (N = 20; quick: 8). Every hub is a founder; each joined through a random earlier hub and
   then learnt the others from members' profiles (as a real association does). M guides are published one at
   a time on random hubs through ``POST /api/v1/publish``. Time to reach all hubs comes from each hub's own
   database (``records.received_ms``, written at commit), so measuring adds no traffic; messages per record
   from the hubs' traffic counters (``GET /api/v1/status`` → ``federation``: requests served, WebSocket frame
   bytes sent on the peer sessions), less the idle anti-entropy rate measured just before.
2. **Catch-up** of a new hub joining an association that holds 100k records (quick: 10k): ``coophub join``
   streams the peer's records in pages through the one ingest path. Shown next to the same records ingested
   locally from memory (no network) in the same run.
3. **Repair** of a hub missing d records, by one ``coophub sync`` (Negentropy): the bytes on the wire against
   the records' own encoded size.

Run alone: ``python -m bench.fed_bench [--quick] [--dissemination]`` (the second: measurement 1 only).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from cli.localnet import LocalHub, LocalNet, free_ports, wait_until
from cli.network import PUSH_DRAIN_S
from hub.home import Home
from hub.store import Store
from protocol import HubKey, build_record

__all__ = ["run"]

SEED = 20_26
RESULTS = Path(__file__).resolve().parent / "results" / "fed-dissemination.json"
SETTLE_S = 90.0
WORDS = ("care home visit rota safeguarding medication training dementia carer worker volunteer family "
         "governance member meeting budget procurement gloves hoist mobility transport meals nutrition "
         "hygiene infection policy lone working safety supervision wellbeing recruitment").split()


def _say(text: str) -> None:
    print(f"  fed_bench: {text}", file=sys.stderr, flush=True)


def _post(hub: LocalHub, token: str, kind: str, body: dict[str, Any]) -> str:
    request = urllib.request.Request(
        f"{hub.url}/api/v1/publish", data=json.dumps({"kind": kind, "body": body}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (loopback only)
        return str(json.loads(response.read())["id"])


def _guide(rng: random.Random, title: str) -> dict[str, Any]:
    text = " ".join(rng.choice(WORDS) for _ in range(90))
    return {"title": title, "summary": text[:140], "body": f"# {title}\n\n{text}\n", "license": "CC-BY-4.0",
            "tags": ["bench"], "language": "en"}


def _traffic(hubs: list[LocalHub]) -> list[dict[str, int]]:
    return [dict(h.api("status").get("federation", {})) for h in hubs]


def _sum(snapshot: list[dict[str, int]], *names: str) -> int:
    return sum(s.get(n, 0) for s in snapshot for n in names)


def _sent(snapshot: list[dict[str, int]]) -> int:
    """Bytes the hubs sent on their peer sessions: ``wire_bytes_out`` (WebSocket frames with their framing) where
    traffic() has it, else ``bytes_out`` (the frames' payloads), never a counter that does not exist (which
    read as 0 B per record)."""
    return sum(s.get("wire_bytes_out", s.get("bytes_out", 0)) for s in snapshot)


def _received(hub: LocalHub, ids: list[str]) -> dict[str, int]:
    """record id -> received_ms on this hub, read from its database (read-only; WAL lets serve carry on)."""
    conn = sqlite3.connect(f"file:{hub.home / 'hub.sqlite3'}?mode=ro", uri=True, timeout=30)
    try:
        rows = conn.execute(f"SELECT lower(hex(id)), received_ms FROM records WHERE id IN "
                            f"({','.join('?' * len(ids))})", [bytes.fromhex(i) for i in ids]).fetchall()
    finally:
        conn.close()
    return {r[0]: int(r[1]) for r in rows}


def _association(net: LocalNet, n: int, rng: random.Random) -> list[LocalHub]:
    """N founder hubs; each joins through a random earlier one, then all publish profiles naming their URL."""
    hubs = [net.add(f"hub{i:02d}", f"Bench Co-op {i:02d}", port)
            for i, port in enumerate(free_ports(n))]
    founders = [x for h in hubs[1:] for x in ("--founder", h.hub_id)]
    charter = hubs[0].cli("charter", "create", "--association", "Bench association", *founders,
                          "--endorsements-needed", "2")["id"]
    net.start(hubs[0])
    for i, hub in enumerate(hubs[1:], start=1):
        hub.cli("join", charter, "--peer", hubs[rng.randrange(i)].url, "--no-sync")
    net.start_all(hubs[1:])
    for hub in hubs:
        wait_until(lambda h=hub: h.api("status")["records"] >= 1, SETTLE_S,  # type: ignore[misc]
                   f"{hub.name} to fetch the charter")
        hub.cli("publish", "profile", "--url", hub.url, "--region", "Benchshire", "--service", "Home care:care")
    wait_until(lambda: set(net.counts()) == {n + 1}, SETTLE_S, "every hub to hold every profile")
    return hubs


def dissemination(root: Path, n: int, m: int, rng: random.Random) -> list[str]:
    net = LocalNet(root / "dissemination")
    try:
        _say(f"starting {n} hub processes")
        hubs = _association(net, n, rng)
        limits = Home.open(hubs[0].home).limits()
        idle_s = 3 * limits.sync_interval_ms / 1000
        time.sleep(limits.sync_interval_ms / 1000)  # let discovery and first sessions settle
        _say(f"measuring idle traffic for {idle_s:.0f} s")
        t0, idle0 = time.monotonic(), _traffic(hubs)
        time.sleep(idle_s)
        t1, idle1 = time.monotonic(), _traffic(hubs)
        idle_rate = (_sum(idle1, "served_requests") - _sum(idle0, "served_requests")) / (t1 - t0)
        idle_bytes = (_sent(idle1) - _sent(idle0)) / (t1 - t0)
        _say(f"publishing {m} guides from random hubs")
        load_before = os.getloadavg()[0]
        ids, origins = [], []
        tokens = {h.url: Home.open(h.home).token for h in hubs}
        start = time.monotonic()
        for i in range(m):
            origin = rng.choice(hubs)
            ids.append(_post(origin, tokens[origin.url], "guide", _guide(rng, f"Bench guide {i}")))
            origins.append(origin)
            time.sleep(0.25)
        wait_until(lambda: set(net.counts()) == {n + 1 + m}, SETTLE_S, "every hub to hold every guide")
        end, busy = time.monotonic(), _traffic(hubs)
        load_after = os.getloadavg()[0]
        received = [_received(h, ids) for h in hubs]
    finally:
        net.stop()
    spans, per_hub = [], []
    for record_id, origin in zip(ids, origins, strict=True):
        published = received[hubs.index(origin)][record_id]
        delays = [r[record_id] - published for r in received]
        spans.append(max(delays))
        per_hub.extend(d for d in delays if d > 0)
    requests = _sum(busy, "served_requests") - _sum(idle1, "served_requests")
    extra = requests - idle_rate * (end - start)
    pushes = _sum(busy, "served_announce", "served_push") - _sum(idle1, "served_announce", "served_push")
    fetches = _sum(busy, "served_fetch") - _sum(idle1, "served_fetch")
    wire_bytes = _sent(busy) - _sent(idle1) - idle_bytes * (end - start)
    record_size = len(build_record(HubKey.from_seed(bytes(32)), b"\x01" * 32, "guide", _guide(rng, "x"), 0).raw)
    q = statistics.quantiles(spans, n=10)
    with contextlib.suppress(OSError):
        RESULTS.write_text(json.dumps({"n": n, "m": m, "spans_ms": spans, "load_before": load_before,
                                       "load_after": load_after, "median_ms": statistics.median(spans),
                                       "p90_ms": q[-1]}, indent=1) + "\n", encoding="utf-8")
    return [
        f"### Dissemination: {n} hub processes, {m} records",
        "",
        f"Every hub a founder that learnt its {n - 1} peers from members' profiles; default limits "
        f"(fan-out {limits.push_fanout}, anti-entropy every {limits.sync_interval_ms} ms ± 25 %); "
        f"a ~{record_size}-byte guide published every 0.25 s on a random hub. Load (1-min) {load_before:.1f} → "
        f"{load_after:.1f} on {os.cpu_count()} CPUs.",
        "",
        "| figure | value |",
        "|---|---:|",
        f"| time until every hub holds a record: median | {statistics.median(spans):,.0f} ms |",
        f"| … 90th percentile / worst | {q[-1]:,.0f} ms / {max(spans):,.0f} ms |",
        f"| time until one hub has it (median over hubs and records) | {statistics.median(per_hub):,.0f} ms |",
        f"| peer requests per record, all kinds, less the idle rate | {extra / m:,.1f} "
        f"({extra / m / n:.2f} per hub) |",
        f"| of which push announcements and pushes | {pushes / m:,.1f} |",
        f"| of which anti-entropy fetches | {fetches / m:,.1f} |",
        f"| wire bytes per record per hub ({'WebSocket frames' if 'wire_bytes_out' in busy[0] else 'frame payloads'} "
        f"sent, less idle) | {wire_bytes / m / n:,.0f} B "
        f"({wire_bytes / m / n / record_size:.1f}× the record) |",
        f"| idle anti-entropy, whole association | {idle_rate:,.1f} requests/s, {idle_bytes:,.0f} B/s |",
        "",
    ]


def _bulk(n: int, association: bytes, keys: list[HubKey], base_ms: int, rng: random.Random) -> list[bytes]:
    return [build_record(keys[i % len(keys)], association, "guide", _guide(rng, f"Archive guide {i}"),
                         base_ms + i * 10).raw for i in range(n)]


def catch_up(root: Path, size: int, repair: int, rng: random.Random) -> list[str]:
    net = LocalNet(root / "catch-up")
    try:
        source_port, new_port = free_ports(2)
        source = net.add("source", "Source Co-op", source_port)
        keys = [HubKey.from_seed(rng.randbytes(32)) for _ in range(19)]
        founders = [x for k in keys for x in ("--founder", k.hub_id)]
        charter = source.cli("charter", "create", "--association", "Archive association", *founders)["id"]
        association = bytes.fromhex(charter)
        _say(f"signing {size + repair:,} records")
        base = int(time.time() * 1000) - 30 * 86_400_000
        raws = _bulk(size + repair, association, keys, base, rng)
        history, later = raws[:size], raws[size:]
        store = Store(source.home / "hub.sqlite3", blobs_dir=source.home / "blobs", association=association)
        _say(f"ingesting {size:,} records locally (the baseline)")
        t = time.perf_counter()
        for i in range(0, size, 500):
            store.ingest(history[i:i + 500], now_ms=int(time.time() * 1000), source="import")
        local_s = time.perf_counter() - t
        store.close()
        net.start(source)
        newcomer = net.add("newcomer", "Newcomer Co-op", new_port)
        _say(f"coophub join: catching up {size + 1:,} records over a peer session")
        t = time.perf_counter()
        joined = newcomer.cli("join", charter, "--peer", source.url)
        join_s = time.perf_counter() - t
        assert joined["received"] == size + 1, joined
        # d more records reach the source while the newcomer is away; one `coophub sync` repairs the gap.
        store = Store(source.home / "hub.sqlite3", blobs_dir=source.home / "blobs", association=association)
        store.ingest(later, now_ms=int(time.time() * 1000), source="import")
        store.close()
        t = time.perf_counter()
        synced = newcomer.cli("sync", "--peer", source.url)["peers"][0]
        sync_s = time.perf_counter() - t
        assert synced["received"] == repair, synced
        status = source.api("status")["federation"]
    finally:
        net.stop()
    total = sum(len(r) for r in history)
    repaired = sum(len(r) for r in later)
    negentropy = synced["bytes"]
    # A one-shot sync waits up to PUSH_DRAIN_S for its pushes; while Federation.drain also waits for the
    # session's own reader task (which ends only with the session), every sync takes that long: say so.
    stall = (f" (of which ~{PUSH_DRAIN_S:.0f} s is the command waiting out its drain timeout, not the sync)"
             if sync_s >= PUSH_DRAIN_S else "")
    return [
        f"### Catch-up: a new hub joins an association of {size:,} records",
        "",
        "| figure | value |",
        "|---|---:|",
        f"| `coophub join` (pages of 500 over a peer session, checked and stored) | {join_s:,.1f} s, "
        f"**{(size + 1) / join_s:,.0f} records/s**, {total / join_s / 1e6:,.1f} MB/s |",
        f"| the same records ingested locally from memory (no network) | {local_s:,.1f} s, "
        f"{size / local_s:,.0f} records/s |",
        f"| ratio, catch-up to local ingest | {local_s / join_s:.2f} |",
        f"| repair: `coophub sync` after {repair:,} new records | {sync_s:,.2f} s{stall}, {synced['rounds']} "
        f"round trips, {negentropy:,} B of Negentropy for {repaired:,} B of records "
        f"({negentropy / repaired * 100:.1f} % overhead) |",
        f"| requests the source served in all | {status.get('served_requests', 0):,} |",
        "",
    ]


def run(quick: bool, only_dissemination: bool = False) -> str:
    rng = random.Random(SEED)
    n, m, size, repair = (8, 10, 10_000, 500) if quick else (20, 40, 100_000, 1_000)
    with tempfile.TemporaryDirectory(prefix="coophub-fed-bench-") as tmp:
        lines = ["## Federation on real hubs (separate processes on loopback)", "",
                 f"Seed {SEED}; every figure from this run. Code: `bench/fed_bench.py`.", ""]
        lines += dissemination(Path(tmp), n, m, rng)
        if not only_dissemination:
            lines += catch_up(Path(tmp), size, repair, rng)
    return "\n".join(lines)


if __name__ == "__main__":
    print(run("--quick" in sys.argv, only_dissemination="--dissemination" in sys.argv))
