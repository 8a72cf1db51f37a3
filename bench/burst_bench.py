"""A burst from one hub, side by side with py-libp2p gossipsub (issue 8's measurement).

N real ``coophub serve`` processes on 127.0.0.1 (``cli/localnet.py``), each a founder that joined through a random
earlier hub and published a profile naming its URL, so every hub holds one authenticated session per peer it
learnt. Once they have settled (and after an idle window, measured too), hub 0 publishes M guides of ~1 KB one
after another through ``POST /api/v1/publish``, ``COOPHUB_BENCH_PUBLISHERS`` (default 8) requests at a time, as
a burst arrives from several staff at once (1 = strictly one after another). Measured in this run, for each N:

- **time** from the first publish until every hub holds every guide (``records.received_ms``, written at commit);
  the bench polls the hubs' databases read-only, never their HTTP API, so watching costs the hubs nothing;
- **CPU per message per hub**: user + system time of all hub processes (``/proc/PID/stat``) from just before the
  first publish until the last hub holds the last guide, over M × N — the quotient gossipsub reports as
  ``cpu_s_during_phase / (M × N)``. The hubs' idle rate over the same window is shown beside it;
- **wire bytes per message per hub**: TCP payload bytes sent on every connection between two hub processes, read
  from the kernel (``ss -tinp``: ``bytes_sent`` of each socket; every byte counted once, by its sender, as
  gossipsub counts its TCP writes), over M × N, and as a multiple of the payload as gossipsub computes it
  (bytes / (M × (N − 1) × S)). The hubs' own count of WebSocket frame bytes (payload + framing, both ways,
  ``GET /api/v1/status`` → ``federation.wire_bytes_out``) is shown beside it as a check;
- **the follow-up**: hubs relay a record pushed by its author a second later (``AUTHOR_RELAY_DELAY_MS``), after
  every hub may already hold it, so the bench also measures CPU and bytes over ``TAIL_S`` more, less the idle
  rate, and judges the targets on that whole cost too (gossipsub's figures stop when the last node has the last
  message);
- **idle cost of a session**: over the idle window before the burst, TCP bytes and CPU per minute, per hub and
  per open session (heartbeat pings and the anti-entropy rounds every ``sync_interval_ms`` included).

The same N and M run through ``../shared/peers/libp2p_gossipsub_bench.py`` (``--subchan 1024 --queue 1024``, so
its queues do not drop the burst) right before coophub, in its own virtualenv: ``COOPHUB_LIBP2P_PYTHON`` (default
``/tmp/libp2p-venv/bin/python``; ../shared/peers/README.md says how to create it). Without it, the gossipsub
column says it was not run. Raw figures go to ``bench/results/burst.json``.

``COOPHUB_BENCH_PROFILE=DIR`` runs every hub under cProfile in all its threads (``bench/profile_serve.py``) and
writes ``DIR/nN/hubNN.prof``: what each hub did during the burst (the figures of such a run are not comparable).

Run alone: ``python -m bench.burst_bench [--quick] [--sizes 10,30]`` (quick: N = 10; full: N = 10 and 30).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import random
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bench.fed_bench import _association, _guide, _post, _received
from cli.localnet import LocalHub, LocalNet, _die_with_parent
from cli.output import CliError
from hub.home import Home

__all__ = ["TcpBytes", "cpu_seconds", "run"]

SEED = 8
MESSAGES = 100
PAYLOAD = 1024
SETTLE_S = 120.0
POLL_S = 0.05
TAIL_S = 4.0
PUBLISHERS = int(os.environ.get("COOPHUB_BENCH_PUBLISHERS", "8"))

def _find_peers() -> Path:
    """``../shared/peers`` of the checkout (or of any folder above it: a worktree sits deeper), or
    ``COOPHUB_PEERS_DIR``."""
    if os.environ.get("COOPHUB_PEERS_DIR"):
        return Path(os.environ["COOPHUB_PEERS_DIR"]) / "libp2p_gossipsub_bench.py"
    for parent in Path(__file__).resolve().parents[1:]:
        candidate = parent / "shared" / "peers" / "libp2p_gossipsub_bench.py"
        if candidate.exists():
            return candidate
    return Path(__file__).resolve().parents[2] / "shared" / "peers" / "libp2p_gossipsub_bench.py"


GOSSIPSUB = _find_peers()
RESULTS = Path(__file__).resolve().parent / "results" / "burst.json"
TICKS = os.sysconf("SC_CLK_TCK")
console = Console(stderr=True)


def _say(text: str) -> None:
    console.log(f"burst_bench: {text}")


# -- what the kernel says ----------------------------------------------------------------------------------------


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far (``/proc/PID/stat`` fields 14 and 15)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / TICKS


_SOCKET = re.compile(r"^\S+\s+\S+\s+(\S+)\s+(\S+)\s+users:\((.*)\)\s*$")
_PID = re.compile(r"pid=(\d+)")
_SENT = re.compile(r"\bbytes_sent:(\d+)")


class TcpBytes:
    """TCP payload bytes sent on established connections between the given processes, from ``ss -tinp``.

    A socket counts when its own end belongs to one of the processes and its other end is a socket of one of them
    too; its ``bytes_sent`` (kernel ``tcp_info``, retransmissions included — none on loopback) is what its owner
    wrote. Connections that close between two snapshots are missed (their bytes are lost, never invented): the
    sessions are long-lived, and :meth:`delta` says how many closed."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = set(pids)

    def snapshot(self) -> dict[tuple[str, str], int]:
        out = subprocess.run(["ss", "-tinpH", "state", "established"], capture_output=True, text=True, timeout=30,
                             check=True).stdout
        sockets: list[tuple[str, str, set[int], int]] = []
        for line in out.splitlines():
            match = _SOCKET.match(line)
            if match:
                pids = {int(p) for p in _PID.findall(match.group(3))}
                sockets.append((match.group(1), match.group(2), pids, 0))
            elif sockets and line[:1].isspace():
                sent = _SENT.search(line)
                if sent:
                    local, remote, pids, _ = sockets[-1]
                    sockets[-1] = (local, remote, pids, int(sent.group(1)))
        ours = {local for local, _, pids, _ in sockets if pids & self.pids}
        return {(local, remote): sent for local, remote, pids, sent in sockets
                if pids & self.pids and remote in ours}

    @staticmethod
    def delta(before: dict[tuple[str, str], int], after: dict[tuple[str, str], int]) -> tuple[int, int]:
        """Bytes sent between the snapshots, and how many connections closed in between (their bytes missed)."""
        sent = sum(v - before.get(k, 0) for k, v in after.items())
        return sent, sum(1 for k in before if k not in after)


