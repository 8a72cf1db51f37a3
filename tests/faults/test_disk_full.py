"""Disk full (docs/RELIABILITY.md "A full disk refuses writes and recovers by itself").

``RLIMIT_FSIZE`` on the running hub (set with prlimit(2), no privileges needed for a child we own) makes every
write past a few KiB of any file fail with EFBIG — SIGXFSZ is ignored, as CPython does by default — which is
what SQLite sees on a full disk: its WAL append fails mid-transaction. While the limit holds, a publish must be
answered 503 with Retry-After and a JSON error (never a crash, never a success that is not durable, never a 4xx
that tells the client to drop the record), reads must go on, and once the
limit is lifted the same process must take publishes again, with nothing acknowledged lost and the database
intact.
"""

from __future__ import annotations

import resource
import time
from collections import Counter
from pathlib import Path

import aiohttp
import pytest

from .harness import (
    SIZES,
    HubProcess,
    announce_seed,
    eventually,
    guide_body,
    integrity,
    make_homes,
    publish,
    record_figures,
    stored_ids,
)

#: (fill-and-recover cycles, publishes before each fill, publishes tried while full) per size.
PLAN = {"short": (1, 10, 10), "long": (10, 50, 40)}
FULL_AT = 4096  # bytes: no file may be written past this offset, so every WAL frame fails


@pytest.mark.parametrize("size", SIZES)
async def test_a_full_disk_refuses_publishes_cleanly_and_recovers_without_restart(tmp_path: Path,
                                                                                  size: str) -> None:
    cycles, before, while_full = PLAN[size]
    rng = announce_seed(f"disk-full/{size}")
    (home,) = make_homes(tmp_path, ["full"])
    hub = HubProcess(home)
    acked: set[str] = set()
    answers: Counter[str] = Counter()
    details: set[str] = set()
    recover_s: list[float] = []
    reads_ok = 0
    n = 0

    headers: dict[str, str] = {}

    async def one(http: aiohttp.ClientSession) -> tuple[int, dict[str, object]]:
        nonlocal n
        n += 1
        headers.clear()
        status, data = await publish(http, hub, {"kind": "guide", "body": guide_body(
            f"Guide {n}", filler=rng.randrange(1, 4000))}, timeout_s=30, headers_out=headers)
        if status == 200:
            acked.add(str(data["id"]))
        return status, data

    async with aiohttp.ClientSession() as http:
        await hub.start(http)
        pid = hub.pid
        for _ in range(cycles):
            for _ in range(before):
                status, data = await one(http)
                assert status == 200, data
            hub.set_rlimit(resource.RLIMIT_FSIZE, (FULL_AT, resource.RLIM_INFINITY))
            for _ in range(while_full):
                status, data = await one(http)
                answers[str(status)] += 1
                if status != 200:
                    # A server-side failure: 503 with Retry-After, so that a client keeps the record and tries
                    # again (a 4xx would tell it the record is wrong).
                    assert status == 503 and headers.get("Retry-After", "").isdigit(), (status, headers, data)
                    assert set(data) >= {"error", "detail"}, data  # the API's JSON error, not a bare 500 page
                    # The cause, not a follow-on error of the rollback (once "no such savepoint: one").
                    assert "savepoint" not in data["detail"], data
                    details.add(f"{status} {data['error']}: {data['detail']}")
                # With the token, as the operator's tools read: reads without it are limited to 50 a second
                # per address, and this loop reads as fast as the hub answers.
                async with http.get(f"{hub.url}/api/v1/status",
                                    headers={"Authorization": f"Bearer {hub.token}"}) as resp:
                    assert resp.status == 200, await resp.text()  # reads go on while the disk is full
                    reads_ok += 1
                assert hub.alive, hub.log_tail()
            hub.set_rlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
            t0 = time.monotonic()

            async def takes_one() -> str | None:
                status, data = await one(http)
                return None if status == 200 else f"{status} {data}"

            await eventually(takes_one, "a publish succeeds once space returns", 30)
            recover_s.append(time.monotonic() - t0)
            assert hub.pid == pid and hub.alive, "the hub restarted"
        held_running = stored_ids(hub.db)
    assert acked <= held_running, f"{len(acked - held_running)} acknowledged records lost"
    assert hub.stop() == 0, hub.log_tail()
    check = integrity(hub.db)
    held = stored_ids(hub.db)
    lost = acked - held
    failed = sum(v for k, v in answers.items() if k != "200")
    log = hub.log_text()
    record_figures("disk-full", size, cycles=cycles, publishes_while_full=cycles * while_full,
                   refused_while_full=failed, answers_while_full=dict(answers), error_answers=sorted(details),
                   reads_while_full_ok=reads_ok, recover_s_max=round(max(recover_s), 2), restarts=0,
                   acked=len(acked), lost=len(lost), integrity=check,
                   log_lines=hub.log_lines, log_tracebacks=log.count("Traceback"))
    assert failed > 0, "no publish failed while the disk was full: the limit did not bite"
    assert not lost, f"{len(lost)} acknowledged records lost"
    assert check == "ok", check
