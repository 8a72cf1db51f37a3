"""A flood of malformed requests over real HTTP (docs/RELIABILITY.md "Client input never causes a 5xx").

Seeded requests (tests/faults/malformed.py) to every route of a running `coophub serve` — half of the /api ones
with the bearer token, so that publishing's deeper checks are reached — from 32 loopback addresses at once (a
per-address rate limit must not be the only thing answering). Every answer must be below 500; the hub's log
must hold no traceback; its resident memory must stay bounded; afterwards an honest request is answered and the
database is intact. Connections the hub closes early (a body over its limit) are counted, not failures.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from yarl import URL

from .harness import SIZES, HubProcess, announce_seed, integrity, make_homes, record_figures
from .malformed import Request, requests

#: Requests per size: issue 9 asks for 1e5; `make test` sends 3,000.
PLAN = {"short": 3_000, "long": 100_000}
WORKERS = 16
ADDRESSES = [f"127.0.2.{i}" for i in range(1, 33)]
RSS_GROWTH_BOUND_KIB = 128 * 1024  # whatever the request count: growth with it would be a leak


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(data), 65536):
        yield data[i:i + 65536]


async def _send(http: aiohttp.ClientSession, base: str, req: Request) -> int | None:
    url = URL(base + req.path, encoded="%" in req.path).with_query(req.query) if req.query else \
        URL(base + req.path, encoded="%" in req.path)
    data: object = req.body
    if req.body is not None and req.chunked:
        data = _chunks(req.body)
    elif req.body is not None and len(req.body) > 1024 * 1024:
        data = io.BytesIO(req.body)  # aiohttp warns that large raw bytes would block its loop
    try:
        async with http.request(req.method, url, data=data, headers=req.headers, allow_redirects=False,
                                timeout=aiohttp.ClientTimeout(total=60)) as resp:
            await resp.read()
            return resp.status
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None  # the hub closed the connection (a body over its limit) or the client refused the URL


@pytest.mark.parametrize("size", SIZES)
async def test_a_malformed_flood_gets_no_5xx_and_memory_stays_bounded(tmp_path: Path, size: str) -> None:
    total = PLAN[size]
    rng = announce_seed(f"malformed/{size}")
    (home,) = make_homes(tmp_path, ["target"])
    hub = HubProcess(home)
    statuses: Counter[int] = Counter()
    by_route: Counter[str] = Counter()
    unanswered = 0
    samples: list[int] = []
    async with aiohttp.ClientSession() as http:
        await hub.start(http)
        flood = requests(rng, total, hub.token)
        sessions = [aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(a, 0), limit=4))
                    for a in ADDRESSES]
        warm = 200
        done = 0

        async def worker(n: int) -> None:
            nonlocal unanswered, done
            for req in flood:  # the workers share one generator: each request is sent once
                status = await _send(sessions[(n + done) % len(sessions)], hub.url, req)
                done += 1
                if status is None:
                    unanswered += 1
                    continue
                statuses[status] += 1
                if status >= 500:
                    by_route[f"{status} {req.route}"] += 1
                if done == warm:
                    samples.append(hub.rss_kib())

        async def sample() -> None:
            while True:
                await asyncio.sleep(0.25)
                samples.append(hub.rss_kib())

        start_rss = hub.rss_kib()
        started = time.monotonic()
        sampler = asyncio.create_task(sample())
        try:
            await asyncio.gather(*(worker(n) for n in range(WORKERS)))
        finally:
            sampler.cancel()
            await asyncio.gather(sampler, return_exceptions=True)
            for session in sessions:
                await session.close()
        elapsed = time.monotonic() - started
        assert hub.alive, hub.log_tail()
        end_rss = hub.rss_kib()
        async with http.get(f"{hub.url}/api/v1/status") as resp:
            honest = resp.status
    code = hub.stop()
    log = hub.log_text()
    fives = sum(n for s, n in statuses.items() if s >= 500)
    warm_rss = samples[0] if samples else start_rss
    figures = record_figures(
        "malformed", size, requests=total, answered=sum(statuses.values()), unanswered=unanswered,
        status_counts={str(k): v for k, v in sorted(statuses.items())}, five_xx=fives,
        five_xx_by_route=dict(by_route.most_common(12)), rss_start_kib=start_rss, rss_after_warmup_kib=warm_rss,
        rss_peak_kib=max(samples, default=end_rss), rss_end_kib=end_rss, log_lines=hub.log_lines,
        log_bytes=hub.log_bytes, log_tracebacks=log.count("Traceback"), seconds=round(elapsed, 1),
        requests_per_s=round(total / elapsed), honest_status=honest, integrity=integrity(hub.db))
    assert honest == 200
    assert fives == 0, f"{fives} answers were 5xx: {figures['five_xx_by_route']}"
    assert "Traceback" not in log, f"{log.count('Traceback')} tracebacks in the log"
    assert end_rss - warm_rss < RSS_GROWTH_BOUND_KIB, figures
    assert figures["integrity"] == "ok"
    assert code == 0, hub.log_tail()
