"""Slowloris under a 1,024 open-file limit (docs/RELIABILITY.md "An honest client is served during a
slowloris").

The hub runs with ``RLIMIT_NOFILE`` 1,024 — systemd's default soft limit — and 1,100 connections from eleven
loopback addresses each send a request's headers one byte at a time and never finish them; a connection the hub
closes is opened again. Meanwhile an honest client on 127.0.0.1 opens a fresh connection and asks for
``/api/v1/status`` twice a second. Nearly all of its requests must be answered, and the hub's log must not
grow by a line per refused connection (on main before issue 9 it wrote 181k "accept out of resources" lines in
25 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import resource
import time
from pathlib import Path

import aiohttp
import pytest

from .harness import SIZES, HubProcess, announce_seed, make_homes, percentile, record_figures

#: Seconds of attack per size.
PLAN = {"short": 10.0, "long": 60.0}
CONNECTIONS = 1_100
ATTACKERS = [f"127.0.3.{i}" for i in range(1, 12)]
FD_LIMIT = 1_024
HONEST_TIMEOUT_S = 5.0
HEADERS = b"GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Slow: " + b"a" * 4000


async def _slow_connection(port: int, source: str, rng: random.Random, until: float, stats: dict[str, int]
                           ) -> None:
    """One attacker: connect, dribble header bytes every 0.5–1.5 s, reconnect when the hub hangs up."""
    while time.monotonic() < until:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
        except OSError:
            stats["connect_failed"] += 1
            await asyncio.sleep(0.5)
            continue
        stats["opened"] += 1
        try:
            for byte in HEADERS:
                if time.monotonic() >= until:
                    break
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(rng.uniform(0.5, 1.5))
        except OSError:
            stats["closed_by_hub"] += 1
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


@pytest.mark.parametrize("size", SIZES)
async def test_an_honest_client_is_served_during_a_slowloris(tmp_path: Path, size: str) -> None:
    seconds = PLAN[size]
    rng = announce_seed(f"slowloris/{size}")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = CONNECTIONS + 512
    if soft < need:  # the attacking side (this process) needs more than 1,100 sockets
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    (home,) = make_homes(tmp_path, ["slow"])
    hub = HubProcess(home, rlimits={resource.RLIMIT_NOFILE: (FD_LIMIT, FD_LIMIT)})
    stats = {"opened": 0, "connect_failed": 0, "closed_by_hub": 0}
    latencies: list[float] = []
    failures: list[str] = []
    fds: list[int] = []
    try:
        async with aiohttp.ClientSession() as http:
            await hub.start(http)
            lines_before = hub.log_lines
            until = time.monotonic() + seconds
            attackers = [asyncio.create_task(_slow_connection(hub.port, ATTACKERS[i % len(ATTACKERS)],
                                                              random.Random(rng.random()), until, stats))
                         for i in range(CONNECTIONS)]
            await asyncio.sleep(2.0)  # let the connections pile up before the honest client arrives
            while time.monotonic() < until:
                fds.append(hub.open_fds())
                t0 = time.monotonic()
                try:
                    async with aiohttp.ClientSession() as fresh, fresh.get(
                            f"{hub.url}/api/v1/status", timeout=aiohttp.ClientTimeout(total=HONEST_TIMEOUT_S)
                    ) as resp:
                        await resp.read()
                        if resp.status == 200:
                            latencies.append(time.monotonic() - t0)
                        else:
                            failures.append(str(resp.status))
                except (aiohttp.ClientError, TimeoutError) as exc:
                    failures.append(type(exc).__name__)
                await asyncio.sleep(0.5)
            await asyncio.gather(*attackers, return_exceptions=True)
            assert hub.alive, hub.log_tail()
            log_lines = hub.log_lines - lines_before
    finally:
        hub.stop()
    asked = len(latencies) + len(failures)
    figures = record_figures(
        "slowloris", size, attack_s=seconds, connections=CONNECTIONS, attacker_addresses=len(ATTACKERS),
        fd_limit=FD_LIMIT, attacker_connections_opened=stats["opened"],
        attacker_connect_failed=stats["connect_failed"], attacker_closed_by_hub=stats["closed_by_hub"],
        honest_asked=asked, honest_served=len(latencies), honest_failures=failures[:10],
        honest_p50_s=round(percentile(latencies, 0.5), 3), honest_max_s=round(max(latencies, default=0), 3),
        hub_fds_max=max(fds, default=0), log_lines_during_attack=log_lines)
    assert asked > 0
    assert len(latencies) >= 0.9 * asked, f"the honest client was served {len(latencies)} times of {asked}"
    assert log_lines < 10_000, f"{log_lines} log lines during the attack"
    assert figures["honest_served"] > 0
