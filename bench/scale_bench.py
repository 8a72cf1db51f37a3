"""Issue 13's targets, side by side: ingest against raw verify on one core and on both, the directory under a
realistic mix of requests at 1M records, and a hub process on one core — its memory, its event loop, and its
queries while it ingests a burst and reconciles with a peer.

``run(quick)`` returns one markdown section (``python -m bench scale_bench``). The database is the one
hub_bench grows (bench.hub_bench.Generator, seed 11): built here at first (quick: 100k records, full: 1M;
~10–40 min on a busy 2-core machine) and kept under ``$COOPHUB_BENCH_DB`` (default
``/tmp/coophub-bench-<size>``) so later runs reuse it. ``$COOPHUB_SCALE_SECTIONS`` (default
``writer,ingest,catchup,mix,hub``) picks sections. Progress goes to stderr.

0. **The writer's cost (P1).** CPU time of the writer thread and of the full-text indexer's thread per 1 KB
   guide (``writer_section``), read from /proc for each thread: the figure that shows the code's cost on a
   shared machine.

1. **Ingest (P1).** 10,000 guides of ~1 KB, signed by the generator's founders, through ``Store.ingest`` into
   a fresh database, next to raw Ed25519 verify of the same records, in interleaved rounds: in a child process
   pinned to one CPU (``os.sched_setaffinity``: no decode pool there, as on a 1-vCPU box), and in this process
   on both CPUs with and without the decode pool (hub/decoding.py). Ratios are to raw single-core verify
   measured in the same round.
2. **Directory mix (P7)**, run after step 3. A seeded sequence of requests drawn with fixed weights (``MIX``)
   from every search shape and view, through ``Store`` as the HTTP layer calls it (with its search cache, so
   a repeated time-independent search is a hit while nothing new is stored); p50/p99 of the whole sequence
   and per shape.
3. **Catch-up (P6).** ``coophub join`` of a new hub from 100k records (quick: 10k) over the transport on
   main (bench.fed_bench.catch_up), against P1 on both cores from step 1.
4. **A hub on one core (P8, the small box).** ``hub.serve.run_hub`` in a child process pinned to CPU 0 over the
   database. VmRSS after start, after the query mix, after its first reconciliation with a peer that lacks
   its newest records and holds some it lacks, and VmHWM; then, together: the query mix, a burst of new
   records pushed in batches of 500 and a reconciliation every second (five times the default rate). The
   bench plays two peers, each a founder of the association with its own authenticated session
   (``/fed/v1/session``, bench.hub_serve_probe.SessionPeer: a real federation.client.PeerClient): one
   reconciles, the other pushes. Event-loop lag is sampled inside the hub (a
   task that sleeps 10 ms and logs how late it wakes), and from outside: a thread asks ``GET /fed/v1/info``
   every 20 ms and records how long each answer took (that also counts waiting for a free read thread).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack

from protocol import Record, build_record, verify_signature
from protocol.records import SIGNING_DOMAIN

from .hub_bench import CALL, REGIONS, SCHEMES, SERVICES, VOCABULARY, WORDS, Generator, _percentile

__all__ = ["MIX", "run"]

ROOT = Path(__file__).resolve().parent.parent
#: (shape, weight): what a day of association staff asking one hub might look like — most requests open an
#: entry or browse the newest, a third search text (a fifth of those a very common word), the rest filter.
MIX = [("browse newest", 15), ("text: a rare word", 15), ("text: a common word", 8), ("text: 2 words + region", 5),
       ("region filter", 5), ("service filter", 4), ("mark filter (hubs)", 4), ("mark filter (all kinds)", 2),
       ("open offers", 4), ("open offers + region", 3), ("a hub's page", 10), ("an offer with its tally", 10),
       ("a guide", 10), ("mark check", 5)]


def _progress(message: str) -> None:
    print(f"  scale_bench: {message}", file=sys.stderr, flush=True)


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


# -- the database ------------------------------------------------------------------------------------------


def database(size: int) -> tuple[Path, Generator]:
    """A hub home holding ``size`` generated records (reused when built before) and a generator positioned
    after them (its keys, recent offers and guides, clock)."""
    from hub.home import Home
    from hub.store import Store

    home = Path(os.environ.get("COOPHUB_BENCH_DB", f"/tmp/coophub-bench-{size}"))
    state_file = home / "bench-state.json"
    gen = Generator(seed=11)
    if not state_file.exists():
        if home.exists():
            raise SystemExit(f"{home} exists without bench-state.json: remove it or set COOPHUB_BENCH_DB")
        Home.create(home, "Bench hub")
        started = time.perf_counter()
        with Store(home / "hub.sqlite3") as store:
            store.ingest([gen.charter.raw], now_ms=gen.now)
            while (have := store.count()) < size:
                store.ingest([gen.next().raw for _ in range(min(CALL, size - have))], now_ms=gen.now)
                _progress(f"building {home}: {store.count():,} / {size:,} records, "
                          f"{(time.perf_counter() - started) / 60:.1f} min")
        _save_state(home, gen)
    state = json.loads(state_file.read_text())
    gen.i = state["i"]
    gen.offers = deque((bytes.fromhex(o) for o in state["offers"]), maxlen=200)
    gen.guides = deque((bytes.fromhex(g) for g in state["guides"]), maxlen=1000)
    return home, gen


def _save_state(home: Path, gen: Generator) -> None:
    (home / "bench-state.json").write_text(json.dumps({
        "now": gen.now, "i": gen.i, "offers": [o.hex() for o in gen.offers],
        "guides": [g.hex() for g in gen.guides]}))


# -- 1. ingest ---------------------------------------------------------------------------------------------


def kilobyte_guides(n: int, seed: int = 5) -> list[Record]:
    """The charter and ``n - 1`` guides of about 1 KB by the generator's founders."""
    gen = Generator(seed=seed)
    out = [gen.charter]
    for _ in range(n - 1):
        gen.i += 1
        body = {"title": gen._words(5).capitalize(), "summary": gen._words(20), "body": gen._words(110),
                "license": "CC-BY-4.0", "tags": sorted({gen.rng.choice(WORDS) for _ in range(3)}),
                "language": "en"}
        out.append(build_record(gen.rng.choice(gen.keys), gen.charter.id, "guide", body, gen.now))
    return out


