"""coophub's benchmarks. ``python -m bench [--quick] [NAME …]`` runs them in the order of :data:`BENCHMARKS`.

Each module listed here exposes ``run(quick: bool) -> str`` returning one markdown section (starting with a
``##`` heading). ``__main__`` prints the sections and writes them to ``bench/results/latest.md``. To add a
benchmark, write ``bench/NAME.py`` with that function and append ``"NAME"`` below.
"""

from __future__ import annotations

__all__ = ["BENCHMARKS"]

#: Module names under ``bench/``, run in this order.
BENCHMARKS: list[str] = [
    "protocol_bench",
    "hub_bench",
    "sim_bench",
    "negentropy_bench",
    "fed_bench",
    "burst_bench",
    "governance_bench",
    "scale_bench",
]
