"""federation/sim.py: small seeded runs reach every hub and replay exactly from their seed."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from federation import sim

SEED = 11
ROOT = Path(__file__).resolve().parents[2]


def test_push_reaches_all_hubs_and_replays() -> None:
    print(f"seed: {SEED}")
    first = sim.dissemination(50, SEED)
    assert first["converged"] and first["push_coverage"] > 0.8 and first["push_hops"] >= 1
    assert sim.dissemination(50, SEED) == first
    assert sim.dissemination(50, SEED + 1) != first


def test_anti_entropy_alone_reaches_all_hubs() -> None:
    print(f"seed: {SEED}")
    result = sim.dissemination(50, SEED, push=False)
    assert result["converged"] and result["push_coverage"] == pytest.approx(1 / 50)
    assert result["rounds"] is not None and result["rounds"] > 1
    assert result["idle_bytes_avg"] == 21  # 20-byte whole-range fingerprint up, 1 byte back


def test_loss_and_partition_converge() -> None:
    print(f"seed: {SEED}")
    assert sim.dissemination(50, SEED, loss=0.2)["converged"]
    part = sim.partition_heal(50, SEED, records=2, split_ms=30_000)
    assert part["converged"] and part["heal_ms"] is not None
    assert part == sim.partition_heal(50, SEED, records=2, split_ms=30_000)


def test_real_records_and_a_faulty_hub() -> None:
    print(f"seed: {SEED}")
    result = sim.real_records(12, SEED, records=2, spam=30)
    assert result["reached_all"]
    assert result["dropped_bad"] == result["bad_neighbours"] > 0


def test_byte_figures() -> None:
    assert sim.idle_bytes(500)[:2] == sim.idle_bytes(5_000)[:2] == (20, 1)
    rows = sim.repair_bytes(5_000, (1, 50), SEED)
    assert [r["d"] for r in rows] == [1, 50] and all(r["fetch_ids"] == 32 * r["d"] for r in rows)


def test_replays_across_processes() -> None:
    """str/bytes hashing is randomised per process: results must not depend on it."""
    code = "from federation import sim; print(sim.dissemination(40, 3, loss=0.2))"
    outputs = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                              check=True)
        outputs.add(done.stdout)
    assert len(outputs) == 1


def test_cli_prints_the_seed(capsys: pytest.CaptureFixture[str]) -> None:
    assert sim.main(["--hubs", "30", "--seed", "4", "--quick"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("seed: 4\n") and "## Federation simulation (seed 4)" in out


@pytest.mark.parametrize("module", ["peers", "gossip", "sync", "node", "sim"])
def test_core_is_sans_io(module: str) -> None:
    tree = ast.parse((ROOT / "federation" / f"{module}.py").read_text())
    names = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
             for alias in node.names}
    names |= {(node.module or "").split(".")[0] for node in ast.walk(tree)
              if isinstance(node, ast.ImportFrom)}
    assert not names & {"asyncio", "aiohttp", "sqlite3", "sqlite_utils", "socket", "time", "trio"}


def test_every_simulated_hub_is_the_production_node() -> None:
    """What the simulation measures is what the driver runs: the same FederationNode, fed the same events."""
    from federation.node import FederationNode

    net = sim.Network(5, SEED)
    assert all(type(hub.node) is FederationNode for hub in net.hubs)
    assert "FederationNode(" in (ROOT / "federation" / "driver.py").read_text()
    source = (ROOT / "federation" / "sim.py").read_text()
    assert "Gossip(" not in source and "PeerTable(" not in source  # no second wiring of the core
