"""CLI commands that talk to peers: the first catch-up of ``coophub join`` and ``coophub sync``.

Both use federation's own code (``federation.client.PeerClient`` over authenticated peer sessions,
``federation.driver.catch_up`` and ``Federation.sync_with``),
so records arrive through the store's one ingest path exactly as they do in
``coophub serve``; the CLI only adds a progress bar. They work whether or not ``serve`` runs on the same home:
SQLite's locking serialises the two writers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from hub.home import Home
from hub.i18n import gettext as _

from .common import check_url, home_from, open_store
from .output import CliError, emit, emit_json, table

__all__ = ["PeerCheck", "add_parsers", "catch_up_from", "check_peer"]

#: How long `coophub sync` waits for the pushes an anti-entropy session queued (records the peer lacked).
PUSH_DRAIN_S = 30.0


class PeerCheck:
    """What a first contact with a peer found: its association id (hex) and record count, or why it failed."""

    def __init__(self, association: str = "", records: int = 0, error: str = "") -> None:
        self.association = association
        self.records = records
        self.error = error


@contextlib.asynccontextmanager
async def _client(home: Home) -> AsyncIterator[Any]:
    import aiohttp

    from federation.client import PeerClient

    async with aiohttp.ClientSession() as session:
        client = PeerClient(session, home.limits(), home.config.url.rstrip("/"), key=home.key,
                            association=home.association)
        try:
            yield client
        finally:
            await client.close()


def check_peer(home: Home, peer: str) -> PeerCheck:
    """Ask ``peer`` who it is (``GET /fed/v1/info``); a peer that cannot be reached gives ``error``."""
    from federation.client import PeerUnavailable
    from federation.wire import WireError

    async def ask() -> PeerCheck:
        async with _client(home) as client:
            info = await client.public_info(peer)
        return PeerCheck(info.association.hex(), info.records)

    try:
        return asyncio.run(ask())
    except (PeerUnavailable, WireError) as exc:
        return PeerCheck(error=" ".join(str(exc).split())[:300])


@contextlib.contextmanager
def _bar(show: bool, description: str, total: int | None) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar on stderr (or nothing); yields ``update(done, total)``."""
    if not show:
        yield lambda done, total: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=Console(stderr=True), transient=False) as progress:
        task = progress.add_task(description, total=total)

        def update(done: int, new_total: int) -> None:
            progress.update(task, completed=done, total=max(new_total, done) if total is not None else None)

        yield update


def catch_up_from(home: Home, peer: str, *, progress: bool) -> int:
    """Stream every record of ``peer`` into this hub in bounded pages; return how many were new.

    Raises:
        CliError: the peer failed or sent a malformed page part-way (what arrived so far is kept).
    """
    from federation.client import PeerUnavailable
    from federation.driver import catch_up
    from federation.wire import WireError

    async def run(update: Callable[[int, int], None]) -> int:
        with open_store(home) as store:
            async with _client(home) as client:
                return await catch_up(client, store, peer, home.limits(), progress=update)

    with _bar(progress, f"catching up from {peer}", 0) as update:
        try:
            return asyncio.run(run(update))
        except (PeerUnavailable, WireError) as exc:
            raise CliError(
                _("catching up from %(peer)s stopped: %(error)s")
                % {"peer": peer, "error": " ".join(str(exc).split())[:300]},
                _("what arrived is kept; run `coophub sync` to continue, or `coophub serve` to sync in the background"),
            ) from None


def _sync_one(home: Home, peer: str, show: bool) -> dict[str, Any]:
    """One anti-entropy session (or a catch-up, for a hub with no records yet) with ``peer``."""
    import aiohttp

    from federation.driver import Federation

    async def run(update: Callable[[int, int], None]) -> dict[str, Any]:
        with open_store(home) as store:
            fed = Federation(home, store, home.limits())
            fed.peers.add(peer, fed.now_ms())
            async with aiohttp.ClientSession() as session:
                fed.client = fed.make_client(session)
                ticker = asyncio.create_task(_tick(fed, update))
                try:
                    before = await store.read(store.count)
                    done = await fed.sync_with(peer)
                    await fed.drain(PUSH_DRAIN_S)
                    after = await store.read(store.count)
                finally:
                    ticker.cancel()
                    await fed.client.close()
                await fed.save_peers()
            state = fed.peers.get(peer)
        return {
            "peer": peer,
            "ok": state.state != "failing" and state.state != "dropped",
            "state": state.state,
            "received": after - before,
            "sent": fed.stats["push_records"],
            "rounds": done.rounds if done else 0,
            "bytes": (done.bytes_sent + done.bytes_received) if done else 0,
        }

    with _bar(show, f"syncing with {peer}", None) as update:
        return asyncio.run(run(update))


