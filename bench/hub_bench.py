"""Hub storage benchmark: ingest rate next to its raw parts, directory query latency, and a hub's memory.

``run(quick)`` returns one markdown section (``python -m bench hub_bench``; alone: ``python -m bench.hub_bench
[--quick]``). Every figure comes from one run:

1. **Ingest, side by side.** The same 10,000 pre-signed records, in interleaved rounds: raw Ed25519 verify,
   ``decode_record`` on one and on two threads, a raw SQLite insert of (id, raw) and of the ``records`` table
   with its indexes (no derived state), and ``Store.ingest`` — the one way in (decode, verify, check, store,
   derive) — into a fresh database, then the same records again (all duplicates). Medians over rounds, and
   the ratio of the full pipeline to each raw rate within each round.
2. **Directory at scale.** One database grown through ``Store.ingest`` in calls of 10,000 records to 100k and
   1M (quick: 10k and 100k), with the ingest rate per call as it grows; at each size every query shape and
   view, interleaved, with p50 and p99 latency.
3. **A hub's memory.** A real hub process (``hub.serve.run_hub``, the code behind ``coophub serve``) over the
   largest database on 127.0.0.1 (bench/hub_serve_probe.py): its RSS after start, after directory queries over
   HTTP, and after publishing over HTTP and its first anti-entropy request, which builds the sealed Negentropy
   storage of every record; latency of those requests.

Records are signed for real with 100 founder keys and one assessor; bodies vary cheaply (word lists, a seeded
RNG), so text search sees a realistic spread of common and rare words. Progress goes to stderr.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import random
import sqlite3
import statistics
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


CALL = 10_000  # records per Store.ingest call, the batch size the issue asks about


def _progress(message: str) -> None:
    print(f"  hub_bench: {message}", file=sys.stderr, flush=True)


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..1)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p * (len(ordered) - 1))))]


# -- 1. ingest, side by side -------------------------------------------------------------------------------


PIPELINE = "**Store.ingest, full pipeline** (fresh database)"
DUPLICATES = "Store.ingest of the same records again (all duplicates)"
VERIFY = "raw Ed25519 verify (cryptography, key parsed once)"
RAW_SQLITE = "raw SQLite insert (id, raw)"


def _ref(record: Record) -> bytes | None:
    """The records.ref column as hub.ingest fills it (the record or hub the body points at)."""
    for name in ("offer", "target", "subject", "supersedes"):
        if name in record.body:
            return record.body[name]  # type: ignore[no-any-return]
    return None


def _raw_insert(path: Path, rows: list[tuple[Any, ...]], sql: str, *, schema: bool) -> float:
    """Seconds to insert ``rows`` in transactions of ``ingest_batch`` rows, as the hub's writer does:
    BEGIN IMMEDIATE … COMMIT on a connection with hub.db's settings (WAL, synchronous=FULL).
    """
    from hub.db import connect, migrate

    conn = connect(path)
    try:
        if schema:
            migrate(conn)  # the hub's whole schema; only ``records`` (and its 3 indexes) is written
        else:
            conn.execute("CREATE TABLE t (id BLOB PRIMARY KEY, raw BLOB NOT NULL)")
        batch = DEFAULT_LIMITS.ingest_batch

        def insert() -> None:
            for i in range(0, len(rows), batch):
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(sql, rows[i:i + batch])
                conn.execute("COMMIT")
        return _timed(insert)
    finally:
        conn.close()


def _ingest_ops(tmp: Path, records: list[Record], now: int) -> dict[str, Callable[[int], float]]:
    """Each stage as ``op(round) -> seconds`` over the same records; database stages use fresh files."""
    from hub.store import Store

    raws = [r.raw for r in records]
    msgs = [(r.author, r.signature, SIGNING_DOMAIN + b"\x96" + r.raw[1:-66]) for r in records]
    id_rows = [(r.id, r.raw) for r in records]
    record_rows = [(r.id, r.kind, r.author, r.created_ms, _ref(r), now, r.raw) for r in records]
    halves = [raws[:len(raws) // 2], raws[len(raws) // 2:]]
    pool = ThreadPoolExecutor(2)
    dup_s: dict[int, float] = {}

    def decode(part: list[bytes]) -> None:
        for raw in part:
            decode_record(raw, now_ms=now)

    def pipeline(r: int) -> float:
        with Store(tmp / f"ingest-{r}.sqlite3") as store:
            seconds = _timed(lambda: store.ingest(raws, now_ms=now))
            assert store.count() == len(raws), store.counts()
            dup_s[r] = _timed(lambda: store.ingest(raws, now_ms=now))
        return seconds

    return {
        VERIFY: lambda r: _timed(
            lambda: [verify_signature(*m) for m in msgs]),
        "decode_record (canonical form, schema, verify), 1 thread": lambda r: _timed(lambda: decode(raws)),
        "decode_record, 2 threads": lambda r: _timed(lambda: list(pool.map(decode, halves))),
        RAW_SQLITE: lambda r: _raw_insert(
            tmp / f"raw-{r}.sqlite3", id_rows, "INSERT INTO t VALUES (?, ?)", schema=False),
        "raw SQLite insert, records table + 3 indexes, no derived state": lambda r: _raw_insert(
            tmp / f"table-{r}.sqlite3", record_rows, "INSERT INTO records (id, kind, author, created_ms, ref, "
            "received_ms, raw) VALUES (?, ?, ?, ?, ?, ?, ?)", schema=True),
        PIPELINE: pipeline,
        DUPLICATES: lambda r: dup_s[r],  # timed inside pipeline(r), on the store it just filled
    }


def ingest_section(tmp: Path, n: int, rounds: int) -> list[str]:
    """Full pipeline vs raw verify vs raw SQLite insert, on the same n pre-signed records, rounds interleaved."""
    gen = Generator(seed=7)
    records = [gen.charter] + [gen.next() for _ in range(n - 1)]
    ops = _ingest_ops(tmp, records, gen.now)
    seconds: dict[str, list[float]] = {name: [] for name in ops}
    for r in range(rounds):
        _progress(f"ingest comparison, round {r + 1} of {rounds}")
        for name, op in ops.items():
            seconds[name].append(op(r))
        for path in tmp.glob(f"*-{r}.sqlite3*"):
            path.unlink()
    rates = {name: [n / s for s in secs] for name, secs in seconds.items()}
    med = {name: statistics.median(r) for name, r in rates.items()}
    lines = [f"### Ingest: {n:,} pre-signed records per Store.ingest call, {DEFAULT_LIMITS.ingest_batch} per "
             f"transaction; {rounds} interleaved rounds, medians", "",
             "| stage | median time | median records/s | full pipeline ÷ this (median of rounds) "
             "| per-round records/s |", "|---|---:|---:|---:|---|"]
    for name, secs in seconds.items():
        ratios = [p / x for p, x in zip(rates[PIPELINE], rates[name], strict=True)]
        lines.append(f"| {name} | {statistics.median(secs):.3f} s | {med[name]:,.0f} | "
                     f"{statistics.median(ratios):.2f} | {', '.join(f'{x:,.0f}' for x in rates[name])} |")
    to_verify = [p / v for p, v in zip(rates[PIPELINE], rates[VERIFY], strict=True)]
    to_sqlite = [p / s for p, s in zip(rates[PIPELINE], rates[RAW_SQLITE], strict=True)]
    lines += ["", f"Full pipeline **{med[PIPELINE]:,.0f} records/s** = **{statistics.median(to_verify):.2f} × "
              f"raw verify** (rounds {min(to_verify):.2f}–{max(to_verify):.2f}) and "
              f"**{statistics.median(to_sqlite):.3f} × raw SQLite insert** (rounds {min(to_sqlite):.3f}–"
              f"{max(to_sqlite):.3f}), measured side by side.", ""]
    return lines


# -- 2. directory at scale ---------------------------------------------------------------------------------


def _operations(store: Any, gen: Generator) -> dict[str, Callable[[], int | None]]:
    """Every search shape and view; each call picks its terms with a seeded RNG. Searches return the total."""
    from hub.queries import DirectoryQuery

    rng, now = random.Random(3), gen.now

    def search(make: Callable[[], DirectoryQuery]) -> Callable[[], int]:
        return lambda: store.search(make(), now)[1]  # type: ignore[no-any-return]

    return {
        "text: a common word": search(lambda: DirectoryQuery(q=rng.choice(WORDS[:10]))),
        "text: a rare word": search(lambda: DirectoryQuery(q=rng.choice(VOCABULARY[1000:]))),
        "text: 2 words + region": search(lambda: DirectoryQuery(q=" ".join(rng.sample(WORDS[:20], 2)),
                                                                region=rng.choice(REGIONS))),
        "mark filter (hubs)": search(lambda: DirectoryQuery(mark=rng.choice(SCHEMES), kind="hub")),
        "mark filter (all kinds)": search(lambda: DirectoryQuery(mark=rng.choice(SCHEMES))),
        "open offers": search(lambda: DirectoryQuery(open=True, kind="offer")),
        "open offers + region": search(lambda: DirectoryQuery(open=True, region=rng.choice(REGIONS))),
        "no filter (newest)": search(lambda: DirectoryQuery()),
        "hub_view (a hub's page)": lambda: store.hub_view(rng.choice(gen.keys).public, now) and None,
        "offer_view (with tally)": lambda: store.offer_view(rng.choice(gen.offers), now) and None,
        "guide_view": lambda: store.guide_view(rng.choice(gen.guides)) and None,
        "mark_check": lambda: store.mark_check(rng.choice(gen.keys).public, rng.choice(SCHEMES), now) and None,
    }


def query_rows(store: Any, gen: Generator, runs: int) -> list[str]:
    """Latency rows for every operation, run in turn ``runs`` times (interleaved), then sync_items."""
    ops = _operations(store, gen)
    times: dict[str, list[float]] = {name: [] for name in ops}
    totals: dict[str, list[int]] = {name: [] for name in ops}
    for _ in range(runs):
        for name, op in ops.items():
            start = time.perf_counter()
            total = op()
            times[name].append((time.perf_counter() - start) * 1000)
            if total is not None:
                totals[name].append(total)
    rows = [f"| {name} | {statistics.median(t):.1f} ms | {_percentile(t, 0.99):.1f} ms | "
            f"{f'{int(statistics.median(totals[name])):,}' if totals[name] else '–'} |"
            for name, t in times.items()]
    sync = [_timed(store.sync_items) * 1000 for _ in range(3)]
    rows.append(f"| sync_items() (every (created_ms, id), 3 runs) | {statistics.median(sync):.0f} ms | "
                f"{max(sync):.0f} ms (max) | {store.count():,} |")
    return rows


def _grow(store: Any, gen: Generator, size: int, started: float) -> tuple[list[tuple[int, float]], float]:
    """Ingest generated records in calls of CALL until the store holds ``size``: ((records, seconds) of each
    call, seconds spent signing). Progress to stderr after every call."""
    calls, sign_s = [], 0.0
    while (have := store.count()) < size:
        start = time.perf_counter()
        batch = [gen.next().raw for _ in range(min(CALL, size - have))]
        sign_s += time.perf_counter() - start
        start = time.perf_counter()
        store.ingest(batch, now_ms=gen.now)
        seconds = time.perf_counter() - start
        calls.append((len(batch), seconds))
        if store.count() != have + len(batch):
            raise AssertionError(f"records were refused while growing: {store.counts()}")
        _progress(f"{have + len(batch):,} / {size:,} records; this call {len(batch) / seconds:,.0f} records/s; "
                  f"{(time.perf_counter() - started) / 60:.1f} min so far")
    return calls, sign_s


def _size_lines(store: Any, gen: Generator, db: Path, size: int, calls: list[tuple[int, float]],
                sign_s: float, runs: int) -> list[str]:
    rates = [n / seconds for n, seconds in calls]
    file_mib = sum(p.stat().st_size for p in db.parent.glob(db.name + "*")) / 2**20
    last = rates[-5:]
    _progress(f"timing queries at {size:,} records ({runs} runs of each)")
    return [f"### Directory at {size:,} records", "",
            f"Grown by {len(calls)} call(s) of Store.ingest (up to {CALL:,} records each; signing them took "
            f"{sign_s:.0f} s, not counted): ingest rate per call median {statistics.median(rates):,.0f}/s, "
            f"first {rates[0]:,.0f}/s, median of the last {len(last)} (at ~{size:,} records) "
            f"**{statistics.median(last):,.0f}/s**; ingest time {sum(t for _, t in calls) / 60:.1f} min. "
            f"Database {file_mib:,.0f} MiB. Counts {json.dumps(store.counts())}.", "",
            f"| query ({runs} runs each, interleaved, varied terms) | p50 | p99 | matches (median) |",
            "|---|---:|---:|---:|", *query_rows(store, gen, runs), ""]


def _to_publish(gen: Generator, n: int) -> tuple[list[Record], list[Record]]:
    """``n`` records of the generator's mix, then ``n`` guides (other kinds generated meanwhile are dropped:
    nothing published refers to them)."""
    mix = [gen.next() for _ in range(n)]
    guides: list[Record] = []
    while len(guides) < n:
        if (record := gen.next()).kind == "guide":
            guides.append(record)
    return mix, guides


def _publish_rows(out: dict[str, Any], mix: list[Record]) -> list[str]:
    rows = []
    for label, got in out["publish"].items():
        ms = got["ms"]
        rows.append(f"| publish one record: {label} (`POST /api/v1/publish`, {len(ms)} in sequence) | "
                    f"{statistics.median(ms):.1f} ms | {_percentile(ms, 0.99):.1f} ms |")
    ms = out["publish"]["mix of kinds"]["ms"]
    for kind in ("profile", "guide"):
        of_kind = [t for t, r in zip(ms, mix, strict=True) if r.kind == kind]
        rows.append(f"| … of which {kind}s ({len(of_kind)}) | {statistics.median(of_kind):.1f} ms | "
                    f"{_percentile(of_kind, 0.99):.1f} ms |")
    return rows


def _serve_lines(home: Path, items: list[tuple[int, bytes]], gen: Generator, size: int, runs: int,
                 publish: int) -> list[str]:
    from .hub_serve_probe import probe

    mix, guides = _to_publish(gen, publish)
    items = sorted(items + [(r.created_ms, r.id) for r in mix + guides])
    _progress(f"starting a hub process over the {size:,}-record database")
    out = probe(home, items, [("guides only", [r.raw for r in guides]), ("mix of kinds", [r.raw for r in mix])],
                association=gen.charter.id,
                words=WORDS, rare=VOCABULARY[1000:], regions=REGIONS, schemes=SCHEMES, keys=gen.keys, runs=runs,
                percentile=_percentile)
    sync, pub = out["sync"], out["publish"]
    lines = [f"### A hub process over the {size:,}-record database", "",
             "`hub.serve.run_hub` (what `coophub serve` runs) in its own process on 127.0.0.1; "
             f"requests from this process over one keep-alive connection, {runs} runs of each, interleaved.",
             "", "| moment | VmRSS |", "|---|---:|",
             f"| just started | {out['start']['VmRSS']:.0f} MiB |",
             f"| after {runs * len(out['http'])} directory and hub-page requests | "
             f"{out['queries']['VmRSS']:.0f} MiB |",
             f"| after publishing and its first anti-entropy request (holds the sealed Negentropy storage of "
             f"all {len(items):,} records) | **{out['after_sync']['VmRSS']:.0f} MiB** |",
             f"| peak (VmHWM) | {out['after_sync']['VmHWM']:.0f} MiB |", "",
             "| request over HTTP | p50 | p99 |", "|---|---:|---:|"]
    lines += [f"| {name} | {p50:.1f} ms | {p99:.1f} ms |" for name, (p50, p99) in out["http"].items()]
    lines += _publish_rows(out, mix)
    lines += ["", "Sequential publishing over HTTP (one request at a time, each answered after its COMMIT): "
              f"guides only **{pub['guides only']['rate']:,.0f} records/s**; the generator's mix of kinds "
              f"**{pub['mix of kinds']['rate']:,.0f} records/s**.",
              "", f"Idle anti-entropy against it (`sync` over a founder's peer session, /fed/v1/session; "
              f"{sync['opening_bytes']} B opening, "
              f"{sync['reply_bytes']} B reply): the first request took {sync['first_ms']:,.0f} ms (the hub "
              f"reads every (created_ms, id) and builds its sealed storage); the {len(sync['then_ms'])} after it "
              f"median {statistics.median(sync['then_ms']):.1f} ms, max {max(sync['then_ms']):.1f} ms.",
              ""]
    return lines


def scale_section(tmp: Path, sizes: list[int], runs: int, http_runs: int) -> list[str]:
    from hub.home import Home
    from hub.store import Store

    gen = Generator(seed=11)
    home = Home.create(tmp / "home", "Bench hub")
    lines: list[str] = []
    started = time.perf_counter()
    with Store(home.db_path) as store:
        store.ingest([gen.charter.raw], now_ms=gen.now)
        for size in sizes:
            calls, sign_s = _grow(store, gen, size, started)
            lines += _size_lines(store, gen, home.db_path, size, calls, sign_s, runs)
        items = store.sync_items()
    lines += _serve_lines(home.path, items, gen, sizes[-1], http_runs, 100 if http_runs < 30 else 500)
    return lines


def run(quick: bool) -> str:
    """The benchmark as one markdown section. Quick: 3 ingest rounds, directory at 10k and 100k."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        lines = ["## Hub storage and a hub process (bench/hub_bench.py)", "",
                 f"SQLite {sqlite3.sqlite_version}, {'quick' if quick else 'full'} mode. Load average at start "
                 f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (other work on the machine slows every "
                 "figure; the side-by-side ratios are the figures to compare).", ""]
        lines += ingest_section(tmp, 10_000, 3 if quick else 5)
        sizes = [10_000, 100_000] if quick else [100_000, 1_000_000]
        lines += scale_section(tmp, sizes, 30 if quick else 200, 10 if quick else 30)
    lines.append(f"Benchmark wall time: {(time.perf_counter() - started) / 60:.1f} min.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(run("--quick" in sys.argv))