def _verify_rate(records: list[Record]) -> float:
    msgs = [(r.author, r.signature, SIGNING_DOMAIN + b"\x96" + r.raw[1:-66]) for r in records]
    start = time.perf_counter()
    for m in msgs:
        verify_signature(*m)
    return len(msgs) / (time.perf_counter() - start)


def _ingest_rate(raws: list[bytes], now: int, tmp: Path) -> tuple[float, float]:
    """(records/s acknowledged: Store.ingest returned after COMMIT; records/s searchable: the full-text index,
    filled after COMMIT by hub/search_index.py, holds them too)."""
    from hub.store import Store

    path = tmp / f"ingest-{time.monotonic_ns()}.sqlite3"
    with Store(path) as store:
        start = time.perf_counter()
        store.ingest(raws, now_ms=now)
        seconds = time.perf_counter() - start
        assert store.wait_indexed(600)
        indexed = time.perf_counter() - start
        assert store.count() == len(raws), store.counts()
    for p in tmp.glob(path.stem + "*"):
        p.unlink()
    return len(raws) / seconds, len(raws) / indexed


def _one_core_child(records_file: str) -> None:
    """``python -m bench.scale_bench --one-core FILE``: pinned to one CPU, raw verify then the pipeline."""
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    from protocol import decode_record

    raws, now = msgpack.unpackb(Path(records_file).read_bytes())
    records = [decode_record(raw, now_ms=now) for raw in raws]
    with tempfile.TemporaryDirectory(prefix="scale-one-core-") as tmp:
        cpu = time.process_time()
        verify = _verify_rate(records)
        verify_cpu = len(records) / (time.process_time() - cpu)
        cpu = time.process_time()
        pipeline, searchable = _ingest_rate(raws, now, Path(tmp))
        pipeline_cpu = len(raws) / (time.process_time() - cpu)  # to searchable: it includes the indexer's CPU
    # CPU time as well as wall time: on a shared machine the CPU-time ratio shows the code's cost (fsync waits
    # are not CPU, so on an idle single core the wall ratio is at most this).
    out = {"verify": verify, "pipeline": pipeline, "verify_cpu": verify_cpu, "pipeline_cpu": pipeline_cpu,
           "searchable": searchable}
    print(json.dumps(out))


