"""Run every benchmark in :data:`bench.BENCHMARKS` and write the markdown report to bench/results/latest.md.

Usage: ``python -m bench [--quick] [NAME …]`` — ``--quick`` runs shorter rounds (for CI smoke checks); names
restrict the run to those modules.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import os
import platform
import sys
import time
from pathlib import Path

from . import BENCHMARKS

RESULTS = Path(__file__).resolve().parent / "results" / "latest.md"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()} ({platform.python_implementation()})")


def run_all(names: list[str], quick: bool) -> str:
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    sections = [f"# coophub benchmarks\n\n{stamp}; {machine()}; {'quick' if quick else 'full'} run.\n"]
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        run = getattr(module, "run", None)
        if run is None:
            raise SystemExit(f"bench/{name}.py has no run(quick: bool) -> str")
        start = time.perf_counter()
        print(f"running {name} …", file=sys.stderr, flush=True)
        section = run(quick).rstrip() + "\n"
        sections.append(section + f"\n_{name} took {time.perf_counter() - start:.1f} s._\n")
    return "\n".join(sections)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter rounds")
    parser.add_argument("names", nargs="*",
                        help=f"benchmarks to run (default: all of {', '.join(BENCHMARKS)})")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    report = run_all(args.names or BENCHMARKS, args.quick)
    print(report)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(report, encoding="utf-8")
    print(f"wrote {RESULTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
