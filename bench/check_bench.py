"""How long `coophub check` and `check --repair` take (hub.check), on a store grown with hub_bench's Generator.

    python -m bench.check_bench [RECORDS]      # default 20,000

Prints seconds and records per second for check and repair, one run each (they are minutes-long maintenance
commands, not a hot path; docs/operations.md quotes the figure).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from hub.check import check, repair
from hub.store import Store
from protocol import DEFAULT_LIMITS

from .hub_bench import Generator


def main(n: int) -> None:
    gen = Generator()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "hub.sqlite3"
        with Store(db) as store:
            store.ingest([gen.charter.raw], now_ms=gen.now)
            while (have := store.count()) < n:
                store.ingest([gen.next().raw for _ in range(min(2000, n - have))], now_ms=gen.now)
            count = store.count()
        size = sum(p.stat().st_size for p in db.parent.glob("hub.sqlite3*")) / 2**20
        start = time.perf_counter()
        report = check(db, limits=DEFAULT_LIMITS, now_ms=gen.now)
        check_s = time.perf_counter() - start
        assert report.ok, report.findings[:5]
        start = time.perf_counter()
        repair(db, limits=DEFAULT_LIMITS, now_ms=gen.now)
        repair_s = time.perf_counter() - start
    print(f"{count:,} records, {size:.1f} MiB: check {check_s:.1f} s ({count / check_s:,.0f} records/s), "
          f"repair {repair_s:.1f} s ({count / repair_s:,.0f} records/s)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
