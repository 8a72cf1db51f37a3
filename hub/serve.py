"""`coophub serve`: run one hub's HTTP API, web pages and gossip until SIGTERM or SIGINT.

At startup the hub writes ``HOME/serve.json`` (its URL and pid, atomically, mode 0600) so that CLI commands on
the same home publish through it and what they publish is gossiped at once; a clean shutdown removes the file.
The CLI sends the token only to a hub that answers hub.serve_proof's challenge; after a crash the stale file
names a dead pid (or a port someone else now holds), which :meth:`hub.home.Home.running_url` ignores.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from aiohttp import web

from hub import serve_proof
from hub.app import make_app
from hub.bounds import BoundedRunner, fit_to_fd_limit
from hub.home import Home, HomeError
from hub.logs import ACCESS_LOG_FORMAT
from hub.store import Store

__all__ = ["ServeError", "local_url", "run_hub"]

log = logging.getLogger("coophub.serve")

#: On SIGTERM, requests already being handled get this long to finish before the hub closes them. A request
#: cut short was never acknowledged, so nothing acknowledged is lost; aiohttp's default of 60 s would make
#: `systemctl stop` (and the demo's Ctrl-C) wait a minute behind a slow peer.
SHUTDOWN_GRACE_S = 5.0


class ServeError(HomeError):
    """The hub cannot start: the port is taken, or another hub already runs on this home."""


def local_url(host: str, port: int) -> str:
    """The URL at which this machine's CLI reaches a hub listening on ``host``:``port``."""
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def write_serve_file(path: Path, url: str) -> None:
    """Write serve.json atomically (temporary file, fsync, rename), so a reader never sees half of it."""
    tmp = path.with_suffix(".json.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # left by a crash; O_EXCL below creates it afresh, 0600, never through a planted link
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"url": url, "pid": os.getpid()}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _remove_serve_file(path: Path) -> None:
    """Remove serve.json if it is still ours (a second hub may have replaced it)."""
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        if int(json.loads(path.read_text(encoding="utf-8"))["pid"]) == os.getpid():
            path.unlink()


def _serve_file_ctx(home: Home) -> object:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        yield
        _remove_serve_file(home.serve_path)

    return ctx


async def _serve(home: Home, store: Store, host: str, port: int, access_log: bool = False) -> None:
    app = make_app(home, store, limits=store.limits)
    app.cleanup_ctx.append(_serve_file_ctx(home))  # type: ignore[arg-type]
    serving: dict[str, str] = {}  # the URL written to serve.json, once bound (hub.serve_proof)
    serve_proof.add_route(app, home, serving)
    # Connections are bounded (hub.bounds): caps in all and per address, header timeout, header sizes.
    runner = BoundedRunner(app, access_log=logging.getLogger("coophub.access") if access_log else None,
                           access_log_format=ACCESS_LOG_FORMAT, handle_signals=False,
                           shutdown_timeout=SHUTDOWN_GRACE_S)
    await runner.setup()
    with _signals() as stop:
        try:
            await _listen(home, runner, host, port, serving)
            await stop.wait()
            log.info("stopping")
        finally:
            # Still inside _signals: a second Ctrl-C or SIGTERM during the clean shutdown is ignored
            # instead of killing the process half-way (serve.json left behind, peers not saved).
            await runner.cleanup()


async def _listen(home: Home, runner: web.AppRunner, host: str, port: int, serving: dict[str, str]) -> None:
    """Bind, write serve.json and log the URL.

    Raises:
        ServeError: the port is taken or cannot be bound.
    """
    site = web.TCPSite(runner, host, port, reuse_address=True)
    try:
        await site.start()
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ServeError(
                f"port {port} on {host} is already in use; choose another with --port"
            ) from None
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    bound = _bound_port(runner, port)
    url = local_url(host, bound)
    serving["url"] = url
    write_serve_file(home.serve_path, url)
    log.info("hub %s (%s) serving %s from %s", home.hub_id, home.config.name, url, home.path)


def _bound_port(runner: web.AppRunner, default: int) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return default


@contextlib.contextmanager
def _signals() -> Iterator[asyncio.Event]:
    """An event set by SIGTERM or SIGINT. Once the context ends (the hub has shut down cleanly and the process
    is about to exit), further SIGTERM/SIGINT are ignored rather than let interrupt closing the database;
    SIGKILL still works, and loses nothing acknowledged."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        yield stop
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
            signal.signal(sig, signal.SIG_IGN)


def run_hub(home: Home, host: str | None = None, port: int | None = None, *, access_log: bool = False) -> None:
    """Run the hub on ``host``:``port`` (defaults: config.toml's, i.e. 127.0.0.1:8470) until a signal.

    Raises:
        ServeError: another hub runs on this home, or the port is taken or cannot be bound.
        HomeError: the home's limits are malformed.
    """
    running = home.running_url()
    if running is not None:
        raise ServeError(f"a hub is already running on {home.path} at {running}; stop it first")
    host = host or home.config.host or "127.0.0.1"
    port = home.config.port if port is None else port
    # The connection cap must fit under the open-file limit; what is enforced is what is published.
    limits = fit_to_fd_limit(home.limits())
    home.check_database()
    store = Store(home.db_path, limits=limits, blobs_dir=home.blobs_dir, association=home.association)
    try:
        asyncio.run(_serve(home, store, host, port, access_log))
    finally:
        store.close()
