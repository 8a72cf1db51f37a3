"""nostr-relay 1.14 (a Python Nostr relay: falcon + uvicorn + SQLite) on 127.0.0.1: ingest rate, query latency, RSS.

The peer figure for docs/performance.md's hub comparison (/work/shared/peers/README.md: "~320 signed 1 KB
events/s ingested, query p50 2–7 ms"). Not part of ``python -m bench``: it runs in its own virtual environment,
never the project's::

    python3 -m venv /tmp/nostr-venv && /tmp/nostr-venv/bin/pip install 'nostr-relay==1.14' aionostr websockets
    /tmp/nostr-venv/bin/python bench/peers/nostr_relay_bench.py [--events 2000] [--runs 50]

It starts ``nostr-relay serve --use-uvicorn`` (one process) with its database in a temporary folder, sends
``--events`` signed kind-1 events of about 1 KB (content from a word list, three ``t`` tags) over one
websocket — one at a time, each waiting for its ``OK`` (as coophub's bench publishes one record per HTTP
request), then a pipelined burst — and times REQ queries until ``EOSE``. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import websockets
from aionostr.event import Event
from aionostr.key import PrivateKey

WORDS = ("care home visit rota safeguarding medication training dementia carer worker volunteer family "
         "governance member meeting budget procurement gloves aprons hoist mobility transport meals").split()
CONFIG = """DEBUG: false
relay_name: bench relay
storage:
  sqlalchemy.url: sqlite+aiosqlite:///{db}
  num_concurrent_reqs: 10
  num_concurrent_adds: 2
  validators:
    - nostr_relay.validators.is_not_too_large
    - nostr_relay.validators.is_signed
    - nostr_relay.validators.is_recent
verification:
  nip05_verification: disabled
gunicorn:
  bind: 127.0.0.1:{port}
  workers: 1
  loglevel: warning
  reload: false
authentication:
  enabled: false
message_timeout: 1800
subscription_limit: 32
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_events(n: int, rng: random.Random) -> tuple[list[str], list[str], str]:
    """(EVENT messages, event ids, author pubkey) of n signed ~1 KB text notes."""
    key = PrivateKey()
    pubkey, secret = key.public_key.hex(), key.hex()
    messages, ids = [], []
    for _ in range(n):
        content = " ".join(rng.choices(WORDS, k=150))[:1000]
        tags = [["t", w] for w in sorted(set(rng.sample(WORDS, 3)))]
        event = Event(kind=1, content=content, pubkey=pubkey, tags=tags)
        event.sign(secret)
        messages.append(json.dumps(["EVENT", event.to_json_object()], separators=(",", ":")))
        ids.append(event.id)
    return messages, ids, pubkey


async def ingest(url: str, messages: list[str]) -> tuple[float, float, list[float]]:
    """Sequential rate (events/s), pipelined rate, and per-event sequential latency (ms)."""
    half = len(messages) // 2
    latencies = []
    async with websockets.connect(url, max_size=None) as ws:
        start = time.perf_counter()
        for message in messages[:half]:
            t = time.perf_counter()
            await ws.send(message)
            reply = json.loads(await ws.recv())
            latencies.append((time.perf_counter() - t) * 1000)
            if reply[0] != "OK" or not reply[2]:
                raise RuntimeError(f"refused: {reply}")
        sequential = half / (time.perf_counter() - start)
        start = time.perf_counter()
        for message in messages[half:]:
            await ws.send(message)
        for _ in messages[half:]:
            reply = json.loads(await ws.recv())
            if reply[0] != "OK" or not reply[2]:
                raise RuntimeError(f"refused: {reply}")
        pipelined = (len(messages) - half) / (time.perf_counter() - start)
    return sequential, pipelined, latencies


async def queries(url: str, ids: list[str], pubkey: str, runs: int, rng: random.Random) -> dict[str, list[float]]:
    shapes = {
        "newest 20 text notes": lambda: {"kinds": [1], "limit": 20},
        "tag filter (#t, a common word), 20": lambda: {"#t": [rng.choice(WORDS)], "limit": 20},
        "author, 20": lambda: {"authors": [pubkey], "limit": 20},
        "one event by id": lambda: {"ids": [rng.choice(ids)]},
    }
    times: dict[str, list[float]] = {name: [] for name in shapes}
    async with websockets.connect(url, max_size=None) as ws:
        for i in range(runs):
            for name, make in shapes.items():
                sub = f"q{i}"
                t = time.perf_counter()
                await ws.send(json.dumps(["REQ", sub, make()]))
                while json.loads(await ws.recv())[0] != "EOSE":
                    pass
                times[name].append((time.perf_counter() - t) * 1000)
                await ws.send(json.dumps(["CLOSE", sub]))
    return times


def rss_mib(pid: int) -> dict[str, float]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            out[name] = int(value.split()[0]) / 1024
    return out


async def wait_for(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"nostr-relay exited with {proc.returncode}")
        try:
            async with websockets.connect(url):
                return
        except OSError:
            await asyncio.sleep(0.2)
    raise RuntimeError("nostr-relay did not start")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p * (len(ordered) - 1))))]


async def main(args: argparse.Namespace) -> dict[str, object]:
    rng = random.Random(args.seed)
    messages, ids, pubkey = make_events(args.events, rng)
    with tempfile.TemporaryDirectory(prefix="nostr-bench-") as tmp:
        port = free_port()
        config = Path(tmp) / "config.yaml"
        config.write_text(CONFIG.format(db=Path(tmp) / "nostr.sqlite3", port=port))
        relay = Path(sys.executable).parent / "nostr-relay"
        with open(Path(tmp) / "relay.log", "wb") as log:
            proc = subprocess.Popen([str(relay), "-c", str(config), "serve", "--use-uvicorn"], cwd=tmp,
                                    stdout=log, stderr=log)
        url = f"ws://127.0.0.1:{port}"
        try:
            await wait_for(url, proc)
            start_rss = rss_mib(proc.pid)
            sequential, pipelined, latencies = await ingest(url, messages)
            times = await queries(url, ids, pubkey, args.runs, rng)
            end_rss = rss_mib(proc.pid)
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    return {
        "events": args.events, "event_bytes_median": statistics.median(len(m) for m in messages),
        "ingest_sequential_per_s": round(sequential, 1), "ingest_pipelined_per_s": round(pipelined, 1),
        "ingest_sequential_p50_ms": round(statistics.median(latencies), 2),
        "queries": {name: {"p50_ms": round(statistics.median(t), 2), "p99_ms": round(pct(t, 0.99), 2)}
                    for name, t in times.items()},
        "rss_start_mib": round(start_rss["VmRSS"]), "rss_end_mib": round(end_rss["VmRSS"]),
        "peak_mib": round(end_rss["VmHWM"]), "cpus": os.cpu_count(),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
