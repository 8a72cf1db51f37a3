"""Federation simulation: the real gossip and anti-entropy core over a simulated in-process network.

``run(quick)`` returns one markdown section (``python -m bench sim_bench``; alone ``python -m bench.sim_bench
[--quick]``). The simulation itself — every hub a real PeerTable, Gossip and SyncSession/SyncResponder over real
Negentropy storages, only the network simulated — is ``federation/sim.py`` (method: docs/perf/federation-sim.md).
This module runs its experiments and sets each figure next to what it is compared with:

(a) rounds until every hub has a new record, for N = 100, 1,000 and 10,000 hubs (quick: 100, 1,000), next to
    log₂ N; each N with SEEDS different seeds (graph, phases, publishers), medians and ranges over seeds;
(b) bytes of one idle anti-entropy exchange between hubs in sync, for n records up to 1M;
(c) bytes to repair d missing records, next to their encoded size (the mean size of hub_bench's generated
    records, measured here) and to the d × 32 B of naming them;
(d) bytes per record per hub during dissemination, for comparison with py-libp2p gossipsub;
(e) faults (loss, partition) and real signed records with a faulty hub, one seed, as federation.sim reports.

Simulated figures do not depend on the machine: a seed replays exactly (``python -m federation.sim --hubs N
--seed S``). Progress goes to stderr.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

from federation.sim import (
    BASE_MS,
    RECORD_BYTES,
    Network,
    fake_id,
    idle_bytes,
    partition_heal,
    real_records,
    repair_bytes,
)
from federation.sim import dissemination as sim_dissemination
from protocol.limits import DEFAULT_LIMITS

__all__ = ["dissemination", "run"]

SEEDS = (7, 8, 9, 10, 11)
RECORDS = 5  # records published per run, from random hubs 100 ms apart; each run reports its worst
ID_BYTES = 32


def _progress(message: str) -> None:
    print(f"  sim_bench: {message}", file=sys.stderr, flush=True)


def dissemination(hubs: int, seed: int, *, push: bool) -> dict[str, Any]:
    """One run of federation.sim's dissemination experiment, with the byte counts of its Network.

    The same steps as :func:`federation.sim.dissemination` (which returns no byte counts): publish RECORDS
    records and run until every hub has all of them.
    """
    limits = DEFAULT_LIMITS if push else dataclasses.replace(DEFAULT_LIMITS, push_fanout=0)
    net = Network(hubs, seed, limits=limits)
    for r in range(RECORDS):
        at = 1000 + 100 * r
        net.publish(net.rng.randrange(hubs), fake_id(f"rec{seed}", r), BASE_MS + at, at)
    net.run(600_000, stop=lambda: net.pending() == 0)
    trackers = list(net.tracked.values())
    assert all(t.done_ms is not None for t in trackers), f"not converged: {hubs} hubs, seed {seed}"
    interval = limits.sync_interval_ms
    s, per = net.stats, hubs * len(trackers)
    return {
        "push_hops": max(max((h for h, v in zip(t.hop, t.via, strict=True) if v == "push"), default=0)
                         for t in trackers),
        "hops": max(max(t.hop) for t in trackers),
        "coverage": min(sum(1 for v in t.via if v in ("push", "origin")) / hubs for t in trackers),
        "max_ms": max(t.done_ms - t.published_ms for t in trackers if t.done_ms is not None),
        "rounds": max(t.done_ms - t.published_ms for t in trackers if t.done_ms is not None) / interval,
        "copies": s.push_records / per,
        "push_bytes_sim": s.push_records * RECORD_BYTES / per,
        # The driver announces ids first and pushes only the records a peer wants (federation/driver.py):
        # an id out per announced record, an id back and the record per wanted one.
        "push_bytes_announce": (s.push_records * ID_BYTES
                                + (s.push_records - s.push_duplicates) * (ID_BYTES + RECORD_BYTES)) / per,
        "sync_bytes": (s.sync_bytes + s.fetched * (ID_BYTES + RECORD_BYTES)) / per,
        "sim_ms": net.now,
    }


def _med(values: Sequence[float], fmt: str = "{:.1f}") -> str:
    """Median and range over seeds, e.g. ``10.4 (9.8–11.2)``."""
    if min(values) == max(values):
        return fmt.format(values[0])
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def _dissemination_runs(hub_counts: Sequence[int]) -> dict[tuple[int, bool], list[dict[str, Any]]]:
    runs: dict[tuple[int, bool], list[dict[str, Any]]] = {}
    for n in hub_counts:
        for push in (True, False):
            start = time.perf_counter()
            runs[n, push] = [dissemination(n, seed, push=push) for seed in SEEDS]
            _progress(f"dissemination, {n:,} hubs, {'push + anti-entropy' if push else 'anti-entropy only'}: "
                      f"{len(SEEDS)} seeds in {time.perf_counter() - start:.1f} s")
    return runs


def rounds_section(runs: dict[tuple[int, bool], list[dict[str, Any]]]) -> list[str]:
    limits = DEFAULT_LIMITS
    lines = ["### (a) Rounds until every hub has a new record", "",
             f"{RECORDS} records per run, worst of the {RECORDS}; seeds {', '.join(map(str, SEEDS))}: median "
             f"(range). Fan-out {limits.push_fanout}, anti-entropy with one random peer every "
             f"{limits.sync_interval_ms} ms ±25 %, random graph of mean degree 8, links 20–80 ms. A *round* of "
             "anti-entropy is one sync interval; a *hop* is one push (or fetch) generation from the publisher.",
             "", "| hubs N | log₂ N | push: hops to the last hub reached by push | push: share reached by push "
             "| push + anti-entropy: time to all hubs | … in sync rounds | anti-entropy only: rounds to all "
             "hubs | anti-entropy rounds ÷ log₂ N |", "|---:|---:|---|---|---|---|---|---|"]
    for n in sorted({n for n, _ in runs}):
        push, pull, log2 = runs[n, True], runs[n, False], math.log2(n)
        lines.append(
            f"| {n:,} | {log2:.1f} | {_med([r['push_hops'] for r in push], '{:.0f}')} | "
            f"{_med([100 * r['coverage'] for r in push], '{:.1f} %')} | "
            f"{_med([r['max_ms'] for r in push], '{:,.0f} ms')} | {_med([r['rounds'] for r in push])} | "
            f"**{_med([r['rounds'] for r in pull])}** | {_med([r['rounds'] / log2 for r in pull], '{:.2f}')} |")
    return lines + [""]


def idle_section(sizes: Sequence[int]) -> list[str]:
    lines = ["### (b) One anti-entropy exchange between two hubs in sync", "",
             "Negentropy payload both ways (HTTP framing comes on top: see fed_bench).", "",
             "| records n | whole-range opening (the default): bytes up / down, rounds | reference 16-bucket "
             "opening |", "|---:|---|---|"]
    for n in sizes:
        up, down, rounds = idle_bytes(n)
        up2, down2, rounds2 = idle_bytes(n, whole_range=False)
        lines.append(f"| {n:,} | **{up} / {down}** ({rounds}) | {up2} / {down2} ({rounds2}) |")
        _progress(f"idle exchange at {n:,} records")
    return lines + [""]


def mean_record_bytes(count: int = 2000) -> float:
    """Mean encoded size of hub_bench's generated record mix (guides, offers, pledges, profiles, marks)."""
    from .hub_bench import Generator

    gen = Generator(seed=5)
    return statistics.mean(len(gen.next().raw) for _ in range(count))