# -- hubs, optionally under cProfile -----------------------------------------------------------------------------


class _Net(LocalNet):
    """A LocalNet whose hubs run under cProfile (``bench/profile_serve.py``) when ``COOPHUB_BENCH_PROFILE`` names
    a folder; :meth:`mark` and :meth:`dump` bound the phase profiled."""

    profile_dir: Path | None = None

    def _signal(self, signum: int) -> None:
        if self.profile_dir is not None:
            for hub in self.hubs:
                if hub.process is not None:
                    hub.process.send_signal(signum)

    def mark(self) -> None:
        self._signal(signal.SIGUSR1)

    def dump(self) -> None:
        self._signal(signal.SIGUSR2)

    def start(self, hub: LocalHub, *, wait: bool = True) -> None:
        if self.profile_dir is None:
            super().start(hub, wait=wait)
            return
        self.profile_dir.mkdir(parents=True, exist_ok=True)
        log = open(hub.log_path, "ab")  # noqa: SIM115 (the child owns it)
        try:
            hub.process = subprocess.Popen(
                [sys.executable, "-m", "bench.profile_serve", str(self.profile_dir / f"{hub.home.name}.prof"),
                 "serve", "--home", str(hub.home), "--port", str(hub.port)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=_die_with_parent)  # noqa: PLW1509
        finally:
            log.close()
        if wait:
            self.wait_ready(hub)


class _Counts:
    """Records held by each hub, read from its database (read-only; WAL lets serve carry on writing)."""

    def __init__(self, hubs: list[LocalHub]) -> None:
        self.conns = [sqlite3.connect(f"file:{h.home / 'hub.sqlite3'}?mode=ro", uri=True, timeout=30) for h in hubs]

    def __call__(self) -> list[int]:
        return [int(c.execute("SELECT coalesce(sum(n), 0) FROM kind_counts").fetchone()[0]) for c in self.conns]

    def close(self) -> None:
        for conn in self.conns:
            conn.close()


def _ws_bytes(hubs: list[LocalHub]) -> int:
    return sum(int(h.api("status").get("federation", {}).get("wire_bytes_out", 0)) for h in hubs)


def _sessions(hubs: list[LocalHub]) -> list[int]:
    return [int(h.api("status").get("federation", {}).get("sessions", 0)) for h in hubs]


# -- the two systems ---------------------------------------------------------------------------------------------


def gossipsub(n: int, m: int) -> dict[str, Any] | None:
    python = Path(os.environ.get("COOPHUB_LIBP2P_PYTHON", "/tmp/libp2p-venv/bin/python"))
    if not python.exists() or not GOSSIPSUB.exists():
        _say(f"gossipsub not run: no {python} or no {GOSSIPSUB}")
        return None
    args = [str(python), str(GOSSIPSUB), "--nodes", str(n), "--msgs", str(m), "--size", str(PAYLOAD),
            "--subchan", "1024", "--queue", "1024", "--timeout", "120"]
    if n > 10:
        args += ["--warmup", "8"]
    load = os.getloadavg()[0]
    with console.status(f"gossipsub: {n} nodes, {m} messages (load {load:.1f})"):
        try:
            out = subprocess.run(args, capture_output=True, text=True, timeout=600, check=False)
        except subprocess.TimeoutExpired:
            _say("gossipsub did not finish within 600 s")
            return None
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if not lines:
        _say(f"gossipsub failed: {out.stderr.strip().splitlines()[-1:]}")
        return None
    result: dict[str, Any] = json.loads(lines[-1])
    result["load_before"] = load
    result["load_after"] = os.getloadavg()[0]
    _say(f"gossipsub: {result['deliveries']} of {result['expected']} in {result['time_all_nodes_all_msgs_s']} s")
    return result


def coophub(root: Path, n: int, m: int, rng: random.Random, idle_s: float, publishers: int = 1) -> dict[str, Any]:
    net = _Net(root / f"burst-{n}")
    profile = os.environ.get("COOPHUB_BENCH_PROFILE")
    net.profile_dir = Path(profile) / f"n{n}" if profile else None
    counts: _Counts | None = None
    try:
        with console.status(f"starting {n} hub processes and letting them learn each other"):
            hubs = _association(net, n, rng)
            time.sleep(3.0)  # the last sessions open (peers are learnt from the last profiles)
        origin = hubs[0]
        token = Home.open(origin.home).token
        pids = [h.process.pid for h in hubs if h.process is not None]
        tcp = TcpBytes(pids)
        counts = _Counts(hubs)
        guides = [_guide(rng, f"Burst guide {i}") for i in range(m)]

        with console.status(f"idle window: {idle_s:.0f} s with {n} hubs"):
            sessions_before = _sessions(hubs)
            c0, s0, t0 = cpu_seconds(pids), tcp.snapshot(), time.monotonic()
            time.sleep(idle_s)
            c1, s1, t1 = cpu_seconds(pids), tcp.snapshot(), time.monotonic()
        idle_bytes, _ = TcpBytes.delta(s0, s1)
        idle_cpu_per_s = (c1 - c0) / (t1 - t0)
        sessions = statistics.median(sessions_before)
        ws0 = _ws_bytes(hubs)
        fed_before = [h.api("status").get("federation", {}) for h in hubs]

        load_before = os.getloadavg()[0]
        start_wall = time.time()
        start = time.monotonic()
        net.mark()
        c2, s2, o2 = cpu_seconds(pids), tcp.snapshot(), cpu_seconds(pids[:1])
        ids: list[str] = []
        expected = n + 1 + m
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console, transient=True) as progress:
            published = progress.add_task(f"hub 0 publishes {m} guides ({publishers} at a time)", total=m)
            with ThreadPoolExecutor(publishers) as pool:
                for record_id in pool.map(lambda g: _post(origin, token, "guide", g), guides):
                    ids.append(record_id)
                    progress.advance(published)
            published_s = time.monotonic() - start
            delivered = progress.add_task(f"guides held on {n} hubs", total=n * m)
            deadline = start + SETTLE_S
            while True:
                now_counts = counts()
                progress.update(delivered, completed=sum(max(0, c - n - 1) for c in now_counts))
                if all(c >= expected for c in now_counts) or time.monotonic() > deadline:
                    break
                time.sleep(POLL_S)
        end = time.monotonic()
        c3, s3, o3 = cpu_seconds(pids), tcp.snapshot(), cpu_seconds(pids[:1])
        load_after = os.getloadavg()[0]
        with console.status(f"the tail: {TAIL_S:.0f} s more for relays and follow-up traffic"):
            time.sleep(TAIL_S)
            c4, s4, t4 = cpu_seconds(pids), tcp.snapshot(), time.monotonic()
        net.dump()
        ws1 = _ws_bytes(hubs)
        fed_after = [h.api("status").get("federation", {}) for h in hubs]
        received = [_received(h, ids) for h in hubs]
        log_lines = sum(h.log_path.read_text(errors="replace").count("\n") for h in hubs)
    finally:
        if counts is not None:
            counts.close()
        net.stop()
    burst_bytes, closed = TcpBytes.delta(s2, s3)
    tail_bytes, _ = TcpBytes.delta(s2, s4)
    idle_bytes_per_s = idle_bytes / (t1 - t0)
    full_cpu = (c4 - c2) - idle_cpu_per_s * (t4 - end)
    full_bytes = tail_bytes - idle_bytes_per_s * (t4 - end)
    delivered_n = sum(len(r) for r in received)
    times = [v for r in received for v in r.values()]
    last = max(times) if times else start_wall * 1000
    per_record = [max(r.get(i, 0) for r in received) - received[0][i] for i in ids if i in received[0]]
    cpu = c3 - c2
    window = end - start
    result = {
        "n": n, "m": m, "payload": PAYLOAD, "publishers": publishers, "delivered": delivered_n, "expected": n * m,
        "time_all_s": (last - start_wall * 1000) / 1000, "publish_s": published_s, "window_s": window,
        "cpu_s": cpu, "cpu_ms_per_msg_per_hub": cpu * 1000 / (m * n),
        "origin_cpu_s": o3 - o2, "origin_cpu_ms_per_msg": (o3 - o2) * 1000 / m,
        "others_cpu_ms_per_msg_per_hub": (cpu - (o3 - o2)) * 1000 / (m * (n - 1)),
        "idle_cpu_ms_per_msg_per_hub": idle_cpu_per_s * window * 1000 / (m * n),
        "tcp_bytes": burst_bytes, "tcp_connections_closed": closed,
        "wire_per_msg_per_hub": burst_bytes / (m * n),
        "amplification": burst_bytes / (m * (n - 1) * PAYLOAD),
        "tail_s": t4 - end, "full_cpu_ms_per_msg_per_hub": full_cpu * 1000 / (m * n),
        "full_wire_per_msg_per_hub": full_bytes / (m * n), "full_amplification": full_bytes / (m * (n - 1) * PAYLOAD),
        "ws_frame_bytes": ws1 - ws0, "ws_amplification": (ws1 - ws0) / (m * (n - 1) * PAYLOAD),
        "idle_window_s": t1 - t0, "idle_tcp_bytes_per_min_per_hub": idle_bytes / (t1 - t0) * 60 / n,
        "idle_cpu_ms_per_min_per_hub": idle_cpu_per_s * 60_000 / n, "sessions_per_hub": sessions,
        "idle_tcp_bytes_per_min_per_session": idle_bytes / (t1 - t0) * 60 / max(1.0, n * sessions),
        "idle_cpu_ms_per_min_per_session": idle_cpu_per_s * 60_000 / max(1.0, n * sessions),
        "record_spread_median_ms": statistics.median(per_record) if per_record else None,
        "load_before": load_before, "load_after": load_after, "log_lines": log_lines,
        "federation": {k: sum(int(f.get(k, 0)) - int(f0.get(k, 0)) for f, f0 in zip(fed_after, fed_before,
                                                                                    strict=True))
                       for k in sorted({k for f in fed_after for k in f})},
    }
    _say(f"coophub: {delivered_n} of {n * m} in {result['time_all_s']:.2f} s, "
         f"{result['cpu_ms_per_msg_per_hub']:.2f} ms CPU/msg/hub, {result['amplification']:.2f}× payload")
    return result


