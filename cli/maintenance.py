"""Keeping a hub's files sound: ``coophub check`` (and ``--repair``) and ``coophub restore`` (docs/operations.md).

``check`` runs hub.check over the home's database with a progress bar and prints one table; it exits 1 when
anything is wrong. ``check --repair`` rebuilds the derived state and the full-text index (hub.check.repair) with
the hub stopped. ``restore`` brings a hub back from its old key (``hub.key``, kept safe elsewhere) and either a
backup made by ``coophub export --format jsonl`` or a catch-up from a peer of its association.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hub.check import CheckReport, Progress, check, repair
from hub.home import Home, default_home

from .common import check_url, home_from, now_ms, open_store
from .output import CliError, emit, emit_json, table

__all__ = ["add_parsers", "read_key"]

_STAGES = {"integrity": "integrity check", "records": "verifying records", "recomputing": "recomputing derived state"}
_SHOWN_FINDINGS = 20


@contextlib.contextmanager
def _progress(show: bool) -> Iterator[Progress]:
    """A rich progress bar on stderr with one line per stage, or nothing."""
    if not show:
        yield lambda stage, done, total: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        tasks: dict[str, Any] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(_STAGES.get(stage, stage), total=max(total, 1))
            bar.update(tasks[stage], completed=done, total=max(total, done, 1))

        yield update


def _rows(report: CheckReport) -> list[list[Any]]:
    rows: list[list[Any]] = [
        ["integrity", "ok" if not report.integrity else "PROBLEM", "; ".join(report.integrity[:3]) or "PRAGMA "
         "integrity_check"],
        ["records", "ok" if not report.invalid else "PROBLEM",
         f"{report.records} verified, {report.invalid} fail (signature, encoding, schema, id, columns)"],
        ["eligibility", "ok" if not report.ineligible else "warning",
         f"{report.ineligible} by authors today's storage rule does not find eligible"],
        ["search index", "ok" if report.index_ok else "PROBLEM", "full-text index against its content"],
    ]
    for t in report.tables:
        rows.append([t.table, "ok" if t.ok else "PROBLEM",
                     f"{t.stored} stored, {t.recomputed} recomputed" +
                     ("" if t.ok else f", {t.missing} missing, {t.extra} not implied")])
    return rows


def _json(report: CheckReport) -> dict[str, Any]:
    return {
        "ok": report.ok, "records": report.records, "invalid": report.invalid, "ineligible": report.ineligible,
        "integrity": report.integrity, "index_ok": report.index_ok, "removed": report.removed,
        "tables": [{"table": t.table, "stored": t.stored, "recomputed": t.recomputed, "missing": t.missing,
                    "extra": t.extra, "ok": t.ok} for t in report.tables],
        "findings": [{"area": f.area, "what": f.what, "detail": f.detail} for f in report.findings],
    }


def cmd_check(args: argparse.Namespace) -> int:
    home = home_from(args)
    home.check_database()
    show = args.progress or sys.stderr.isatty()
    if args.repair:
        running = home.running_url()
        if running is not None:
            raise CliError(f"the hub is running at {running}", "stop `coophub serve` first, then repair")
        with _progress(show) as update:
            fixed = repair(home.db_path, limits=home.limits(), now_ms=now_ms(), progress=update)
    with _progress(show) as update:
        report = check(home.db_path, limits=home.limits(), now_ms=now_ms(), progress=update)
    if args.repair:
        report.removed = fixed.removed
    if args.json:
        emit_json(_json(report))
    else:
        table(("check", "result", "detail"), _rows(report))
        for finding in report.findings[:_SHOWN_FINDINGS]:
            emit(f"{finding.area}: {finding.what}: {finding.detail}")
        if len(report.findings) > _SHOWN_FINDINGS:
            emit(f"… and {len(report.findings) - _SHOWN_FINDINGS} more (see --json)")
        if args.repair:
            emit(f"repaired: derived state and search index rebuilt; {len(fixed.removed)} invalid records removed")
    if report.ok:
        return 0
    raise CliError("the check found problems (listed above)",
                   "run `coophub check --repair` with the hub stopped, or restore from a backup (docs/operations.md)")


# -- restore -------------------------------------------------------------------------------------------------


def read_key(path: str) -> bytes:
    """The 32-byte seed in a hub.key file.

    Raises:
        CliError: unreadable, or not 32 bytes.
    """
    try:
        seed = Path(path).read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}", "give the hub.key file of the hub to restore",
                       code=2) from None
    if len(seed) != 32:
        raise CliError(f"{path} is not a coophub key (expected 32 bytes, found {len(seed)})",
                       "give the hub.key file copied from the old hub's home", code=2)
    return seed


def _key_warning(path: str) -> None:
    with contextlib.suppress(OSError):
        if os.stat(path).st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            sys.stderr.write(f"coophub: warning: {path} is readable by other users; the restored home's copy is "
                             f"0600, and you may want to delete this copy or run `chmod 600 {path}`\n")


def cmd_restore(args: argparse.Namespace) -> int:
    from . import admin, network

    if bool(args.backup) == bool(args.peer):
        raise CliError("give exactly one of --backup FILE and --peer URL", "see `coophub restore --help`", code=2)
    seed = read_key(args.key)
    path = Path(args.home) if args.home else default_home()
    peer = check_url(args.peer, "--peer").rstrip("/") if args.peer else None
    raws = admin.read_import(args.backup) if args.backup else []  # a bad file fails before anything is created
    url = check_url(args.url, "--url") if args.url else ""
    home = Home.create(path, args.name or "restoring", region=args.region or "", url=url, seed=seed)
    _key_warning(args.key)
    admin.create_database(home)
    show = args.progress or sys.stderr.isatty()
    if peer is not None:
        found = network.check_peer(home, peer)
        if found.error:
            raise CliError(f"cannot reach {peer}: {found.error}", f"the home is created; when the peer answers, "
                           f"run `coophub join ASSOCIATION_ID --peer {peer} --home {home.path}`")
        home.config.association_id = found.association
        home.config.peers = [peer]
        home.save_config()
        home = Home.open(home.path)
        received = network.catch_up_from(home, peer, progress=show)
    else:
        with open_store(home) as store:
            results = admin.ingest_all(home, store, raws, show)
        received = sum(1 for r in results if r.status == "accepted")
    summary = _finish(home, args.name)
    summary["received"] = received
    if args.json:
        emit_json(summary)
    else:
        emit(f"restored {home.hub_id} ({summary['name']}) in {home.path}: {received} records, "
             f"{summary['own_records']} of them by this hub; run `coophub check`, then `coophub serve`")
    return 0


def _finish(home: Home, name: str | None) -> dict[str, Any]:
    """Take the association and (unless --name was given) the name from the restored records."""
    with open_store(home) as store:
        association = store.association_id()
        own = store.view(_own_count, home.key.public)
        profile = store.view(_own_profile_name, home.key.public)
    if association is not None:
        home.config.association_id = association.hex()
    home.config.name = name or profile or home.config.name
    home.save_config()
    return {"hub_id": home.hub_id, "home": str(home.path), "name": home.config.name,
            "association_id": home.config.association_id, "own_records": own}


def _own_count(conn: Any, author: bytes) -> int:
    return int(conn.execute("SELECT count(*) FROM records WHERE author = ?", (author,)).fetchone()[0])


def _own_profile_name(conn: Any, author: bytes) -> str | None:
    row = conn.execute("SELECT name FROM profiles WHERE hub = ?", (author,)).fetchone()
    return None if row is None else str(row[0])


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register check and restore."""
    p = sub.add_parser(
        "check",
        parents=[common],
        help="verify the database: integrity, every record, derived state, search index",
        description="Run SQLite's integrity check, verify every stored record again (signature, canonical "
        "encoding, schema), recompute the derived state and the search index from the records and compare "
        "them with what is stored, and list records whose authors today's storage rule does not find "
        "eligible. Exits 1 if anything is wrong. With --repair (hub stopped), first rebuild the derived "
        "state and the search index from the records, removing records that fail verification.",
    )
    p.add_argument("--repair", action="store_true",
                   help="rebuild derived state and the search index first (stop `coophub serve` before)")
    p.add_argument("--progress", action="store_true", help="show a progress bar even when not on a terminal")
    p.set_defaults(func=cmd_check)
    p = sub.add_parser(
        "restore",
        parents=[common],
        help="bring a hub back from its key and a backup or a peer",
        description="Create a new home (--home) with the hub's old key (--key hub.key), then fill it from a "
        "backup made by `coophub export --format jsonl` (--backup FILE) or from a peer of the association "
        "(--peer URL, which also joins that association). A new API token is made; the name comes from the "
        "hub's own profile unless --name is given.",
    )
    p.add_argument("--key", required=True, metavar="FILE", help="the old hub.key (32 bytes)")
    p.add_argument("--backup", metavar="FILE", help="a JSON lines backup (`coophub export --format jsonl`)")
    p.add_argument("--peer", metavar="URL", help="a hub of the association to catch up from")
    p.add_argument("--name", help="the co-op's name (default: from its own profile in the records)")
    p.add_argument("--region", help="the region the co-op serves")
    p.add_argument("--url", help="the public URL at which peers will reach this hub")
    p.add_argument("--progress", action="store_true", help="show a progress bar even when not on a terminal")
    p.set_defaults(func=cmd_restore)