async def _tick(fed: Any, update: Callable[[int, int], None]) -> None:
    """Redraw the bar with the records received so far (anti-entropy learns the total only at its end)."""
    while True:
        update(fed.stats["records_in"], 0)
        await asyncio.sleep(0.2)


def cmd_sync(args: argparse.Namespace) -> int:
    home = home_from(args)
    if not home.config.association_id:
        raise CliError(_("this hub has not joined an association yet"),
                       _("run `coophub join ASSOCIATION_ID --peer URL`"))
    peers = [check_url(args.peer, "--peer").rstrip("/")] if args.peer else [
        u.rstrip("/") for u in home.config.peers]
    if not peers:
        raise CliError(_("this hub has no peers to sync with"), _("give --peer URL or run `coophub peers add URL`"))
    show = args.progress or sys.stderr.isatty()
    rows = [_sync_one(home, peer, show) for peer in peers]
    if args.json:
        emit_json({"peers": rows})
    else:
        table(("peer", "state", "received", "sent", "rounds", "bytes"),
              ([r["peer"], r["state"], r["received"], r["sent"], r["rounds"], r["bytes"]] for r in rows))
    if not any(r["ok"] for r in rows):
        raise CliError(_("no peer could be reached"), _("check the URLs with `coophub peers list` and try again"))
    return 0


def cmd_join(args: argparse.Namespace) -> int:
    from .common import parse_record_id

    home = home_from(args)
    association = parse_record_id(args.association_id, "association id").hex()
    peer = check_url(args.peer, "--peer").rstrip("/")
    current = home.config.association_id
    if current and current != association:
        raise CliError(
            _("this hub already belongs to association %(id)s") % {"id": current},
            _("use another --home to join a different association"),
        )
    found = PeerCheck(error="not contacted (--no-sync)") if args.no_sync else check_peer(home, peer)
    if found.association and found.association != association:
        raise CliError(
            _("%(peer)s belongs to association %(found)s, not %(wanted)s")
            % {"peer": peer, "found": found.association, "wanted": association},
            _("check the association id and the peer's URL; nothing was changed"),
        )
    home.config.association_id = association
    if peer not in home.config.peers:
        home.config.peers.append(peer)
    home.save_config()
    received = 0
    if found.error:
        if not args.no_sync:
            sys.stderr.write(f"coophub: could not reach {peer} ({found.error}); the hub will catch up once it "
                             "can (`coophub serve` or `coophub sync`)\n")
    else:
        received = catch_up_from(home, peer, progress=args.progress or sys.stderr.isatty())
    if args.json:
        emit_json({"association_id": association, "peers": home.config.peers, "received": received})
    else:
        emit(association)
    return 0


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register ``join`` and ``sync``."""
    p = sub.add_parser(
        "join",
        parents=[common],
        help="point this hub at an association and a first peer",
        description="Save an association id and a first peer in config.toml, then fetch the association's "
        "records from that peer (with a progress bar). A peer that cannot be reached is kept: `coophub "
        "serve` or `coophub sync` catch up later. A peer of another association is refused.",
    )
    p.add_argument("association_id", metavar="ASSOCIATION_ID", help="the association's id (its charter's id)")
    p.add_argument("--peer", required=True, metavar="URL", help="the URL of a hub of the association")
    p.add_argument("--no-sync", action="store_true", help="only save the configuration; fetch nothing now")
    p.add_argument("--progress", action="store_true", help="show a progress bar even when not on a terminal")
    p.set_defaults(func=cmd_join)
    p = sub.add_parser(
        "sync",
        parents=[common],
        help="catch up with peers now, with progress",
        description="Run one anti-entropy session with each configured peer (or --peer): fetch what this hub "
        "lacks, send what the peer lacks. A hub with no records streams the peer's records in pages. "
        "Useful after a long time offline; `coophub serve` does the same in the background.",
    )
    p.add_argument("--peer", metavar="URL", help="sync with this hub only (default: every configured peer)")
    p.add_argument("--progress", action="store_true", help="show a progress bar even when not on a terminal")
    p.set_defaults(func=cmd_sync)
