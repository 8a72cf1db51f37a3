"""Hub storage benchmark: ingest rate, directory query latency and memory at 100k and 1M records.

``run(quick)`` returns one markdown section. Full mode: the ingest comparison on 10k records, then a directory
built to 100k and to 1M records through ``Store.ingest`` (the one way in: decode, verify, check, store,
derive), with query latencies at each size and the RSS of a fresh hub process over the 1M database. Quick
mode: 10k and 100k. Run alone: ``python -m bench.hub_bench [--quick]``.

Records are signed for real with 100 founder keys and one assessor; bodies vary cheaply (word lists, a seeded
RNG), so text search sees a realistic spread of common and rare words. Every figure comes from this run.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from protocol import DEFAULT_LIMITS, HubKey, Record, build_record, decode_record, verify_signature
from protocol.records import SIGNING_DOMAIN

__all__ = ["Generator", "run"]

T0 = 1_767_225_600_000
DAY = 86_400_000
# One record every 5 s: 1M records span ~58 days, so offers' deadlines fall on both sides of "now".
STEP_MS = 5_000
REGIONS = ["Gwynedd", "Anglesey", "Conwy", "Denbighshire", "Flintshire", "Wrexham", "Powys", "Ceredigion",
           "Pembrokeshire", "Carmarthenshire", "Swansea", "Neath Port Talbot", "Bridgend", "Cardiff",
           "Newport", "Monmouthshire", "Torfaen", "Caerphilly", "Merthyr Tydfil", "Rhondda Cynon Taf",
           "Vale of Glamorgan", "Blaenau Gwent", "Cheshire", "Shropshire", "Herefordshire", "Gloucestershire",
           "Bristol", "Somerset", "Devon", "Cornwall"]
SERVICES = [("Home care", "care"), ("Respite care", "care"), ("Day centre", "care"),
            ("Supported living", "housing"), ("Meals on wheels", "food"), ("Community transport", "transit"),
            ("Advocacy", "legal"), ("Befriending", "care"), ("Employment support", "work"),
            ("Counselling", "health")]
WORDS = ("care home visit rota safeguarding medication training dementia carer worker volunteer family "
         "governance member meeting budget procurement gloves aprons hoist mobility transport meals "
         "nutrition "
         "hygiene infection control policy lone working safety record keeping supervision wellbeing "
         "recruitment retention pay ethics consent dignity choice inclusion rural urban welsh language "
         "night shift weekend cover handover escalation falls prevention continence skin integrity").split()
SCHEMES = ["care-quality", "fair-work", "green-office"]
_SYLLABLES = ("ba be bi bo bu da de di do du fa fe fi fo ga ge go la le li lo lu ma me mi mo na ne ni no ra "
              "re ri ro sa se si so ta te ti to va ve vi wy").split()
# Text follows Zipf's law, as natural language does: the domain words above are the most frequent, then a
# long tail of 5,000 made-up words (two or three syllables), so rare terms match few entries.
VOCABULARY = WORDS + sorted({a + b + c for a in _SYLLABLES for b in _SYLLABLES for c in ("", "n", "l", "r")}
                            - set(WORDS))[:5000]
_CUM_WEIGHTS = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(VOCABULARY))))


class Generator:
    """Deterministic, cheap, realistic record stream for one association of 100 founder hubs."""

    def __init__(self, seed: int = 1) -> None:
        self.rng = random.Random(seed)
        self.keys = [HubKey.from_seed(hashlib.sha256(b"bench-hub-%d" % i).digest()) for i in range(100)]
        self.assessor = HubKey.from_seed(hashlib.sha256(b"bench-assessor").digest())
        body = {"name": "Bench Association", "founders": [k.public for k in self.keys],
                "endorsements_needed": 2,
                "schemes": [{"id": s, "name": s, "assessors": [self.assessor.public]} for s in SCHEMES]}
        self.charter = build_record(self.keys[0], bytes(32), "charter", body, T0)
        self.i = 0
        self.offers: deque[bytes] = deque(maxlen=200)  # recent offers, which pledges go to
        self.guides: deque[bytes] = deque(maxlen=1000)  # for timing guide_view

    @property
    def now(self) -> int:
        return T0 + (self.i + 1) * STEP_MS

    def _words(self, n: int) -> str:
        return " ".join(self.rng.choices(VOCABULARY, cum_weights=_CUM_WEIGHTS, k=n))

    def _body(self, kind_roll: int) -> tuple[HubKey, str, dict[str, Any]]:
        rng, key = self.rng, self.rng.choice(self.keys)
        if 11 <= kind_roll < 18 and not self.offers:
            kind_roll = 8  # a pledge needs an offer: make the first one
        if kind_roll < 8:
            return key, "guide", {"title": self._words(4).capitalize(), "summary": self._words(12),
                                  "body": self._words(40), "license": "CC-BY-4.0",
                                  "tags": sorted({rng.choice(WORDS) for _ in range(3)}), "language": "en"}
        if kind_roll < 11:
            return key, "offer", {"title": self._words(3).capitalize(), "description": self._words(15),
                                  "category": rng.choice(SERVICES)[1], "unit": "box",
                                  "tiers": [[1, 900], [100, 800]], "currency": "GBP", "min_total": 100,
                                  "deadline": T0 + self.i * STEP_MS + rng.randint(10, 90) * DAY,
                                  "regions": rng.sample(REGIONS, 2)}
        if kind_roll < 18:
            return key, "pledge", {"offer": rng.choice(self.offers), "quantity": rng.randint(0, 50)}
        if kind_roll < 19:
            start = T0 + self.i * STEP_MS - rng.randint(0, 400) * DAY
            return self.assessor, "attestation", {
                "subject": key.public, "scheme": rng.choice(SCHEMES), "level": "gold",
                "valid_from": max(start, 0), "valid_until": max(start, 0) + 365 * DAY}
        services = rng.sample(SERVICES, 3)
        return key, "profile", {"name": f"{self._words(2).title()} Co-operative",
                                "description": self._words(20),
                                "regions": rng.sample(REGIONS, 3), "peer_urls": [],
                                "services": [{"name": n, "category": c} for n, c in services]}

    def next(self) -> Record:
        """The next record, created STEP_MS after the previous one."""
        self.i += 1
        key, kind, body = self._body(self.rng.randrange(20))
        record = build_record(key, self.charter.id, kind, body, T0 + self.i * STEP_MS)
        if kind == "offer":
            self.offers.append(record.id)
        elif kind == "guide":
            self.guides.append(record.id)
        return record

    def batches(self, total: int, size: int) -> Iterator[list[bytes]]:
        done = 0
        while done < total:
            n = min(size, total - done)
            yield [self.next().raw for _ in range(n)]
            done += n


def _rate(n: int, seconds: float) -> str:
    return f"{n / seconds:,.0f}/s"


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# -- ingest comparison -------------------------------------------------------------------------------------


def _verify_rate(records: list[Record]) -> float:
    msgs = [(r.author, r.signature, SIGNING_DOMAIN + b"\x96" + r.raw[1:-66]) for r in records]
    return _timed(lambda: [verify_signature(*m) for m in msgs])


def _sqlite_rate(path: Path, raws: list[bytes], batch: int) -> float:
    from hub.db import connect

    conn = connect(path)
    try:
        conn.execute("CREATE TABLE t (id BLOB PRIMARY KEY, raw BLOB NOT NULL)")
        rows = [(hashlib.sha256(r).digest(), r) for r in raws]

        def insert() -> None:
            for i in range(0, len(rows), batch):
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany("INSERT INTO t VALUES (?, ?)", rows[i:i + batch])
                conn.execute("COMMIT")
        return _timed(insert)
    finally:
        conn.close()


def _decode_rates(raws: list[bytes], now: int) -> tuple[float, float]:
    serial = _timed(lambda: [decode_record(r, now_ms=now) for r in raws])
    half = len(raws) // 2
    with ThreadPoolExecutor(2) as pool:
        threaded = _timed(lambda: list(pool.map(
            lambda part: [decode_record(r, now_ms=now) for r in part], [raws[:half], raws[half:]])))
    return serial, threaded


def ingest_section(tmp: Path, n: int) -> list[str]:
    """Full pipeline vs raw verify vs raw SQLite insert, on the same n pre-signed records."""
    from hub.store import Store

    gen = Generator(seed=7)
    records = [gen.charter] + [gen.next() for _ in range(n - 1)]
    raws = [r.raw for r in records]
    batch = DEFAULT_LIMITS.ingest_batch
    verify = _verify_rate(records)
    sqlite_s = _sqlite_rate(tmp / "raw.sqlite3", raws, batch)
    decode_s, decode2_s = _decode_rates(raws, gen.now)
    with Store(tmp / "ingest.sqlite3") as store:
        pipeline = _timed(lambda: store.ingest(raws, now_ms=gen.now))
        assert store.count() == n, store.counts()
        again = _timed(lambda: store.ingest(raws, now_ms=gen.now))
    return [
        f"### Ingest: {n:,} pre-signed records, fresh database, batches of {batch} per transaction",
        "", "| stage | time | rate |", "|---|---|---|",
        f"| raw Ed25519 verify (cryptography) | {verify:.2f} s | {_rate(n, verify)} |",
        f"| decode_record (canonical form, schema, verify), 1 thread | {decode_s:.2f} s "
        f"| {_rate(n, decode_s)} |",
        f"| decode_record, 2 threads | {decode2_s:.2f} s | {_rate(n, decode2_s)} |",
        f"| raw SQLite executemany (id, raw), WAL + synchronous=FULL | {sqlite_s:.2f} s "
        f"| {_rate(n, sqlite_s)} |",
        f"| **Store.ingest full pipeline** | {pipeline:.2f} s | **{_rate(n, pipeline)}** |",
        f"| Store.ingest of the same records again (all duplicates) | {again:.2f} s | {_rate(n, again)} |",
        "",
    ]


# -- directory at scale ------------------------------------------------------------------------------------


def _query_shapes(rng: random.Random) -> dict[str, Callable[[], Any]]:
    from hub.queries import DirectoryQuery

    return {
        "text: a common word": lambda: DirectoryQuery(q=rng.choice(WORDS[:10])),
        "text: a rare word": lambda: DirectoryQuery(q=rng.choice(VOCABULARY[1000:])),
        "text: 2 words + region": lambda: DirectoryQuery(q=" ".join(rng.sample(WORDS[:20], 2)),
                                                         region=rng.choice(REGIONS)),
        "mark filter (hubs)": lambda: DirectoryQuery(mark=rng.choice(SCHEMES), kind="hub"),
        "mark filter (all kinds)": lambda: DirectoryQuery(mark=rng.choice(SCHEMES)),
        "open offers": lambda: DirectoryQuery(open=True, kind="offer"),
        "open offers + region": lambda: DirectoryQuery(open=True, region=rng.choice(REGIONS)),
        "no filter (newest)": lambda: DirectoryQuery(),
    }


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p * (len(ordered) - 1))))]


def _views(store: Any, gen: Generator, rng: random.Random) -> dict[str, Callable[[int], Any]]:
    return {
        "hub_view (a hub's page)": lambda now: store.hub_view(rng.choice(gen.keys).public, now),
        "offer_view (with tally)": lambda now: store.offer_view(rng.choice(gen.offers), now),
        "guide_view": lambda now: store.guide_view(rng.choice(gen.guides)),
        "mark_check": lambda now: store.mark_check(rng.choice(gen.keys).public, rng.choice(SCHEMES), now),
    }


def _latency_row(name: str, times: list[float], matches: str) -> str:
    return f"| {name} | {statistics.median(times):.1f} ms | {_percentile(times, 0.99):.1f} ms | {matches} |"


def _search_rows(store: Any, now: int, runs: int) -> list[str]:
    rng = random.Random(3)
    rows = []
    for name, make in _query_shapes(rng).items():
        times, totals = [], []
        for _ in range(runs):
            q = make()
            start = time.perf_counter()
            _, total = store.search(q, now)
            times.append((time.perf_counter() - start) * 1000)
            totals.append(total)
        rows.append(_latency_row(name, times, f"{int(statistics.median(totals)):,}"))
    return rows


def query_rows(store: Any, gen: Generator, runs: int) -> list[str]:
    """Latency rows: every search shape, every view, and sync_items."""
    rows = _search_rows(store, gen.now, runs)
    for name, view in _views(store, gen, random.Random(5)).items():
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            view(gen.now)
            times.append((time.perf_counter() - start) * 1000)
        rows.append(_latency_row(name, times, "–"))
    sync = _timed(store.sync_items)
    rows.append(f"| sync_items() (all (created_ms, id)) | {sync * 1000:.0f} ms | – | {store.count():,} |")
    return rows


def _rss_probe(db: Path, now: int) -> dict[str, Any]:
    """Open the database in a fresh process, run every query shape, report its memory."""
    code = ("import json,resource,sys;from pathlib import Path;from bench.hub_bench import probe;"
            f"print(json.dumps(probe(Path({str(db)!r}), {now})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def probe(db: Path, now: int) -> dict[str, Any]:
    """In a fresh process: open a Store, run the search shapes and hub views, then sync_items; report VmRSS
    at each step and the peak RSS (MiB).
    """
    from hub.store import Store

    keys = Generator().keys  # the same deterministic hub keys as the database's
    with Store(db) as store:
        out = {"open_mib": _vmrss()}
        _search_rows(store, now, 10)
        for key in keys[:20]:
            store.hub_view(key.public, now)
        out["queries_mib"] = _vmrss()
        items = store.sync_items()
        out["sync_mib"] = _vmrss()
        del items
        out["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return out


def _vmrss() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _grow(store: Any, gen: Generator, size: int) -> tuple[int, float, float]:
    """Ingest generated records in calls of 10k until the store holds ``size``; (added, sign s, ingest s)."""
    added, sign_s, ingest_s = 0, 0.0, 0.0
    while (have := store.count()) < size:
        start = time.perf_counter()
        batch = next(gen.batches(min(10_000, size - have), 10_000))
        sign_s += time.perf_counter() - start
        start = time.perf_counter()
        store.ingest(batch, now_ms=gen.now)
        ingest_s += time.perf_counter() - start
        added += len(batch)
    return added, sign_s, ingest_s


def scale_section(tmp: Path, sizes: list[int], runs: int) -> list[str]:
    from hub.store import Store

    gen = Generator(seed=11)
    db = tmp / "scale.sqlite3"
    lines: list[str] = []
    total_s = 0.0
    with Store(db) as store:
        store.ingest([gen.charter.raw], now_ms=gen.now)
        for size in sizes:
            added, sign_s, ingest_s = _grow(store, gen, size)
            total_s += ingest_s
            file_mib = sum(p.stat().st_size for p in tmp.glob("scale.sqlite3*")) / 2**20
            lines += [f"### Directory at {size:,} records", "",
                      f"Grown by {added:,} records through Store.ingest in calls of 10k: "
                      f"signing {sign_s:.0f} s, "
                      f"ingest {ingest_s:.0f} s ({_rate(added, ingest_s)}); database {file_mib:,.0f} MiB; "
                      f"counts {json.dumps(store.counts())}.", "",
                      f"| query ({runs} runs, varied terms) | p50 | p99 | matches (median) |",
                      "|---|---|---|---|", *query_rows(store, gen, runs), ""]
    rss = _rss_probe(db, gen.now)
    lines += [f"Hub process over the {sizes[-1]:,}-record database (a fresh process): VmRSS after opening "
              f"the store {rss['open_mib']:.0f} MiB; after every search shape 10× and 20 hub pages "
              f"{rss['queries_mib']:.0f} MiB; holding the result of sync_items() {rss['sync_mib']:.0f} MiB; "
              f"peak RSS {rss['peak_mib']:.0f} MiB. Building the database took {total_s / 60:.1f} min of "
              "ingest.", ""]
    return lines


def run(quick: bool) -> str:
    """The benchmark as one markdown section. Quick: 10k ingest, directory at 10k and 100k."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        lines = ["## Hub storage (hub/store.py)", "",
                 f"Machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, SQLite "
                 f"{sqlite3.sqlite_version}. {'Quick' if quick else 'Full'} mode. Load average at start: "
                 f"{os.getloadavg()[0]:.1f} (other work on the machine slows every figure alike).", ""]
        lines += ingest_section(tmp, 10_000)
        lines += scale_section(tmp, [10_000, 100_000] if quick else [100_000, 1_000_000], 30 if quick else 50)
    lines.append(f"Benchmark wall time: {(time.perf_counter() - started) / 60:.1f} min.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(run("--quick" in sys.argv))