# -- the report --------------------------------------------------------------------------------------------------


def _verdict(value: float | None, limit: float, what: str = "") -> str:
    if value is None:
        return "not compared"
    if value <= limit:
        return f"**met** ({value:.2f} ≤ {limit:.2f}{what})"
    return f"**missed**, {value / limit:.1f}× over ({value:.2f} > {limit:.2f}{what})"


def table(n: int, ours: dict[str, Any], theirs: dict[str, Any] | None) -> list[str]:
    def g(key: str, scale: float = 1.0) -> float | None:
        return None if theirs is None or theirs.get(key) is None else float(theirs[key]) * scale

    g_cpu = g("cpu_s_during_phase", 1000 / (ours["m"] * n))
    g_time = g("time_all_nodes_all_msgs_s")
    g_wire = g("bytes_per_msg_per_node")
    g_amp = g("amplification_vs_payload")

    def ratio(a: float, b: float | None) -> float | None:
        return None if b in (None, 0) else a / b  # type: ignore[operator]

    def fmt(x: float | None, spec: str, unit: str = "") -> str:
        return "not run" if x is None else format(x, spec) + unit

    cpu_ratio = ratio(ours["cpu_ms_per_msg_per_hub"], g_cpu)
    full_cpu_ratio = ratio(ours["full_cpu_ms_per_msg_per_hub"], g_cpu)
    time_ratio = ratio(ours["time_all_s"], g_time)
    delivered = f"{ours['delivered']:,} / {ours['expected']:,}"
    g_delivered = "not run" if theirs is None else f"{theirs['deliveries']:,} / {theirs['expected']:,}"
    all_in = "**met**" if ours["delivered"] == ours["expected"] else "**missed**"
    load = (f"load (1-min) {theirs['load_before']:.1f} → {theirs['load_after']:.1f} during gossipsub, "
            if theirs else "") + f"{ours['load_before']:.1f} → {ours['load_after']:.1f} during coophub"
    return [
        f"### Burst of {ours['m']} × 1 KB from one hub, N = {n}",
        "",
        f"Machine {load}.",
        "",
        "| figure | coophub | gossipsub | coophub ÷ gossipsub | target | |",
        "|---|---:|---:|---:|---|---|",
        f"| delivered | {delivered} | {g_delivered} | | 100% | {all_in} |",
        f"| CPU per message per hub | {ours['cpu_ms_per_msg_per_hub']:.2f} ms | {fmt(g_cpu, '.2f', ' ms')} | "
        f"{fmt(cpu_ratio, '.3f', '×')} | ≤ 0.10× | {_verdict(cpu_ratio, 0.10)} |",
        f"| … the hubs' idle rate over the same window | {ours['idle_cpu_ms_per_msg_per_hub']:.2f} ms | | | | |",
        f"| … the publishing hub alone, per message (API, signing, storing, pushing to {n - 1}) | "
        f"{ours['origin_cpu_ms_per_msg']:.2f} ms | | | | |",
        f"| … each other hub, per message (receiving, verifying, storing) | "
        f"{ours['others_cpu_ms_per_msg_per_hub']:.2f} ms | | | | |",
        f"| … with the follow-up traffic of the {ours['tail_s']:.0f} s after (relays), less the idle rate | "
        f"{ours['full_cpu_ms_per_msg_per_hub']:.2f} ms | | {fmt(full_cpu_ratio, '.3f', '×')} | ≤ 0.10× | "
        f"{_verdict(full_cpu_ratio, 0.10)} |",
        f"| wire bytes per message per hub (TCP) | {ours['wire_per_msg_per_hub']:,.0f} B | "
        f"{fmt(g_wire, ',.0f', ' B')} | {fmt(ratio(ours['wire_per_msg_per_hub'], g_wire), '.2f', '×')} | | |",
        f"| … as a multiple of the payload (÷ M·(N−1)·S) | {ours['amplification']:.2f}× | {fmt(g_amp, '.2f', '×')} "
        f"| | ≤ 1.5× | {_verdict(ours['amplification'], 1.5)} |",
        f"| … with the follow-up traffic, less the idle rate | {ours['full_amplification']:.2f}× | | | ≤ 1.5× | "
        f"{_verdict(ours['full_amplification'], 1.5)} |",
        f"| … the hubs' own count of WebSocket frames sent, with the tail | {ours['ws_amplification']:.2f}× "
        f"| | | | |",
        f"| time until every hub has every message | {ours['time_all_s']:.2f} s | {fmt(g_time, '.2f', ' s')} | "
        f"{fmt(time_ratio, '.3f', '×')} | ≤ 0.33× | {_verdict(time_ratio, 1 / 3)} |",
        f"| publishing the {ours['m']} through the API took | {ours['publish_s']:.2f} s | "
        f"{fmt(g('publish_loop_s'), '.2f', ' s')} | | | |",
        f"| one guide's spread from hub 0 to every hub, median | {ours['record_spread_median_ms']:,.0f} ms | | | | |",
        f"| idle, per hub per minute: TCP bytes, CPU | {ours['idle_tcp_bytes_per_min_per_hub']:,.0f} B, "
        f"{ours['idle_cpu_ms_per_min_per_hub']:,.0f} ms | | | | |",
        f"| idle, per session per minute ({ours['sessions_per_hub']:.0f} sessions per hub) | "
        f"{ours['idle_tcp_bytes_per_min_per_session']:,.0f} B, {ours['idle_cpu_ms_per_min_per_session']:,.1f} ms "
        f"| | | | |",
        "",
    ]