def ingest_section(tmp: Path, n: int, rounds: int, rates: dict[str, float] | None = None) -> list[str]:
    from hub import decoding

    records = kilobyte_guides(n)
    raws = [r.raw for r in records]
    now = records[-1].created_ms + 1000
    records_file = tmp / "records.msgpack"
    records_file.write_bytes(msgpack.packb([raws, now]))
    real = decoding.shared_pool
    pool = real()
    rows: dict[str, list[float]] = {k: [] for k in ("verify1", "pipe1", "verify2", "pooled", "plain", "verify1cpu",
                                                     "pipe1cpu", "search1", "pooled_search", "plain_search")}
    for r in range(rounds):
        _progress(f"ingest round {r + 1} of {rounds} (load {_load()})")
        child = subprocess.run([sys.executable, "-m", "bench.scale_bench", "--one-core", str(records_file)],
                               cwd=ROOT, capture_output=True, text=True, check=True)
        one = json.loads(child.stdout.strip().splitlines()[-1])
        rows["verify1"].append(one["verify"])
        rows["pipe1"].append(one["pipeline"])
        rows["verify1cpu"].append(one["verify_cpu"])
        rows["pipe1cpu"].append(one["pipeline_cpu"])
        rows["search1"].append(one["searchable"])
        rows["verify2"].append(_verify_rate(records))
        try:
            for name in ("pooled", "plain"):
                if name == "plain":
                    decoding.shared_pool = lambda: None
                ack, searchable = _ingest_rate(raws, now, tmp)
                rows[name].append(ack)
                rows[f"{name}_search"].append(searchable)
        finally:
            decoding.shared_pool = real
    med = {k: statistics.median(v) for k, v in rows.items()}
    if rates is not None:
        rates.update(med)
    size = statistics.mean(len(r) for r in raws)

    def ratios(name: str, base: str) -> str:
        values = [x / b for x, b in zip(rows[name], rows[base], strict=True)]
        return f"**{statistics.median(values):.2f}** ({min(values):.2f}–{max(values):.2f})"

    workers = pool.workers if pool is not None else 0
    return [f"### Ingest (P1): {n:,} guides of {size:,.0f} B per Store.ingest call, fresh database, "
            f"{rounds} interleaved rounds; load {_load()} at the end", "",
            "| stage | median records/s | ÷ raw single-core verify (rounds) |", "|---|---:|---:|",
            f"| raw Ed25519 verify, one core (pinned child) | {med['verify1']:,.0f} | 1.00 |",
            f"| **Store.ingest pinned to one core** (no pool), acknowledged | {med['pipe1']:,.0f} | "
            f"{ratios('pipe1', 'verify1')} |",
            f"| … until searchable (the indexer has caught up) | {med['search1']:,.0f} | "
            f"{ratios('search1', 'verify1')} |",
            f"| … until searchable, by CPU time (records per CPU-second, against verify's: "
            f"{med['verify1cpu']:,.0f}) | {med['pipe1cpu']:,.0f} | {ratios('pipe1cpu', 'verify1cpu')} |",
            f"| raw Ed25519 verify, this process | {med['verify2']:,.0f} | 1.00 |",
            f"| **Store.ingest on both cores, decode pool of {workers}**, acknowledged | {med['pooled']:,.0f} | "
            f"{ratios('pooled', 'verify2')} |",
            f"| … until searchable | {med['pooled_search']:,.0f} | {ratios('pooled_search', 'verify2')} |",
            f"| Store.ingest on both cores, no pool (decode overlaps the writer thread), acknowledged | "
            f"{med['plain']:,.0f} | {ratios('plain', 'verify2')} |",
            f"| … until searchable | {med['plain_search']:,.0f} | {ratios('plain_search', 'verify2')} |", ""]


