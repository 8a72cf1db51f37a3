"""Real `coophub serve` processes for the fault tests (docs/RELIABILITY.md), and what the tests share.

A :class:`HubProcess` is one hub: a home made the way `coophub init` and `join` make it, and a `coophub serve`
child process over it, which the test can kill with SIGKILL, restart on the same home and port, and start with
resource limits (``RLIMIT_FSIZE``, ``RLIMIT_NOFILE``) set in the child before it runs. Its stderr is a pipe
drained by a thread into ``serve.log`` (so a file-size limit on the hub never stops its log, as with journald),
counting lines and bytes: a flood must not make the log grow without bound.

Every test prints its seed and takes one from ``COOPHUB_TEST_SEED`` to replay it (STYLE.md; as in
tests/federation/test_network.py). Every test records its figures — counts, times, RSS, lost — with
:func:`record_figures`, which prints them and adds them to ``fault-figures.json`` in the session's temporary
directory (or the file ``COOPHUB_FAULT_FIGURES`` names): docs/RELIABILITY.md quotes them.

Sizes: each scenario is parametrised by ``SIZES``; ``short`` runs in `make test`, ``long`` (marked ``chaos``)
in `make test-chaos`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import random
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hub.home import Home
from hub.store import Store
from protocol import Record, build_record

# The fault tests poll and stamp time as the federation tests do (re-exported for them).
from tests.federation.network import eventually as eventually
from tests.federation.network import now_ms as now_ms

REPO = Path(__file__).resolve().parents[2]
SEED = int(os.environ.get("COOPHUB_TEST_SEED") or random.SystemRandom().randrange(2**32))

#: The two sizes of every scenario: ``short`` in `make test`, ``long`` (marked chaos) in `make test-chaos`.
SIZES = ["short", pytest.param("long", marks=pytest.mark.chaos)]

#: Anti-entropy and backoff short enough that a healed link is used again within about a second.
FAST_LIMITS = {"sync_interval_ms": 300, "backoff_base_ms": 100, "backoff_max_ms": 1000}

START_S = 90.0  # how long a hub may take to start: 20 starting at once on a loaded 2-core machine take ~40 s


def announce_seed(scenario: str) -> random.Random:
    """Print the seed (a failure's output then says how to replay it) and return a Random seeded from it and
    the scenario's name, so that scenarios draw independent streams from one seed."""
    print(f"{scenario}: seed {SEED} (replay with COOPHUB_TEST_SEED={SEED})")
    return random.Random(f"{SEED}:{scenario}")


def figures_path() -> Path:
    named = os.environ.get("COOPHUB_FAULT_FIGURES")
    if named:
        return Path(named)
    base = Path(os.environ.get("PYTEST_DEBUG_TEMPROOT", "/tmp")) / f"coophub-faults-{os.getuid()}"
    base.mkdir(parents=True, exist_ok=True)
    return base / "fault-figures.json"


def record_figures(scenario: str, size: str, **figures: Any) -> dict[str, Any]:
    """Print one scenario's figures and add them to the figures file (one JSON object per scenario and size,
    the latest run winning)."""
    entry = {"scenario": scenario, "size": size, "seed": SEED, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                   time.gmtime()), **figures}
    print(f"figures {json.dumps(entry, sort_keys=True)}")
    path = figures_path()
    try:
        known = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    known[f"{scenario}/{size}"] = entry
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(known, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)
    return entry


