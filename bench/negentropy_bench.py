"""Time Negentropy reconciliation of 100k items, in sync and with 1% differences (docs/negentropy.md).

Run: ``python -m bench.negentropy_bench [items]``. Both sides run in-process; the figures are wall-clock
times of the whole exchange (all rounds, both sides), excluding building the sealed storages, which is timed
separately.
"""

from __future__ import annotations

import hashlib
import sys
import time

from federation.negentropy import Negentropy, Storage

BASE_MS = 1767225600000


def make_sets(n: int, diff: float) -> tuple[list[tuple[int, bytes]], list[tuple[int, bytes]]]:
    """Build two item sets of about ``n`` items where a ``diff`` share is on one side only (half each way)."""
    client: list[tuple[int, bytes]] = []
    server: list[tuple[int, bytes]] = []
    for i in range(n):
        id_ = hashlib.sha256(b"bench:%d" % i).digest()
        item = (BASE_MS + i * 1000 + (id_[31] % 3), id_)
        f = int.from_bytes(id_[:4], "big") / 2**32
        if f >= diff / 2:
            server.append(item)
        if f < diff / 2 or f >= diff:
            client.append(item)
    return client, server


def exchange(
    client_items: Storage, server_items: Storage, whole_range: bool, limit: int
) -> tuple[float, int, int, int, int, int]:
    """Run one reconciliation; return (seconds, rounds, bytes up, bytes down, #have, #need)."""
    start = time.perf_counter()
    client = Negentropy(client_items, limit)
    server = Negentropy(server_items, limit)
    msg: bytes | None = client.initiate(whole_range_fingerprint=whole_range)
    rounds = up = down = n_have = n_need = 0
    while msg is not None:
        up += len(msg)
        reply = server.reconcile(msg)
        down += len(reply)
        rounds += 1
        msg, have, need = client.reconcile_initiator(reply)
        n_have += len(have)
        n_need += len(need)
    return time.perf_counter() - start, rounds, up, down, n_have, n_need


def main() -> None:
    """Print one Markdown table row per scenario."""
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    print("| scenario | opening | frame limit | time | rounds | bytes up | bytes down | have | need |")
    print("|---|---|---|---|---|---|---|---|---|")
    builds: list[str] = []
    for label, diff in (("in sync", 0.0), ("1% differ", 0.01)):
        client_items, server_items = make_sets(n, diff)
        t0 = time.perf_counter()
        cs, ss = Storage(client_items), Storage(server_items)
        build = time.perf_counter() - t0
        for whole_range in (False, True):
            for limit in (0, 60_000):
                best = min(exchange(cs, ss, whole_range, limit) for _ in range(3))
                secs, rounds, up, down, have, need = best
                opening = "whole-range" if whole_range else "reference"
                print(
                    f"| {label}, {len(cs):,} / {len(ss):,} items | {opening} | {limit or 'none'} | "
                    f"{secs * 1000:.1f} ms | {rounds} | {up:,} | {down:,} | {have} | {need} |"
                )
        builds.append(f"{label}: {build * 1000:.0f} ms")
    print(f"\nBuilding both sealed storages (sort, keys, prefix sums): {', '.join(builds)}.")


if __name__ == "__main__":
    main()
