"""A small association of real hubs on loopback: one ``coophub serve`` process per hub, each with its own home.

Used by ``coophub demo`` and by the federation benchmark (bench/fed_bench.py). Hubs are set up through the
CLI's own commands (:func:`run_cli` calls :func:`cli.main.main` in this process, so every check the CLI makes
applies), and each hub runs as a separate ``serve`` process whose log is ``HOME/serve.log``.

Every hub process is bounded: it is stopped by :meth:`LocalNet.stop` (SIGTERM, then SIGKILL after a grace
period), and on Linux it also receives SIGTERM if the process that started it dies (``PR_SET_PDEATHSIG``), so
a killed demo never leaves hubs gossiping on their own.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .output import CliError

__all__ = ["LocalHub", "LocalNet", "free_ports", "http_json", "run_cli", "wait_until"]

#: How long a hub may take to start listening (import, open the database, bind).
START_TIMEOUT_S = 30.0
#: How long a hub may take to stop after SIGTERM before it is killed.
STOP_GRACE_S = 20.0
HTTP_TIMEOUT_S = 10.0
_PR_SET_PDEATHSIG = 1


def run_cli(*argv: str) -> Any:
    """Run one ``coophub`` command in this process with ``--json`` and return what it printed, parsed.

    Raises:
        CliError: the command failed; the message is the command and its one-line error.
    """
    from .main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([*argv, "--json"])
    if code != 0:
        shown = " ".join(a if " " not in a else repr(a) for a in argv)
        raise CliError(f"`coophub {shown}` failed: {err.getvalue().strip().removeprefix('coophub: error: ')}")
    text = out.getvalue().strip()
    return json.loads(text) if text else {}


def http_json(url: str, timeout_s: float = HTTP_TIMEOUT_S) -> Any:
    """GET ``url`` and parse its JSON body; None for a 404 (not there yet).

    Raises:
        OSError: the hub did not answer (urllib's URLError is an OSError), or answered another error.
    """
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 (loopback URLs only)
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str, *, every_s: float = 0.2) -> None:
    """Poll ``condition`` until it holds; bounded by ``timeout_s``.

    Raises:
        CliError: it did not hold in time (``what`` says what was awaited).
    """
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(OSError, ValueError):
            if condition():
                return
        if time.monotonic() >= deadline:
            raise CliError(f"timed out after {timeout_s:.0f} s waiting for {what}",
                           "look at the hubs' serve.log files")
        time.sleep(every_s)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(n: int, base: int = 0) -> list[int]:
    """``n`` ports on 127.0.0.1: ``base`` … ``base + n - 1`` if all are free, else (or when ``base`` is 0) ports
    the system chooses. A port chosen this way could be taken again before the hub binds it; the hub then
    refuses to start with a clear error."""
    if base and all(_port_free(base + i) for i in range(n)):
        return [base + i for i in range(n)]
    ports: list[int] = []
    while len(ports) < n:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in ports:
            ports.append(port)
    return ports


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to send SIGTERM when the parent dies (no-op elsewhere)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class LocalHub:
    """One hub of a :class:`LocalNet`: its home, port and (while running) its ``serve`` process."""

    name: str
    home: Path
    port: int
    hub_id: str = ""
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.home / "serve.log"

    def cli(self, *argv: str) -> Any:
        """Run a ``coophub`` command on this hub's home (see :func:`run_cli`)."""
        return run_cli(*argv, "--home", str(self.home))

    def api(self, path: str) -> Any:
        """GET ``/api/v1/<path>`` from this hub."""
        return http_json(f"{self.url}/api/v1/{path}")

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 5) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        return ""


@dataclass
class LocalNet:
    """Hubs under ``root``, one folder each; start them with :meth:`start`, stop them all with :meth:`stop`."""

    root: Path
    hubs: list[LocalHub] = field(default_factory=list)

    def add(self, slug: str, name: str, port: int, *, region: str = "") -> LocalHub:
        """Create a hub home (``coophub init``) whose public URL is 127.0.0.1:``port``."""
        hub = LocalHub(name, self.root / slug, port)
        argv = ["init", "--name", name, "--url", hub.url]
        if region:
            argv += ["--region", region]
        hub.hub_id = run_cli(*argv, "--home", str(hub.home))["hub_id"]
        self.hubs.append(hub)
        return hub

    def start(self, hub: LocalHub, *, wait: bool = True) -> None:
        """Start ``coophub serve`` for ``hub`` in its own process; with ``wait``, return once it answers.

        Raises:
            CliError: the hub exited or did not answer within START_TIMEOUT_S (its log's last lines say why).
        """
        log = open(hub.log_path, "ab")  # noqa: SIM115 (the child owns it; closed here right after the fork)
        try:
            hub.process = subprocess.Popen(
                [sys.executable, "-m", "cli.main", "serve", "--home", str(hub.home), "--port", str(hub.port)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C goes to us; we stop them
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,  # noqa: PLW1509
            )
        finally:
            log.close()
        if wait:
            self.wait_ready(hub)

    def wait_ready(self, hub: LocalHub) -> None:
        """Raises:
        CliError: the hub exited or did not answer in time.
        """
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if not hub.running():
                raise CliError(f"hub {hub.name} stopped while starting: {hub.log_tail(3)}",
                               f"see {hub.log_path}")
            with contextlib.suppress(OSError, ValueError):
                if hub.api("status"):
                    return
            time.sleep(0.1)
        raise CliError(f"hub {hub.name} did not answer at {hub.url} within {START_TIMEOUT_S:.0f} s",
                       f"see {hub.log_path}")

    def start_all(self, hubs: Iterable[LocalHub] | None = None) -> None:
        """Start several hubs at once (their start-up overlaps), then wait for each."""
        chosen = list(self.hubs if hubs is None else hubs)
        for hub in chosen:
            self.start(hub, wait=False)
        for hub in chosen:
            self.wait_ready(hub)

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """Stop every hub: SIGTERM all of them at once (one signal each: they shut down in parallel), then
        wait, killing any still running after ``grace_s``."""
        running = [h for h in self.hubs if h.running()]
        for hub in running:
            assert hub.process is not None
            hub.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for hub in running:
            self._reap(hub, deadline)

    @staticmethod
    def _reap(hub: LocalHub, deadline: float) -> None:
        process, hub.process = hub.process, None
        if process is None:
            return
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def dead(self) -> list[LocalHub]:
        """Hubs that were started and have exited on their own."""
        return [h for h in self.hubs if h.process is not None and h.process.poll() is not None]

    def counts(self) -> list[int]:
        """Records held by each hub (``GET /api/v1/status``)."""
        return [int(h.api("status")["records"]) for h in self.hubs]