def _thread_cpu_s(native_id: int) -> float:
    fields = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def writer_section(tmp: Path, n: int, rounds: int) -> list[str]:
    """CPU time of the writer thread (the acknowledged path) and of the full-text indexer's thread per 1 KB
    guide, ``Store.ingest`` of ``n`` guides into a fresh database with decoding on the calling thread: what
    bounds ingest once decoding is in the pool, and hardly moved by other load (CPU time, not wall time)."""
    from hub import decoding
    from hub.store import Store

    records = kilobyte_guides(n)
    raws = [r.raw for r in records]
    now = records[-1].created_ms + 1000
    real = decoding.shared_pool
    decoding.shared_pool = lambda: None
    rows = []
    try:
        for r in range(rounds):
            _progress(f"writer round {r + 1} of {rounds} (load {_load()})")
            path = tmp / f"writer-{r}.sqlite3"
            with Store(path) as store:
                writer, indexer = store._writer._thread.native_id, store._indexer._thread.native_id
                assert writer is not None and indexer is not None
                w0, i0 = _thread_cpu_s(writer), _thread_cpu_s(indexer)
                store.ingest(raws, now_ms=now)
                assert store.wait_indexed(600)
                rows.append(((_thread_cpu_s(writer) - w0) / n * 1e6, (_thread_cpu_s(indexer) - i0) / n * 1e6))
    finally:
        decoding.shared_pool = real
    return [f"### The writer's cost (P1): CPU per 1 KB guide, {n:,} guides, {rounds} rounds; load {_load()}", "",
            "| thread | µs of CPU a record (rounds) |", "|---|---:|",
            f"| writer (acknowledging transaction) | **{statistics.median(w for w, _ in rows):.0f}** "
            f"({', '.join(f'{w:.0f}' for w, _ in rows)}) |",
            f"| full-text indexer (its own file, beside the writer) | {statistics.median(i for _, i in rows):.0f} "
            f"({', '.join(f'{i:.0f}' for _, i in rows)}) |", ""]


# -- 2. the directory mix ----------------------------------------------------------------------------------


def _requests(store: Any, gen: Generator, rng: random.Random) -> dict[str, Callable[[], Any]]:
    from hub.queries import DirectoryQuery

    now = gen.now

    def search(make: Callable[[], DirectoryQuery]) -> Callable[[], Any]:
        return lambda: store.search(make(), now)

    return {
        "browse newest": search(lambda: DirectoryQuery(kind=rng.choice([None, "hub", "guide", "offer"]))),
        "text: a rare word": search(lambda: DirectoryQuery(q=rng.choice(VOCABULARY[1000:]))),
        "text: a common word": search(lambda: DirectoryQuery(q=rng.choice(WORDS[:10]))),
        "text: 2 words + region": search(lambda: DirectoryQuery(q=" ".join(rng.sample(WORDS[:20], 2)),
                                                                region=rng.choice(REGIONS))),
        "region filter": search(lambda: DirectoryQuery(region=rng.choice(REGIONS), kind="hub")),
        "service filter": search(lambda: DirectoryQuery(service=rng.choice(SERVICES)[0])),
        "mark filter (hubs)": search(lambda: DirectoryQuery(mark=rng.choice(SCHEMES), kind="hub")),
        "mark filter (all kinds)": search(lambda: DirectoryQuery(mark=rng.choice(SCHEMES))),
        "open offers": search(lambda: DirectoryQuery(open=True, kind="offer")),
        "open offers + region": search(lambda: DirectoryQuery(open=True, region=rng.choice(REGIONS))),
        "a hub's page": lambda: store.hub_view(rng.choice(gen.keys).public, now),
        "an offer with its tally": lambda: store.offer_view(rng.choice(gen.offers), now),
        "a guide": lambda: store.guide_view(rng.choice(gen.guides)),
        "mark check": lambda: store.mark_check(rng.choice(gen.keys).public, rng.choice(SCHEMES), now),
    }


def mix_section(home: Path, gen: Generator, count: int) -> list[str]:
    from hub.store import Store

    rng = random.Random(21)
    names = [name for name, _ in MIX]
    sequence = rng.choices(names, weights=[w for _, w in MIX], k=count)
    with Store(home / "hub.sqlite3") as store:
        requests = _requests(store, gen, random.Random(22))
        for name in names:  # warm the page cache as a running hub's would be
            requests[name]()
        times: dict[str, list[float]] = {name: [] for name in names}
        every: list[float] = []
        for name in sequence:
            start = time.perf_counter()
            requests[name]()
            ms = (time.perf_counter() - start) * 1000
            times[name].append(ms)
            every.append(ms)
        hits, misses = store._search_cache.hits, store._search_cache.misses
        stored = store.count()
    lines = [f"### Directory at {stored:,} records (P7): {count:,} requests of the mix, load {_load()}", "",
             f"Whole mix: **p50 {statistics.median(every):.1f} ms, p99 {_percentile(every, 0.99):.1f} ms**, "
             f"max {max(every):.1f} ms (search cache: {hits:,} hits, {misses:,} misses).", "",
             "| request | share | p50 | p99 |", "|---|---:|---:|---:|"]
    for name, weight in MIX:
        t = times[name]
        if t:
            lines.append(f"| {name} | {weight} % | {statistics.median(t):.1f} ms | {_percentile(t, 0.99):.1f} ms |")
    return lines + [""]


