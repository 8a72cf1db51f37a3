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
4. opens an authenticated peer session (``/fed/v1/session``, :class:`SessionPeer`) as one of the association's
   founder hubs and sends idle anti-entropy openings over it (a whole-range fingerprint over the same items
   the hub holds, as a peer in sync would send): the first makes the hub build its sealed Negentropy storage
   of every record (``Federation.sync_storage``, which it then keeps), the next SYNCS are plain idle
   exchanges;
5. reads VmRSS and the peak (VmHWM), and stops the child with SIGTERM.

The server answers with its own clock, so no offer of the generated (early 2026) records is open any more;
the HTTP shapes therefore leave out the "open offers" filters, which hub_bench times on the Store directly.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from federation import wire
from federation.client import PeerClient
from federation.negentropy import Negentropy, Storage
from federation.transport import PeerConn
from protocol import DEFAULT_LIMITS, HubKey

__all__ = ["SessionPeer", "probe"]

T = TypeVar("T")

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


class SessionPeer:
    """A member hub's authenticated peer session with a hub under test, for synchronous benchmark code.

    A real :class:`federation.client.PeerClient` (the handshake, frames and bounded decoders every hub uses)
    runs on an event loop in a thread of its own; :meth:`sync` and :meth:`push` block until the reply. ``key``
    must be a member of ``association`` in the hub's database (the generator's founders are), so the hub gives
    the session the member role, as it would a peer. Requests the hub sends back over the session (its own
    anti-entropy with us) are answered from ``storage`` when given, and refused otherwise.
    """

    def __init__(self, url: str, key: HubKey, association: bytes, storage: Storage | None = None) -> None:
        self.url = url.rstrip("/")
        self.storage = storage
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="bench-peer", daemon=True)
        self._thread.start()
        self._http: aiohttp.ClientSession | None = None
        self.client: PeerClient = self._call(self._open(key, association))

    async def _open(self, key: HubKey, association: bytes) -> PeerClient:
        self._http = aiohttp.ClientSession()
        return PeerClient(self._http, DEFAULT_LIMITS, "", key=key, association=association, handler=self._serve)

    async def _serve(self, conn: PeerConn, op: str, body: Any) -> Any:
        if op == "sync" and self.storage is not None and isinstance(body, bytes):
            return Negentropy(self.storage, DEFAULT_LIMITS.negentropy_frame_bytes).reconcile(body)
        if op == "announce":
            return {"ids": []}  # a benchmark peer wants nothing
        raise wire.WireError(f"{op}: the benchmark peer serves only sync", reason="error")

    def _call(self, coro: Coroutine[Any, Any, T], timeout_s: float = 600) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout_s)

    def sync(self, message: bytes) -> bytes:
        """One Negentropy message over the session; the hub's reply."""
        return self._call(self.client.sync(self.url, message))

    def push(self, raws: list[bytes]) -> None:
        """Push records; every one must be accepted or already held.

        Raises:
            RuntimeError: the hub refused one.
        """
        results = self._call(self.client.push(self.url, raws))
        bad = [r for r in results if r.status not in ("accepted", "duplicate")]
        if bad:
            raise RuntimeError(f"push: {len(bad)} of {len(raws)} refused, first {bad[0]}")

    def close(self) -> None:
        async def shut() -> None:
            await self.client.close()
            if self._http is not None:
                await self._http.close()
            await asyncio.sleep(0.05)  # let the transports release their sockets

        try:
            self._call(shut(), 60)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(60)
            self._loop.close()


def _post_sync(peer: SessionPeer, body: bytes) -> tuple[float, int]:
    start = time.perf_counter()
    reply = peer.sync(body)
    return (time.perf_counter() - start) * 1000, len(reply)


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
          association: bytes, words: list[str], rare: list[str], regions: list[str], schemes: list[str],
          keys: list[HubKey], runs: int,
          percentile: Callable[[list[float], float], float]) -> dict[str, Any]:
    """Run a hub over ``home`` and measure it; see the module docstring. ``publish`` holds (label, records)
    to publish in turn; ``items`` are the (created_ms, id) of every record the hub holds after that;
    ``keys[0]`` must be a member of ``association`` (it opens the peer session).

    Raises:
        RuntimeError: the hub did not start, or answered a request with an error.
    """
    log = home.parent / "serve.log"
    # The benchmark client asks as fast as it is answered: lift the per-address bucket for requests without the
    # API token (limits.http_rate_per_s), which is there for the open internet, not for a measuring client.
    env = {**os.environ, "COOPHUB_LIMIT_HTTP_RATE_PER_S": "100000", "COOPHUB_LIMIT_HTTP_RATE_BURST": "100000"}
    with open(log, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-c", _SERVE, str(home)], cwd=ROOT, stdout=err, stderr=err,
                                env=env)
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
        peer = SessionPeer(f"{url.scheme}://{url.netloc}", keys[0], association, Storage(items))
        try:
            first_ms, first_reply = _post_sync(peer, opening)
            then = [_post_sync(peer, opening) for _ in range(SYNCS)]
        finally:
            peer.close()
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
