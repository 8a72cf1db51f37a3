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


def backfilled(shm: Path) -> int:
    """How many frames of the log a checkpoint has already copied into the main file (``nBackfill`` of the
    wal-index in ``-shm``, native byte order, at byte 96 after the two 48-byte copies of its header)."""
    data = shm.read_bytes()[:100]
    return struct.unpack("=I", data[96:100])[0] if len(data) >= 100 else 0


def tear(wal: Path, rng: random.Random, mode: str) -> dict[str, int] | None:
    """Tear the log inside a seeded frame that no checkpoint has copied yet; what was torn, or None when every
    frame is already in the main file.

    Only those frames can be torn by a crash: a checkpoint copies a frame only after its transaction was
    committed and synced, and the log is written again only after it restarts. (Tearing a frame already copied
    makes SQLite replay an older page beside newer ones in the main file — the first version of this test did
    that and got "database disk image is malformed", which no crash can produce.)"""
    data = wal.read_bytes()
    page_size, frames = wal_frames(data)
    done = backfilled(wal.with_name(wal.name.replace("-wal", "-shm")))
    if done >= len(frames):
        return None
    torn = rng.randrange(done, len(frames))
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
    return {"frames": len(frames), "backfilled": done, "torn_frame": torn, "cut_offset": cut,
            "commits_torn_away": sum(1 for _, commit in frames[torn:] if commit)}


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
            torn = None
            for attempt in range(4):  # until the log holds a frame no checkpoint copied yet
                for _ in range(per_round if attempt == 0 else 1):
                    status, data = await publish(http, hub, {"kind": "guide", "body": guide_body(
                        f"Round {r} guide {len(acked)}", filler=rng.randrange(1, 3000))})
                    assert status == 200, data
                    acked.append(str(data["id"]))
                hub.kill()
                torn = tear(wal, rng, mode)
                if torn is not None:
                    break
                await hub.start(http)
            assert torn is not None, "every frame of the log was checkpointed four times over"
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
                   # one publish is one transaction: what is lost is exactly the commits from the torn frame on
                   lost_equals_commits_torn_away=all(r["acked"] - r["survived"] == r["commits_torn_away"]
                                                     for r in results),
                   survived_of_torn_rounds=sum(r["survived"] for r in results),
                   acked_in_torn_rounds=sum(r["acked"] for r in results), integrity="ok", rounds_detail=results)
    assert "Traceback" not in hub.log_text(), hub.log_tail()