# -- 3. a hub process on one core --------------------------------------------------------------------------

_SERVE = """
import asyncio, os, sys, time
from pathlib import Path
os.sched_setaffinity(0, {int(sys.argv[2])})
LAG_LOG = open(sys.argv[3], "w", buffering=1)
run = asyncio.run

async def _sample():
    # Event-loop lag from inside: how late a 10 ms sleep wakes; lines "monotonic lag_ms" for lags over 2 ms.
    loop = asyncio.get_running_loop()
    while True:
        start = loop.time()
        await asyncio.sleep(0.01)
        lag = (loop.time() - start - 0.01) * 1000
        if lag > 2:
            LAG_LOG.write(f"{time.monotonic():.3f} {lag:.1f}\\n")

def _run(main, **kwargs):
    async def with_sampler():
        task = asyncio.create_task(_sample())
        try:
            return await main
        finally:
            task.cancel()
    return run(with_sampler(), **kwargs)

asyncio.run = _run
from hub.home import Home
from hub.serve import run_hub
run_hub(Home.open(Path(sys.argv[1])), "127.0.0.1", 0)
"""


def _loop_lag(path: Path, start: float, end: float) -> float:
    """The worst event-loop lag (ms) the hub's own sampler saw between two ``time.monotonic()`` moments."""
    worst = 0.0
    for line in path.read_text().splitlines():
        at, lag = line.split()
        if start <= float(at) <= end:
            worst = max(worst, float(lag))
    return worst


def _vm(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of ``pid`` in MiB, and "children": the VmRSS of its child processes (decode workers)."""
    out = {"children": 0.0}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            out[name] = int(value.split()[0]) / 1024
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                out["children"] += _vm(int(child))["VmRSS"]
            except OSError:
                pass  # it exited meanwhile
    return out


class _Lag(threading.Thread):
    """Asks the hub for ``/fed/v1/info`` every 20 ms; a slow answer means its event loop was busy."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(daemon=True)
        self.host, self.port = host, port
        self.samples: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        while not self.stop.is_set():
            start = time.perf_counter()
            conn.request("GET", "/fed/v1/info")
            conn.getresponse().read()
            self.samples.append((time.perf_counter() - start) * 1000)
            self.stop.wait(0.02)
        conn.close()

    def take(self) -> list[float]:
        out, self.samples = self.samples, []
        return out


def _reconcile(peer: Any, storage: Any) -> tuple[float, int, int]:
    """One whole reconciliation as the initiating peer, over its session (bench.hub_serve_probe.SessionPeer):
    (ms, rounds, ids the hub has that we lack)."""
    from federation.negentropy import Negentropy

    start = time.perf_counter()
    client = Negentropy(storage, 60 * 1024)
    msg: bytes | None = client.initiate(whole_range_fingerprint=True)
    rounds = need = 0
    while msg is not None:
        reply = peer.sync(msg)
        msg, _, got = client.reconcile_initiator(reply)
        need += len(got)
        rounds += 1
    return (time.perf_counter() - start) * 1000, rounds, need


def _http_requests(rng: random.Random, gen: Generator, guides: list[bytes]) -> dict[str, Callable[[], str]]:
    def directory(**params: str) -> str:
        return "/api/v1/directory?" + urllib.parse.urlencode(params)

    return {"browse newest": lambda: directory(),
            "text: a rare word": lambda: directory(q=rng.choice(VOCABULARY[1000:])),
            "text: a common word": lambda: directory(q=rng.choice(WORDS[:10])),
            "text: 2 words + region": lambda: directory(q=" ".join(rng.sample(WORDS[:20], 2)),
                                                        region=rng.choice(REGIONS)),
            "mark filter (hubs)": lambda: directory(mark=rng.choice(SCHEMES), kind="hub"),
            "a hub's page": lambda: f"/api/v1/hubs/{rng.choice(gen.keys).hub_id}",
            "a guide": lambda: f"/api/v1/records/{rng.choice(guides).hex()}"}


def _query_loop(host: str, port: int, gen: Generator, guides: list[bytes], stop: threading.Event,
                out: list[float], limit: int | None = None) -> None:
    rng = random.Random(31)
    requests = _http_requests(rng, gen, guides)
    names = list(requests)
    conn = http.client.HTTPConnection(host, port, timeout=120)
    while not stop.is_set() and (limit is None or len(out) < limit):
        path = requests[rng.choice(names)]()
        start = time.perf_counter()
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status}")
        out.append((time.perf_counter() - start) * 1000)
    conn.close()


