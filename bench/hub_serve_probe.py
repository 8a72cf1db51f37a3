"""A real hub process over a benchmark database: its memory, and latency through HTTP (used by hub_bench).

:func:`probe` starts ``hub.serve.run_hub`` — what ``coophub serve`` runs: the aiohttp app, the web pages, the
federation driver and the Store — in a child process on 127.0.0.1 (port 0), waits for its ``serve.json``, then
from this process:

1. reads the child's VmRSS just after start;
2. asks the directory API (``GET /api/v1/directory``) every query shape and a hub page, interleaved, over one
   keep-alive connection, and reads VmRSS again;
3. publishes pre-signed records one request at a time (``POST /api/v1/publish``, the API a client uses; each
   answered only after COMMIT), as a Nostr client sends EVENTs to a relay: guides only, then the generator's
   mix of kinds;
4. POSTs idle anti-entropy openings to ``/fed/v1/sync`` (a whole-range fingerprint over the same items the
   hub holds, as a peer in sync would send): the first makes the hub build its sealed Negentropy storage of
   every record (``Federation.sync_storage``, which it then keeps), the next SYNCS are plain idle exchanges;
5. reads VmRSS and the peak (VmHWM), and stops the child with SIGTERM.

The server answers with its own clock, so no offer of the generated (early 2026) records is open any more;
the HTTP shapes therefore leave out the "open offers" filters, which hub_bench times on the Store directly.
"""

from __future__ import annotations

import http.client
import json
import random
import signal
import statistics
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from federation.negentropy import Negentropy, Storage
from protocol import HubKey

__all__ = ["probe"]

ROOT = Path(__file__).resolve().parent.parent
SYNCS = 9  # idle anti-entropy requests after the first
_SERVE = ("import sys; from pathlib import Path; from hub.home import Home; from hub.serve import run_hub; "
          "run_hub(Home.open(Path(sys.argv[1])), '127.0.0.1', 0)")


def _status(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of ``pid`` in MiB."""
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            out[name] = int(value.split()[0]) / 1024
    return out


def _wait_for_url(home: Path, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 120) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the hub exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            info = json.loads((home / "serve.json").read_text())
            if info.get("pid") == proc.pid:
                return str(info["url"])
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the hub did not start within {timeout_s:.0f} s: {log.read_text()[-2000:]}")


def _shapes(rng: random.Random, words: list[str], rare: list[str], regions: list[str], schemes: list[str],
            keys: list[HubKey]) -> dict[str, Callable[[], str]]:
    def directory(**params: str) -> str:
        return "/api/v1/directory?" + urllib.parse.urlencode(params)

    return {
        "text: a common word": lambda: directory(q=rng.choice(words[:10])),
        "text: a rare word": lambda: directory(q=rng.choice(rare)),
        "text: 2 words + region": lambda: directory(q=" ".join(rng.sample(words[:20], 2)),
                                                    region=rng.choice(regions)),
        "mark filter (hubs)": lambda: directory(mark=rng.choice(schemes), kind="hub"),
        "no filter (newest)": lambda: directory(),
        "a hub's page (GET /api/v1/hubs/{id})": lambda: f"/api/v1/hubs/{rng.choice(keys).hub_id}",
    }


def _get(conn: http.client.HTTPConnection, path: str) -> float:
    start = time.perf_counter()
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read()
    elapsed = time.perf_counter() - start
    if response.status != 200:
        raise RuntimeError(f"GET {path}: {response.status} {body[:300]!r}")
    return elapsed * 1000


def _post_sync(conn: http.client.HTTPConnection, body: bytes) -> tuple[float, int]:
    start = time.perf_counter()
    conn.request("POST", "/fed/v1/sync", body=body, headers={"Content-Type": "application/negentropy"})
    response = conn.getresponse()
    reply = response.read()
    elapsed = time.perf_counter() - start
    if response.status != 200:
        raise RuntimeError(f"POST /fed/v1/sync: {response.status} {reply[:300]!r}")
    return elapsed * 1000, len(reply)


def _publish(conn: http.client.HTTPConnection, token: str, raws: Sequence[bytes]) -> list[float]:
    """Milliseconds of each sequential publish request; every record must be accepted."""
    times = []
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    for raw in raws:
        body = json.dumps({"record": raw.hex()}).encode()
        start = time.perf_counter()
        conn.request("POST", "/api/v1/publish", body=body, headers=headers)
        response = conn.getresponse()
        reply = response.read()
        times.append((time.perf_counter() - start) * 1000)
        if response.status != 200 or json.loads(reply)["status"] != "accepted":
            raise RuntimeError(f"POST /api/v1/publish: {response.status} {reply[:300]!r}")
    return times


def _latencies(conn: http.client.HTTPConnection, shapes: dict[str, Callable[[], str]],
               runs: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in shapes}
    for _ in range(runs):
        for name, make in shapes.items():
            times[name].append(_get(conn, make()))
    return times


def probe(home: Path, items: list[tuple[int, bytes]], publish: Sequence[tuple[str, Sequence[bytes]]], *,
          words: list[str], rare: list[str], regions: list[str], schemes: list[str], keys: list[HubKey], runs: int,
          percentile: Callable[[list[float], float], float]) -> dict[str, Any]:
    """Run a hub over ``home`` and measure it; see the module docstring. ``publish`` holds (label, records)
    to publish in turn; ``items`` are the (created_ms, id) of every record the hub holds after that.

    Raises:
        RuntimeError: the hub did not start, or answered a request with an error.
    """
    log = home.parent / "serve.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-c", _SERVE, str(home)], cwd=ROOT, stdout=err, stderr=err)
    try:
        url = urllib.parse.urlsplit(_wait_for_url(home, proc, log))
        out: dict[str, Any] = {"start": _status(proc.pid)}
        conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=300)
        shapes = _shapes(random.Random(9), words, rare, regions, schemes, keys)
        times = _latencies(conn, shapes, runs)
        out["http"] = {name: (statistics.median(t), percentile(t, 0.99)) for name, t in times.items()}
        out["queries"] = _status(proc.pid)
        token = (home / "api.token").read_text().strip()
        out["publish"] = {}
        for label, raws in publish:
            start = time.perf_counter()
            times = _publish(conn, token, raws)
            out["publish"][label] = {"ms": times, "rate": len(raws) / (time.perf_counter() - start)}
        opening = Negentropy(Storage(items), 0).initiate(whole_range_fingerprint=True)
        first_ms, first_reply = _post_sync(conn, opening)
        then = [_post_sync(conn, opening) for _ in range(SYNCS)]
        out["sync"] = {"opening_bytes": len(opening), "first_ms": first_ms, "first_reply_bytes": first_reply,
                       "then_ms": [ms for ms, _ in then], "reply_bytes": then[-1][1]}
        out["after_sync"] = _status(proc.pid)
        conn.close()
        return out
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