def guide_body(title: str, filler: int = 1) -> dict[str, Any]:
    return {"title": title, "summary": f"Notes on {title.lower()}.", "body": "# " + title + "\n\n" + "w" * filler,
            "license": "CC-BY-SA-4.0", "tags": ["practice"], "language": "en"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- homes ---------------------------------------------------------------------------------------------------


def make_homes(root: Path, names: list[str], limits: dict[str, int] | None = None) -> list[Home]:
    """Homes for hubs that found one association together (as `init` + `charter create` + `join` do): each has
    its key and token, config.toml naming the association and ``limits``, and the charter in its database."""
    homes = [Home.create(root / name, name.title()) for name in names]
    body = {"name": "Fault Test Co-operatives", "description": "Fault tests.",
            "founders": [h.key.public for h in homes], "endorsements_needed": 1, "schemes": []}
    charter = build_record(homes[0].key, bytes(32), "charter", body, now_ms() - 60_000)
    for home in homes:
        home.config.association_id = charter.id.hex()
        home.config.limits = dict(limits or {})
        home.save_config()
        _import(home, charter)
    return homes


def _import(home: Home, charter: Record) -> None:
    with Store(home.db_path, limits=home.limits(), blobs_dir=home.blobs_dir) as store:
        store.ingest([charter.raw], now_ms=now_ms(), source="import")


# -- the database, read from outside --------------------------------------------------------------------------


def stored_ids(db: Path) -> set[str]:
    """Every record id in a hub's database, read by a connection of the test's own (read-only: never a
    checkpoint, never a write), checking each id is the SHA-256 of its bytes."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        rows = conn.execute("SELECT id, raw FROM records").fetchall()
    finally:
        conn.close()
    bad = [bytes(i).hex() for i, raw in rows if hashlib.sha256(raw).digest() != bytes(i)]
    assert not bad, f"records whose id is not the hash of their bytes: {bad[:3]}"
    return {bytes(i).hex() for i, _ in rows}


def integrity(db: Path) -> str:
    """``PRAGMA integrity_check`` of a hub's database, read-only: "ok" or SQLite's list of problems."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return "; ".join(str(row[0]) for row in conn.execute("PRAGMA integrity_check").fetchall())
    finally:
        conn.close()


# -- one hub process -----------------------------------------------------------------------------------------


#: Every HubProcess made in this test session; tests/faults/conftest.py stops those still running after each
#: test, so a failing test leaves no `coophub serve` behind.
LIVE: list[HubProcess] = []


class HubProcess:
    """`coophub serve` over ``home`` as a child process; restartable on the same home and port."""

    def __init__(self, home: Home, *, rlimits: dict[int, tuple[int, int]] | None = None) -> None:
        LIVE.append(self)
        self.home = home
        self.path = home.path
        self.token = home.token
        self.rlimits = dict(rlimits or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.log_path = self.path.parent / f"{self.path.name}-serve.log"
        self.log_lines = 0
        self.log_bytes = 0
        self.starts = 0
        self._drain: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def db(self) -> Path:
        return self.path / "hub.sqlite3"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _preexec(self) -> None:  # runs in the child between fork and exec
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write over RLIMIT_FSIZE fails with EFBIG, no signal
        for which, limit in self.rlimits.items():
            resource.setrlimit(which, limit)

    def spawn(self) -> None:
        """Start the process (on the port of the previous start, else one the kernel picks)."""
        assert not self.alive, "already running"
        env = {k: v for k, v in os.environ.items() if not k.startswith("COOPHUB_")}
        argv = [sys.executable, "-m", "cli.main", "serve", "--home", str(self.path), "--port", str(self.port)]
        self.proc = subprocess.Popen(argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, preexec_fn=self._preexec)
        self.starts += 1
        self._drain = threading.Thread(target=self._drain_log, args=(self.proc,), daemon=True)
        self._drain.start()

    def _drain_log(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        with open(self.log_path, "ab") as out:
            for line in proc.stdout:
                self.log_lines += 1
                self.log_bytes += len(line)
                if self.log_bytes < 8 * 1024 * 1024:  # the count goes on; the file stays readable
                    out.write(line)
        proc.stdout.close()

    def _serving(self) -> str | None:
        """The URL serve.json names if it names this process, else None."""
        try:
            info = json.loads((self.path / "serve.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if info.get("pid") != self.pid:
            return None
        return str(info["url"])

    async def start(self, http: aiohttp.ClientSession) -> None:
        """Spawn and wait until the API answers."""
        self.spawn()
        await self.wait_up(http)

    async def wait_up(self, http: aiohttp.ClientSession) -> None:
        """Wait until the spawned process has written serve.json and its API answers."""
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            if not self.alive:
                raise AssertionError(f"serve exited early: {self.log_tail()}")
            url = self._serving()
            if url is not None:
                self.port = int(url.rsplit(":", 1)[1])
                with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                    async with http.get(f"{self.url}/api/v1/status",
                                        timeout=aiohttp.ClientTimeout(total=2)) as resp:
                        if resp.status == 200:
                            return
            await asyncio.sleep(0.05)
        raise AssertionError(f"serve did not start within {START_S:.0f} s: {self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no checkpoint, serve.json left behind."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._join_drain()

    def stop(self) -> int | None:
        """SIGTERM and wait (SIGKILL after 15 s): the clean stop `systemctl stop` does. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._join_drain()
        return self.proc.returncode

    def _join_drain(self) -> None:
        if self._drain is not None:
            self._drain.join(timeout=10)

    def set_rlimit(self, which: int, limit: tuple[int, int]) -> None:
        """Change a resource limit of the running hub (prlimit(2) on a child we own: no privileges needed to
        lower, or to raise a soft limit up to the hard one)."""
        resource.prlimit(self.pid, which, limit)

    def rss_kib(self) -> int:
        """The hub's resident set size (VmRSS, KiB)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


async def publish(http: aiohttp.ClientSession, hub: HubProcess, body: dict[str, Any],
                  timeout_s: float = 10, headers_out: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    """POST /api/v1/publish with the hub's token, as `coophub publish` does; (status, JSON answer). The
    response's headers are copied into ``headers_out`` if given.

    Raises:
        aiohttp.ClientError, asyncio.TimeoutError: no answer (the hub is down or was killed mid-request).
    """
    headers = {"Authorization": f"Bearer {hub.token}"}
    async with http.post(f"{hub.url}/api/v1/publish", json=body, headers=headers,
                         timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
        if headers_out is not None:
            headers_out.update(resp.headers)
        try:
            data = await resp.json(content_type=None)
        except ValueError:
            data = {"unparsed": (await resp.text())[:200]}
        return resp.status, data if isinstance(data, dict) else {"unparsed": data}


def stop_all(hubs: Iterable[HubProcess]) -> list[int | None]:
    """SIGTERM every running hub at once, then wait for each; their exit codes."""
    hubs = list(hubs)
    for hub in hubs:
        if hub.alive:
            with contextlib.suppress(OSError):
                hub.proc.terminate()  # type: ignore[union-attr]
    return [hub.stop() for hub in hubs]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- a cuttable TCP proxy ------------------------------------------------------------------------------------


class CutProxy:
    """127.0.0.1:<port> → 127.0.0.1:<target>, which can be cut (open connections are aborted, new ones closed
    at once) and restored. Written on asyncio protocols, which keep every transport in hand, so that closing it
    leaves no socket to the garbage collector (tests/federation/network.py's stream-based ``Proxy`` can, when
    the loop ends while connections are being made)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.cut_off = False
        self.refused = 0
        self.forwarded = 0
        self._server: asyncio.base_events.Server | None = None
        self._transports: set[asyncio.BaseTransport] = set()
        self._connecting: set[asyncio.Task[Any]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Front(self), "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    def cut(self) -> None:
        self.cut_off = True
        for transport in list(self._transports):
            transport.abort()

    def restore(self) -> None:
        self.cut_off = False

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._connecting):
            task.cancel()
        await asyncio.gather(*self._connecting, return_exceptions=True)
        self.cut()
        for _ in range(3):
            await asyncio.sleep(0)  # aborted transports close their sockets on the next turns of the loop


class _Pipe(asyncio.Protocol):
    def __init__(self, proxy: CutProxy) -> None:
        self.proxy = proxy
        self.transport: asyncio.Transport | None = None
        self.other: _Pipe | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.proxy._transports.add(transport)

    def data_received(self, data: bytes) -> None:
        if self.other is not None and self.other.transport is not None:
            self.other.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        assert self.transport is not None
        self.proxy._transports.discard(self.transport)
        if self.other is not None and self.other.transport is not None:
            self.other.transport.close()


class _Front(_Pipe):
    """The accepted side: buffers what the client sends until the upstream connection is made."""

    def __init__(self, proxy: CutProxy) -> None:
        super().__init__(proxy)
        self.pending: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self.proxy.cut_off:
            self.proxy.refused += 1
            transport.abort()
            return
        task = asyncio.get_running_loop().create_task(self._connect())
        self.proxy._connecting.add(task)
        task.add_done_callback(self.proxy._connecting.discard)

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, back = await loop.create_connection(lambda: _Pipe(self.proxy), "127.0.0.1", self.proxy.target_port)
        except OSError:
            if self.transport is not None:
                self.transport.abort()
            return
        assert isinstance(back, _Pipe) and back.transport is not None
        if self.transport is None or self.transport.is_closing():
            back.transport.abort()
            return
        self.proxy.forwarded += 1
        back.other, self.other = self, back
        for data in self.pending:
            back.transport.write(data)
        self.pending.clear()

    def data_received(self, data: bytes) -> None:
        if self.other is None:
            self.pending.append(data)
        else:
            super().data_received(data)