def _p50_max(samples: list[float]) -> str:
    """"p50 / max ms" of the outside probe's samples; "–" when a phase was shorter than one sample."""
    return f"{statistics.median(samples):.1f} / {max(samples):.1f} ms" if samples else "–"


def hub_section(home: Path, gen: Generator, burst: int, queries: int) -> list[str]:
    from hub.store import Store

    from .hub_serve_probe import SessionPeer

    with Store(home / "hub.sqlite3") as store:
        items = store.sync_items()
    guides = list(gen.guides)  # stored ones: the burst's own are not there until pushed
    records = [gen.next() for _ in range(burst)]
    from federation.negentropy import Storage

    peer = Storage(items[:-1000] + [(r.created_ms, hashlib.sha256(b"peer-only %d" % i).digest())
                                    for i, r in enumerate(records[:1000])])  # lacks our newest, has 1,000 we lack
    log = home.parent / f"{home.name}-serve.log"
    lag_log = home.parent / f"{home.name}-loop-lag.log"
    cpu = min(os.sched_getaffinity(0))
    # One client asks as fast as it is answered: lift the per-address bucket for requests without the API token
    # (limits.http_rate_per_s, 50/s), which a hub's one keep-alive benchmark client exceeds once queries are fast.
    env = {**os.environ, "COOPHUB_LIMIT_HTTP_RATE_PER_S": "100000", "COOPHUB_LIMIT_HTTP_RATE_BURST": "100000"}
    with open(log, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-c", _SERVE, str(home), str(cpu), str(lag_log)], cwd=ROOT,
                                stdout=err, stderr=err, env=env)
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                info = json.loads((home / "serve.json").read_text())
                if info.get("pid") == proc.pid:
                    break
            except (OSError, ValueError):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the hub did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        url = urllib.parse.urlsplit(info["url"])
        host, port = url.hostname or "127.0.0.1", int(url.port or 0)
        vm: dict[str, dict[str, float]] = {"start": _vm(proc.pid)}
        lag = _Lag(host, port)
        lag.start()
        moments = [time.monotonic()]
        alone: list[float] = []
        _query_loop(host, port, gen, guides, threading.Event(), alone, limit=queries)
        vm["queries"] = _vm(proc.pid)
        moments.append(time.monotonic())
        idle_lag = lag.take()
        # Two founders' sessions, as two peers would hold: one reconciles, the other pushes the burst.
        syncing = SessionPeer(info["url"], gen.keys[1], gen.charter.id, peer)
        pusher = SessionPeer(info["url"], gen.keys[2], gen.charter.id)
        first = _reconcile(syncing, peer)
        first_lag = lag.take()
        moments.append(time.monotonic())
        vm["reconciled"] = _vm(proc.pid)
        # Together: queries, a pushed burst, and reconciliations, until the burst is in.
        stop = threading.Event()
        during: list[float] = []
        querying = threading.Thread(target=_query_loop, args=(host, port, gen, guides, stop, during), daemon=True)
        querying.start()
        started = time.perf_counter()

        def push_all() -> None:
            for i in range(0, len(records), 500):
                pusher.push([r.raw for r in records[i:i + 500]])

        pushing = threading.Thread(target=push_all, daemon=True)
        pushing.start()
        syncs = []
        while pushing.is_alive():  # a reconciliation a second: five times a hub's default rate
            syncs.append(_reconcile(syncing, peer))
            time.sleep(max(0.0, 1.0 - syncs[-1][0] / 1000))
        pushing.join()
        burst_s = time.perf_counter() - started
        stop.set()
        querying.join()
        busy_lag = lag.take()
        moments.append(time.monotonic())
        vm["busy"] = _vm(proc.pid)
        lag.stop.set()
        lag.join()
        syncing.close()
        pusher.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    inside = [_loop_lag(lag_log, a, b) for a, b in zip(moments, moments[1:], strict=False)]
    with Store(home / "hub.sqlite3") as store:
        stored = store.count()
    _save_state(home, gen)  # the burst is stored now: the next run generates records after it
    return [f"### A hub process pinned to one CPU over {len(items):,} records (P8, the small box); load {_load()}",
            "", "| moment | VmRSS | worst event-loop lag in the phase (the hub's own 10 ms sampler) | "
            "`GET /fed/v1/info` every 20 ms: p50 / max |", "|---|---:|---:|---:|",
            f"| just started | {vm['start']['VmRSS']:.0f} MiB | – | – |",
            f"| after {len(alone):,} directory and page requests | {vm['queries']['VmRSS']:.0f} MiB | "
            f"{inside[0]:.0f} ms | {_p50_max(idle_lag)} |",
            f"| after its first reconciliation ({first[1]} rounds, {first[0]:,.0f} ms, peer told of "
            f"{first[2]:,} records) | **{vm['reconciled']['VmRSS']:.0f} MiB** | **{inside[1]:.0f} ms** | "
            f"{_p50_max(first_lag)} |",
            f"| after the burst below | {vm['busy']['VmRSS']:.0f} MiB | **{inside[2]:.0f} ms** | "
            f"{_p50_max(busy_lag)} |",
            f"| peak (VmHWM) | {vm['busy']['VmHWM']:.0f} MiB | | |",
            f"| its decode workers, after the burst (separate processes) | {vm['busy']['children']:.0f} MiB | | |",
            "",
            f"Queries alone (HTTP, keep-alive): p50 {statistics.median(alone):.1f} ms, p99 "
            f"{_percentile(alone, 0.99):.1f} ms over {len(alone):,}.", "",
            f"**Together** — a burst of {burst:,} records pushed in batches of 500, {len(syncs)} reconciliations "
            "(one a second) "
            f"(median {statistics.median(s[0] for s in syncs):,.0f} ms each) and queries from another thread: "
            f"burst ingested at **{burst / burst_s:,.0f} records/s**; queries p50 "
            f"{statistics.median(during):.1f} ms, **p99 {_percentile(during, 0.99):.1f} ms** over {len(during):,}; "
            f"{stored - len(items):,} records added.", ""]


