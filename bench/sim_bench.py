"""Federation simulation figures for the benchmark runner: ``run(quick) -> str`` returns a markdown section.

The simulation itself (method, seed, replay) lives in ``federation/sim.py``; see docs/perf/federation-sim.md.
"""

from federation.sim import run

__all__ = ["run"]
