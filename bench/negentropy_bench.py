"""CPU time of Negentropy reconciliation of 100k items, in sync and with 1 % differences (docs/negentropy.md §8).

``run(quick)`` returns one markdown section (``python -m bench negentropy_bench``; alone ``python -m
bench.negentropy_bench [--quick]``). The simulation (sim_bench) counts the *bytes* of reconciliation, which do
not depend on the machine; this measures the *time* a hub spends on one session — what bounds how many peers
it can serve — next to the naive alternative measured in the same rounds: send every id (32 B each) and take
set differences.

Both sides run in-process over sealed :class:`~federation.negentropy.Storage` objects; a figure is the
wall-clock time of the whole exchange (all rounds, both sides), excluding building the storages, which is
timed separately. Scenarios are interleaved within each round; medians over rounds.
"""

from __future__ import annotations

import hashlib
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable

from federation.negentropy import Negentropy, Storage

__all__ = ["exchange", "make_sets", "run"]

BASE_MS = 1767225600000
FRAME = 60_000  # the frame limit hubs use (protocol.limits: negentropy_frame_bytes = 60 KiB)


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


def exchange(client_items: Storage, server_items: Storage, whole_range: bool,
             limit: int) -> tuple[float, int, int, int, int, int]:
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


def naive(client: list[tuple[int, bytes]], server: list[tuple[int, bytes]]) -> tuple[float, int, int, str]:
    """Send every id both ways and diff: (seconds, bytes up, bytes down, "have / need"). The ids are joined
    into one message and split again, as a wire format would."""
    start = time.perf_counter()
    up_msg = b"".join(i for _, i in client)
    down_msg = b"".join(i for _, i in server)
    mine = {up_msg[k:k + 32] for k in range(0, len(up_msg), 32)}
    theirs = {down_msg[k:k + 32] for k in range(0, len(down_msg), 32)}
    have, need = mine - theirs, theirs - mine
    return time.perf_counter() - start, len(up_msg), len(down_msg), f"{len(have)} / {len(need)}"


def _scenarios(n: int) -> dict[str, Callable[[], tuple[float, str]]]:
    """Each scenario as ``op() -> (seconds, detail)``; details are the same every round."""
    ops: dict[str, Callable[[], tuple[float, str]]] = {}
    for label, diff in (("in sync", 0.0), ("1 % differ", 0.01)):
        client, server = make_sets(n, diff)
        cs, ss = Storage(client), Storage(server)
        for whole_range in (True, False):
            for limit in (0, FRAME):
                name = (f"{label}, {'whole-range' if whole_range else 'reference'} opening, frame limit "
                        f"{f'{limit:,} B' if limit else 'none'}")

                def op(cs: Storage = cs, ss: Storage = ss, w: bool = whole_range,
                       lim: int = limit) -> tuple[float, str]:
                    secs, rounds, up, down, have, need = exchange(cs, ss, w, lim)
                    return secs, f"{rounds} | {up:,} | {down:,} | {have} / {need}"
                ops[name] = op

        def plain(client: list[tuple[int, bytes]] = client,
                  server: list[tuple[int, bytes]] = server) -> tuple[float, str]:
            secs, up, down, diff = naive(client, server)
            return secs, f"1 | {up:,} | {down:,} | {diff}"
        ops[f"{label}: naive, every id both ways"] = plain
        ops[f"{label}: build both sealed storages"] = lambda c=client, s=server: (
            _timed(lambda: (Storage(c), Storage(s))), "– | – | – | –")
    return ops


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def memory_lines(n: int) -> list[str]:
    """What a Storage of ``n`` items holds (tracemalloc) and what growing it costs: a hub keeps one of every
    record it holds (federation/negentropy_storage.py)."""
    items = [(BASE_MS + i * 5000 + i % 3, hashlib.sha256(b"mem:%d" % i).digest()) for i in range(n)]
    build = _timed(lambda: Storage(iter(items)))  # ascending, as a hub's index scan gives them
    tracemalloc.start()
    storage = Storage(iter(items))
    kept, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rng = random.Random(4)
    grow = {
        "append one newer item": [(items[-1][0] + 10, hashlib.sha256(b"newer").digest())],
        "insert one older item": [(items[n // 2][0] + 1, hashlib.sha256(b"older").digest())],
        "insert 500 older items at random places": [(items[rng.randrange(n)][0] + 1,
                                                     hashlib.sha256(b"o%d" % i).digest()) for i in range(500)],
    }
    lines = ["", f"Memory: a Storage of {n:,} items keeps **{kept / 2**20:.1f} MiB** "
                 f"({kept / n:.1f} B an item; peak while building {peak / 2**20:.1f} MiB, by tracemalloc); "
                 f"building it from ascending items took {build:.2f} s.", "",
             "| growing it in place | time |", "|---|---:|"]
    for name, new in grow.items():
        lines.append(f"| {name} | {_timed(lambda new=new: storage.add(new)) * 1000:,.2f} ms |")
    fingerprints = [rng.randrange(n) for _ in range(2001)]
    start = time.perf_counter()
    for lower, upper in zip(fingerprints, fingerprints[1:], strict=False):
        storage.fingerprint(min(lower, upper), max(lower, upper))
    lines.append(f"| (a fingerprint of a random range, for scale) | "
                 f"{(time.perf_counter() - start) / 2000 * 1000:,.3f} ms |")
    return lines


def run(quick: bool) -> str:
    """The benchmark as one markdown section (quick: 20k items, 3 rounds; else 100k items, 5 rounds)."""
    n, rounds = (20_000, 3) if quick else (100_000, 5)
    ops = _scenarios(n)
    times: dict[str, list[float]] = {name: [] for name in ops}
    details: dict[str, str] = {}
    for r in range(rounds):
        print(f"  negentropy_bench: round {r + 1} of {rounds}", file=sys.stderr, flush=True)
        for name, op in ops.items():
            secs, details[name] = op()
            times[name].append(secs)
    lines = ["## Negentropy reconciliation time (bench/negentropy_bench.py)", "",
             f"About {n:,} items per side (timestamps 1 s apart with jitter); \"1 % differ\" = 0.5 % of items "
             f"on each side only. Both sides in one process; {rounds} interleaved rounds, medians.", "",
             "| scenario | median time | range | rounds | bytes up | bytes down | have / need |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, t in times.items():
        lines.append(f"| {name} | {statistics.median(t) * 1000:,.1f} ms | {min(t) * 1000:,.1f}–"
                     f"{max(t) * 1000:,.1f} ms | {details[name]} |")
    lines += memory_lines(100_000 if quick else 1_000_000)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(run("--quick" in sys.argv))