def repair_section(sizes: Sequence[int], mix_bytes: float) -> list[str]:
    lines = ["### (c) Repairing d missing records", "",
             "One session where the initiator lacks d of the responder's n records (random). Overhead = "
             "(reconciliation bytes + fetch request ids) ÷ the missing records' encoded size, for records of "
             f"{RECORD_BYTES:,} B (a typical guide or profile; the simulation's assumption) and of "
             f"{mix_bytes:,.0f} B (the mean of hub_bench's generated mix, where small pledges are a third of "
             "all records; measured here).", "",
             "| n | d | rounds | reconciliation bytes | … per missing record | fetch request ids | overhead, "
             f"{RECORD_BYTES:,} B records | overhead, {mix_bytes:,.0f} B records | naming the ids (d × 32 B) |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for n in sizes:
        start = time.perf_counter()
        for row in repair_bytes(n, (1, 10, 100, 1000), SEEDS[0]):
            d, cost = row["d"], row["recon"] + row["fetch_ids"]
            lines.append(f"| {n:,} | {d:,} | {row['rounds']} | {row['recon']:,} | {row['recon'] / d:,.0f} | "
                         f"{row['fetch_ids']:,} | **{100 * cost / (d * RECORD_BYTES):.0f} %** | "
                         f"{100 * cost / (d * mix_bytes):.0f} % | {d * ID_BYTES:,} |")
        _progress(f"repair at {n:,} records in {time.perf_counter() - start:.1f} s")
    return lines + [""]


def bytes_section(runs: dict[tuple[int, bool], list[dict[str, Any]]], small: list[dict[str, Any]]) -> list[str]:
    lines = ["### (d) Bytes per record per hub while a record spreads", "",
             f"Payload bytes (no HTTP framing) per hub per record, {RECORD_BYTES} B records, push + anti-entropy, "
             "median over seeds. *As simulated* charges every push a whole record; the driver announces ids "
             "first and pushes only what a peer wants, so *with announce* charges 32 B per announced id, and "
             "32 B back plus the record for each one that was not a duplicate (an estimate from the simulated "
             "counts). Anti-entropy: "
             "Negentropy payload of every session during the run plus fetched ids and records.", "",
             "| hubs N | pushes received per hub | push, as simulated | push, with announce | anti-entropy "
             "| total with announce | ÷ record size |", "|---:|---:|---:|---:|---:|---:|---:|"]
    rows = [(30, small)] + [(n, runs[n, True]) for n in sorted({n for n, _ in runs})]
    for n, rs in rows:
        med = {k: statistics.median(r[k] for r in rs) for k in
               ("copies", "push_bytes_sim", "push_bytes_announce", "sync_bytes")}
        total = med["push_bytes_announce"] + med["sync_bytes"]
        lines.append(f"| {n:,} | {med['copies']:.2f} | {med['push_bytes_sim']:,.0f} B | "
                     f"{med['push_bytes_announce']:,.0f} B | {med['sync_bytes']:,.0f} B | **{total:,.0f} B** | "
                     f"{total / RECORD_BYTES:.2f} × |")
    return lines + [""]


def faults_section(hubs: int, seed: int) -> list[str]:
    start = time.perf_counter()
    lossy = sim_dissemination(hubs, seed, loss=0.2)
    part = partition_heal(hubs, seed)
    real = real_records(30, seed)
    _progress(f"faults at {hubs:,} hubs and real records in {time.perf_counter() - start:.1f} s")
    return [f"### (e) Faults ({hubs:,} hubs, seed {seed}) and real signed records (30 hubs)", "",
            "| scenario | reached by push | time to all hubs | sync rounds | sessions failed |",
            "|---|---|---|---|---|",
            f"| 20 % of pushes and sync sessions lost | {100 * lossy['push_coverage']:.1f} % | "
            f"{lossy['max_ms']:,.0f} ms | {lossy['rounds']:.1f} | {lossy['sync_failed']:,} |",
            f"| halves partitioned for {part['split_ms'] // 1000} s, {part['records']} records published "
            f"during it, then healed | {100 * part['own_side_reached']:.1f} % of own side before heal | "
            f"{part['heal_ms']:,.0f} ms after heal | {part['heal_rounds']:.1f} after heal | — |", "",
            f"Real records: {real['records']} signed guides of {real['record_bytes']:.0f} B, decoded and verified "
            f"by every receiver, reached every hub: {real['reached_all']}. A faulty hub pushing 40 records "
            f"with broken signatures was dropped by {real['dropped_bad']} of its {real['bad_neighbours']} "
            "peers.", ""]


def run(quick: bool) -> str:
    """The benchmark as one markdown section (quick: 100 and 1,000 hubs; n up to 10,000 records)."""
    started = time.perf_counter()
    hub_counts = (100, 1_000) if quick else (100, 1_000, 10_000)
    sizes = (1_000, 10_000) if quick else (1_000, 10_000, 100_000, 1_000_000)
    runs = _dissemination_runs(hub_counts)
    small = [dissemination(30, seed, push=True) for seed in SEEDS]
    record_bytes = mean_record_bytes()
    lines = ["## Federation simulation (bench/sim_bench.py, federation/sim.py)", ""]
    lines += rounds_section(runs)
    lines += idle_section(sizes)
    lines += repair_section(sizes[1:3] if quick else sizes[1:], record_bytes)
    lines += bytes_section(runs, small)
    lines += faults_section(1_000 if quick else 10_000, SEEDS[0])
    lines.append(f"Benchmark wall time: {(time.perf_counter() - started) / 60:.1f} min.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(run("--quick" in sys.argv))
