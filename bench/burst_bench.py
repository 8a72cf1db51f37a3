"""A burst from one hub, side by side with py-libp2p gossipsub (issue 8's measurement).

N real ``coophub serve`` processes on 127.0.0.1 (``cli/localnet.py``), each a founder that joined through a random
earlier hub and published a profile naming its URL; once they have settled, hub 0 publishes M guides of ~1 KB one
after another through ``POST /api/v1/publish``. Measured in this run:

- **time** from the first publish until every hub holds every guide (``records.received_ms``, written at commit);
- **CPU per message per hub**: user + system time of all hub processes (``/proc/PID/stat``) from just before the
  burst until the last hub holds the last guide, over M × N — the same quotient as gossipsub's
  ``cpu_s_during_phase / (M × N)``; the idle rate measured just before is shown too;
- **wire bytes per message per hub**: the federation bytes every hub counted (``GET /api/v1/status`` →
  ``federation``), over M × N, and as a multiple of the payload as gossipsub computes it (bytes / (M × (N − 1) × S)).

Then the same N and M through ``../shared/peers/libp2p_gossipsub_bench.py`` (``--subchan 1024 --queue 1024``, so
its queues do not drop the burst), run right before coophub in its own virtualenv: set ``COOPHUB_LIBP2P_PYTHON``
to that interpreter (default ``/tmp/libp2p-venv/bin/python``; see ../shared/peers/README.md to create it). Without
it, the gossipsub row says it was not run.

Run alone: ``python -m bench.burst_bench [--quick]`` (quick: N = 10; full: N = 10 and 30).
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.fed_bench import _association, _guide, _post, _received, _say
from cli.localnet import LocalHub, LocalNet, wait_until
from hub.home import Home

__all__ = ["run"]

SEED = 8
MESSAGES = 100
PAYLOAD = 1024
SETTLE_S = 120.0
GOSSIPSUB = Path(__file__).resolve().parents[2] / "shared" / "peers" / "libp2p_gossipsub_bench.py"
TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_s(hubs: list[LocalHub]) -> float:
    total = 0
    for hub in hubs:
        assert hub.process is not None
        fields = Path(f"/proc/{hub.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def wire_bytes(federation: dict[str, Any]) -> int:
    """Bytes this hub moved to and from peers: session frames where the hub counts them (``wire_bytes_in`` /
    ``wire_bytes_out``), else the bodies of the peer requests it made and their replies (HTTP headers are not
    counted, so the older transport's figure is a lower bound)."""
    if "wire_bytes_out" in federation:
        return int(federation.get("wire_bytes_out", 0))
    return int(federation.get("bytes_out", 0)) + int(federation.get("bytes_in", 0))


def _wire(hubs: list[LocalHub]) -> int:
    return sum(wire_bytes(h.api("status").get("federation", {})) for h in hubs)


def gossipsub(n: int, m: int) -> dict[str, Any] | None:
    python = Path(os.environ.get("COOPHUB_LIBP2P_PYTHON", "/tmp/libp2p-venv/bin/python"))
    if not python.exists() or not GOSSIPSUB.exists():
        return None
    args = [str(python), str(GOSSIPSUB), "--nodes", str(n), "--msgs", str(m), "--size", str(PAYLOAD),
            "--subchan", "1024", "--queue", "1024", "--timeout", "120"]
    if n > 10:
        args += ["--warmup", "8"]
    _say(f"gossipsub: {n} nodes, {m} messages")
    out = subprocess.run(args, capture_output=True, text=True, timeout=600, check=False)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if not lines:
        _say(f"gossipsub failed: {out.stderr.strip().splitlines()[-1:]}")
        return None
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def coophub(root: Path, n: int, m: int, rng: random.Random) -> dict[str, Any]:
    net = LocalNet(root / f"burst-{n}")
    try:
        _say(f"starting {n} hub processes")
        hubs = _association(net, n, rng)
        origin = hubs[0]
        token = Home.open(origin.home).token
        guides = [_guide(rng, f"Burst guide {i}") for i in range(m)]
        time.sleep(3.0)  # discovery and first sessions settle
        idle_window = 10.0
        c0, w0, t0 = _cpu_s(hubs), _wire(hubs), time.monotonic()
        time.sleep(idle_window)
        c1, w1, t1 = _cpu_s(hubs), _wire(hubs), time.monotonic()
        idle_cpu_per_s, idle_wire_per_s = (c1 - c0) / (t1 - t0), (w1 - w0) / (t1 - t0)
        _say(f"hub 0 publishes {m} guides")
        start_wall = time.time()
        start = time.monotonic()
        ids = [_post(origin, token, "guide", g) for g in guides]
        published_s = time.monotonic() - start
        wait_until(lambda: all(c >= n + 1 + m for c in net.counts()), SETTLE_S, "every hub to hold every guide",
                   every_s=0.05)
        end = time.monotonic()
        c2, w2 = _cpu_s(hubs), _wire(hubs)
        received = [_received(h, ids) for h in hubs]
    finally:
        net.stop()
    last = max(max(r.values()) for r in received)
    per_record = [max(r[i] for r in received) - received[0][i] for i in ids]
    cpu = c2 - c1
    wire = w2 - w1
    return {
        "n": n, "m": m, "delivered": sum(len(r) for r in received), "expected": n * m,
        "time_all_s": (last - start_wall * 1000) / 1000, "publish_s": published_s, "window_s": end - start,
        "cpu_ms_per_msg_per_hub": cpu * 1000 / (m * n),
        "idle_cpu_ms_per_msg_per_hub": idle_cpu_per_s * (end - start) * 1000 / (m * n),
        "wire_per_msg_per_hub": wire / (m * n),
        "idle_wire_per_min_per_hub": idle_wire_per_s * 60 / n,
        "idle_cpu_ms_per_min_per_hub": idle_cpu_per_s * 60_000 / n,
        "amplification": wire / (m * (n - 1) * PAYLOAD),
        "record_spread_median_ms": statistics.median(per_record),
    }


def _table(n: int, ours: dict[str, Any], theirs: dict[str, Any] | None) -> list[str]:
    def g(key: str, scale: float = 1.0) -> float | None:
        return None if theirs is None or theirs.get(key) is None else float(theirs[key]) * scale

    g_cpu = g("cpu_s_during_phase", 1000 / (MESSAGES * n))
    g_time = g("time_all_nodes_all_msgs_s")
    g_wire = g("bytes_per_msg_per_node")
    g_amp = g("amplification_vs_payload")

    def ratio(a: float, b: float | None) -> str:
        return "—" if b in (None, 0) else f"{a / b:.2f}×"

    def fmt(x: float | None, spec: str, unit: str) -> str:
        return "not run" if x is None else format(x, spec) + unit

    delivered = f"{ours['delivered']:,} / {ours['expected']:,}"
    g_delivered = "not run" if theirs is None else f"{theirs['deliveries']:,} / {theirs['expected']:,}"
    return [
        f"### Burst of {ours['m']} × 1 KB from one hub, N = {n}",
        "",
        "| figure | coophub | gossipsub | coophub ÷ gossipsub | target |",
        "|---|---:|---:|---:|---|",
        f"| delivered | {delivered} | {g_delivered} | | 100% |",
        f"| CPU per message per hub | {ours['cpu_ms_per_msg_per_hub']:.2f} ms | {fmt(g_cpu, '.2f', ' ms')} | "
        f"{ratio(ours['cpu_ms_per_msg_per_hub'], g_cpu)} | ≤ 0.10× |",
        f"| … of which idle rate over the same window | {ours['idle_cpu_ms_per_msg_per_hub']:.2f} ms | | | |",
        f"| wire bytes per message per hub | {ours['wire_per_msg_per_hub']:,.0f} B | {fmt(g_wire, ',.0f', ' B')} | "
        f"{ratio(ours['wire_per_msg_per_hub'], g_wire)} | |",
        f"| … as a multiple of the payload (÷ M·(N−1)·S) | {ours['amplification']:.2f}× | {fmt(g_amp, '.2f', '×')} | "
        f"| ≤ 1.5× |",
        f"| time until every hub has every message | {ours['time_all_s']:.2f} s | {fmt(g_time, '.2f', ' s')} | "
        f"{ratio(ours['time_all_s'], g_time)} | ≤ 0.33× |",
        f"| publishing the {ours['m']} through the API took | {ours['publish_s']:.2f} s | | | |",
        f"| one record's spread to every hub, median | {ours['record_spread_median_ms']:,.0f} ms | | | |",
        f"| idle: bytes and CPU per minute per hub | {ours['idle_wire_per_min_per_hub']:,.0f} B, "
        f"{ours['idle_cpu_ms_per_min_per_hub']:,.0f} ms | | | |",
        "",
    ]


def run(quick: bool) -> str:
    rng = random.Random(SEED)
    sizes = (10,) if quick else (10, 30)
    lines = ["## Burst dissemination beside py-libp2p gossipsub", "",
             f"Hub 0 publishes {MESSAGES} guides of ~1 KB; gossipsub node 0 publishes {MESSAGES} messages of "
             f"{PAYLOAD} B with the same N, run just before. Loop load (1-min): {os.getloadavg()[0]:.1f}.", ""]
    with tempfile.TemporaryDirectory(prefix="coophub-burst-") as tmp:
        for n in sizes:
            theirs = gossipsub(n, MESSAGES)
            ours = coophub(Path(tmp), n, MESSAGES, rng)
            print(json.dumps({"coophub": ours, "gossipsub": theirs}), file=sys.stderr, flush=True)
            lines += _table(n, ours, theirs)
    return "\n".join(lines)


if __name__ == "__main__":
    print(run("--quick" in sys.argv))