def catch_up_section(tmp: Path, size: int, p1: float) -> list[str]:
    """P6: ``coophub join`` of a new hub from ``size`` records (bench.fed_bench.catch_up: pages of 500 over
    the transport on main, progress against the source's announced total), against P1 of this run."""
    from cli.output import CliError

    from .fed_bench import catch_up

    _progress(f"catch-up of {size:,} records (load {_load()})")
    try:
        lines = catch_up(tmp, size, 1_000, random.Random(2026))
    except CliError as exc:  # bench.fed_bench's catch-up (join, then one sync) is federation's to keep working
        return [f"### Catch-up (P6): not measured in this run — {exc}", ""]
    rate = next(float(line.split("**")[1].split()[0].replace(",", "")) for line in lines if "coophub join" in line)
    return lines[:-1] + [f"| **ratio, catch-up to P1 on both cores ({p1:,.0f}/s, this run)** | **{rate / p1:.2f}** |",
                         ""]


def run(quick: bool) -> str:
    size = 100_000 if quick else 1_000_000
    home, gen = database(size)
    lines = ["## Scale on a small box (bench/scale_bench.py)", "",
             f"Load average at start {_load()} on {os.cpu_count()} CPUs. Database: {home} ({size:,} records).", ""]
    rates: dict[str, float] = {}
    sections = os.environ.get("COOPHUB_SCALE_SECTIONS", "writer,ingest,catchup,mix,hub").split(",")
    with tempfile.TemporaryDirectory(prefix="scale-bench-") as tmp:
        if "writer" in sections:
            lines += writer_section(Path(tmp), 2_000 if quick else 10_000, 3)
        if "ingest" in sections:
            lines += ingest_section(Path(tmp), 2_000 if quick else 10_000, 2 if quick else 3, rates)
        if "catchup" in sections and "pooled" in rates:
            lines += catch_up_section(Path(tmp), 10_000 if quick else 100_000, rates["pooled"])
    if "mix" in sections:
        lines += mix_section(home, gen, 500 if quick else 3_000)
    if "hub" in sections:
        lines += hub_section(home, gen, 2_000 if quick else 10_000, 200 if quick else 1_000)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--one-core":
        _one_core_child(sys.argv[2])
    else:
        print(run("--quick" in sys.argv))
