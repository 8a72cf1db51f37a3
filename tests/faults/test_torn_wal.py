"""A torn write-ahead log (docs/RELIABILITY.md "A torn log costs only its torn tail").

What a disk that lies about fsync, or a copy taken mid-write, leaves behind: ``hub.sqlite3-wal`` cut in the
middle of a frame, or its last frame half overwritten with garbage. Each round publishes guides one by one (so
the order of acknowledgements is the order of commits), SIGKILLs the hub (the log is not checkpointed), tears
the log at a seeded offset inside a frame, and starts the hub again. It must start, ``PRAGMA integrity_check``
must say ok, everything checkpointed before the round must be there, and what survives of the round must be a
prefix of it in commit order — SQLite replays the log's frames up to the first one that is incomplete or fails
its checksum, so a torn tail loses the transactions after the tear and never leaves a hole before it.
"""

from __future__ import annotations

import random
import struct
from pathlib import Path

import aiohttp
import pytest

from .harness import (
    SIZES,
    HubProcess,
    announce_seed,
    guide_body,
    integrity,
    make_homes,
    publish,
    record_figures,
    stored_ids,
)

#: (rounds, records per round) per size; the rounds alternate between cutting and overwriting.
PLAN = {"short": (2, 20), "long": (12, 80)}
WAL_HEADER = 32
FRAME_HEADER = 24


def wal_frames(data: bytes) -> tuple[int, list[tuple[int, bool]]]:
    """The page size and, for each frame of the log's current generation (its salts match the header's), its
    offset and whether it ends a transaction (a commit frame records the database size after it)."""
    if len(data) < WAL_HEADER:
        return 0, []
    page_size, salt = struct.unpack(">I", data[8:12])[0], data[16:24]
    frames = []
    offset = WAL_HEADER
    while offset + FRAME_HEADER + page_size <= len(data):
        header = data[offset:offset + FRAME_HEADER]
        if header[8:16] != salt:
            break  # a frame of an earlier generation: the log was restarted after a checkpoint
        frames.append((offset, struct.unpack(">I", header[4:8])[0] != 0))
        offset += FRAME_HEADER + page_size
    return page_size, frames


def tear(wal: Path, rng: random.Random, mode: str) -> dict[str, int]:
    """Tear the log inside a seeded frame of its current generation; what was torn, for the figures."""
    data = wal.read_bytes()
    page_size, frames = wal_frames(data)
    assert frames, f"the log holds no frames ({len(data)} bytes): nothing to tear"
    torn = rng.randrange(len(frames))
    start = frames[torn][0]
    cut = start + rng.randrange(1, FRAME_HEADER + page_size)  # never on a frame boundary
    if mode == "truncate":
        with open(wal, "r+b") as f:
            f.truncate(cut)
    else:  # garbage from the cut to the end of the frame, as a torn sector write leaves
        end = start + FRAME_HEADER + page_size
        with open(wal, "r+b") as f:
            f.seek(cut)
            f.write(rng.randbytes(end - cut))
    return {"frames": len(frames), "torn_frame": torn, "cut_offset": cut,
            "commits_before_tear": sum(1 for _, commit in frames[:torn] if commit)}


@pytest.mark.parametrize("size", SIZES)
async def test_a_torn_wal_loses_only_its_torn_tail(tmp_path: Path, size: str) -> None:
    rounds, per_round = PLAN[size]
    rng = announce_seed(f"torn-wal/{size}")
    (home,) = make_homes(tmp_path, ["torn"])
    hub = HubProcess(home)
    kept: set[str] = set()  # every id held (and checkpointed by a clean stop) before the round
    results = []
    async with aiohttp.ClientSession() as http:
        await hub.start(http)
        for r in range(rounds):
            mode = "truncate" if r % 2 == 0 else "garbage"
            hub.stop()  # a clean stop checkpoints: everything so far is in the main database file
            assert not (wal := hub.path / "hub.sqlite3-wal").exists() or wal.stat().st_size == 0
            kept = stored_ids(hub.db)
            await hub.start(http)
            acked: list[str] = []
            for i in range(per_round):
                status, data = await publish(http, hub, {"kind": "guide", "body": guide_body(
                    f"Round {r} guide {i}", filler=rng.randrange(1, 3000))})
                assert status == 200, data
                acked.append(str(data["id"]))
            hub.kill()
            torn = tear(wal, rng, mode)
            await hub.start(http)  # must start on the torn log
            held = stored_ids(hub.db)
            check = integrity(hub.db)
            survived = [rid in held for rid in acked]
            k = survived.count(True)
            results.append({"mode": mode, **torn, "acked": len(acked), "survived": k})
            assert check == "ok", f"round {r}: {check}"
            assert kept <= held, f"round {r}: {len(kept - held)} checkpointed records lost"
            assert survived == [True] * k + [False] * (len(acked) - k), \
                f"round {r}: what survived is not a prefix of the commit order: {survived}"
            status, data = await publish(http, hub, {"kind": "guide", "body": guide_body(f"After round {r}")})
            assert status == 200, data  # and it takes new records at once
    assert hub.stop() == 0, hub.log_tail()
    assert integrity(hub.db) == "ok"
    record_figures("torn-wal", size, rounds=rounds, records_per_round=per_round,
                   checkpointed_lost=0, holes=0,
                   # one publish is one transaction: what survives is exactly the commits before the tear
                   survived_equals_commits_before_tear=all(r["survived"] == r["commits_before_tear"]
                                                           for r in results),
                   survived_of_torn_rounds=sum(r["survived"] for r in results),
                   acked_in_torn_rounds=sum(r["acked"] for r in results), integrity="ok", rounds_detail=results)
    assert "Traceback" not in hub.log_text(), hub.log_tail()