def run(quick: bool, sizes: tuple[int, ...] | None = None) -> str:
    rng = random.Random(SEED)
    sizes = sizes or ((10,) if quick else (10, 30))
    idle_s = 20.0 if quick else 60.0
    lines = ["## Burst dissemination beside py-libp2p gossipsub", "",
             f"Hub 0 publishes {MESSAGES} guides of ~1 KB through its API; gossipsub node 0 publishes {MESSAGES} "
             f"messages of {PAYLOAD} B with the same N, run just before. {os.cpu_count()} CPUs. "
             f"Code: `bench/burst_bench.py` (its docstring is the method).", ""]
    raw: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="coophub-burst-") as tmp:
        for n in sizes:
            theirs = gossipsub(n, MESSAGES)
            try:
                ours = coophub(Path(tmp), n, MESSAGES, rng, idle_s, PUBLISHERS)
            except CliError as exc:
                _say(f"N = {n} failed: {exc}")
                lines += [f"### N = {n}: the run failed: {exc}", ""]
                continue
            raw.append({"at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                        "coophub": ours, "gossipsub": theirs})
            lines += table(n, ours, theirs)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        RESULTS.write_text(json.dumps(raw, indent=1) + "\n", encoding="utf-8")
    return "\n".join(lines)


def _main(argv: list[str]) -> None:
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop the hubs on SIGTERM too
    sizes = None
    if "--sizes" in argv:
        sizes = tuple(int(x) for x in argv[argv.index("--sizes") + 1].split(","))
    print(run("--quick" in argv, sizes))


if __name__ == "__main__":
    _main(sys.argv[1:])
