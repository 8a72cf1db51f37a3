"""Running a hub: init, join, serve, peers, status, export and import."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from hub import i18n
from hub.home import Home, default_home
from hub.i18n import gettext as _
from hub.logs import LOG_FORMATS, LOG_LEVELS
from hub.logs import configure as configure_logs
from hub.store import IngestResult, Store
from protocol import decode_record
from protocol.jsonview import record_to_json

from .common import check_url, home_from, now_ms, open_store
from .output import CliError, emit, emit_json, kv, table

__all__ = ["add_parsers"]

_EXPORT_PAGE = 1000


def cmd_init(args: argparse.Namespace) -> int:
    path = Path(args.home) if args.home else default_home()
    url = check_url(args.url, "--url") if args.url else ""
    seed = None
    if args.key:
        from .maintenance import read_key

        seed = read_key(args.key)
    home = Home.create(path, args.name, region=args.region or "", url=url, seed=seed)
    if args.key:
        from .maintenance import key_warning

        key_warning(args.key)
    create_database(home)
    if args.json:
        emit_json({"hub_id": home.hub_id, "home": str(home.path)})
    else:
        emit(home.hub_id)
    return 0


def create_database(home: Home) -> None:
    """Create the new home's database now, private: 0600 (its -wal and -shm files take its mode).

    Raises:
        sqlite3.Error: it cannot be created.
    """
    umask = os.umask(0o077)
    try:
        Store(home.db_path, limits=home.limits(), blobs_dir=home.blobs_dir).close()
    finally:
        os.umask(umask)


def cmd_serve(args: argparse.Namespace) -> int:
    from hub.serve import run_hub

    home = home_from(args)
    log_format = args.log_format or home.config.log_format
    configure_logs(args.log_level or home.config.log_level, log_format)
    run_hub(home, args.host, args.port, access_log=args.access_log or home.config.access_log)
    return 0


def cmd_systemd_unit(args: argparse.Namespace) -> int:
    from hub.systemd import unit_text

    home = home_from(args)
    emit(unit_text(home.path, user=args.user or getpass.getuser()).rstrip("\n"))
    return 0


def cmd_peers_add(args: argparse.Namespace) -> int:
    home = home_from(args)
    url = check_url(args.url, "URL").rstrip("/")
    if url == home.config.url.rstrip("/"):
        raise CliError(_("%(url)s is this hub's own URL") % {"url": url}, _("add another hub's URL"))
    added = url not in home.config.peers
    if added:
        home.config.peers.append(url)
        home.save_config()
    if args.json:
        emit_json({"url": url, "added": added, "peers": home.config.peers})
    else:
        emit((_("added %(url)s") if added else _("already a peer: %(url)s")) % {"url": url})
    return 0


def cmd_peers_remove(args: argparse.Namespace) -> int:
    home = home_from(args)
    url = check_url(args.url, "URL").rstrip("/")
    configured = [u for u in home.config.peers if u.rstrip("/") == url]
    with open_store(home) as store:
        saved = store.delete_peer(url)
    if not configured and not saved:
        raise CliError(_("%(url)s is not a peer of this hub") % {"url": url},
                       _("see the peers with `coophub peers list`"))
    if configured:
        home.config.peers[:] = [u for u in home.config.peers if u.rstrip("/") != url]
        home.save_config()
    if args.json:
        emit_json({"url": url, "removed": True, "peers": home.config.peers})
    else:
        emit(_("removed %(url)s") % {"url": url})
    return 0


def _live_peers(home: Home, url: str | None) -> list[dict[str, Any]] | None:
    """The peer rows with live sessions of the hub running at ``url`` (``GET /api/v1/peers``), or None when no
    hub runs on this home or it did not answer: then the saved table is all there is."""
    import aiohttp

    from .common import api_request

    if url is None:
        return None
    try:
        status, data = api_request("GET", f"{url}/api/v1/peers", home.token)
    except (aiohttp.ClientError, TimeoutError, OSError):
        return None
    if status != 200 or not isinstance(data, dict) or data.get("sessions_known") is not True:
        return None
    peers = data.get("peers")
    return [p for p in peers if isinstance(p, dict)] if isinstance(peers, list) else None


def _peers(home: Home, store: Store) -> dict[str, Any]:
    """``{"peers": rows, "sessions_known": bool}``: this home's config and saved table, overlaid by the running
    hub's live sessions when there is one (hub.peer_status)."""
    from hub.app import hub_names
    from hub.peer_status import peers_payload

    live = _live_peers(home, home.running_url())
    return peers_payload(home.config.peers, store.list_peers(), live, hub_names(store, now_ms()),
                         store.member_peer_url_hubs())


def _peer_table(rows: list[dict[str, Any]], sessions_known: bool) -> None:
    """The peers as a table: session state and direction, health, score, last contact (as an age), lag."""
    now = now_ms()
    table(
        (_("peer"), _("session"), _("state"), _("score"), _("last contact"), _("lag"), _("queued"),
         _("last sync"), _("source")),
        (
            [
                _peer_name(r),
                " ".join(str(w) for w in (r.get("session_state"), r.get("direction")) if w),
                r.get("state") or "—",
                _cell(r.get("score")),
                _ago(r.get("last_contact_ms"), now),
                _cell(r.get("lag")),
                _cell(r.get("queued")) if sessions_known else "—",
                _ago(r.get("last_sync_ms"), now),
                "config" if r["configured"] else "session" if r.get("inbound_only") else r.get("source", "discovered"),
            ]
            for r in rows
        ),
    )
    if not sessions_known:
        emit(_("sessions unknown: the hub is not running; this is the peer table it saved"))


def _peer_name(row: dict[str, Any]) -> str:
    """A peer's URL; a member known only by its inbound session by its co-op's name and hub id."""
    if not row.get("inbound_only"):
        return str(row["url"])
    hub = str(row.get("hub") or row["url"])
    return f"{row['name']} ({hub})" if row.get("name") else hub


def _cell(value: Any) -> str:
    return "—" if value is None or value == "" else str(value)


def _ago(ms: Any, now: int) -> str:
    return i18n.format_ago(int(ms), now) if isinstance(ms, int) and ms > 0 else _("never")


def cmd_peers_list(args: argparse.Namespace) -> int:
    home = home_from(args)
    with open_store(home) as store:
        payload = _peers(home, store)
    if args.json:
        emit_json(payload)
        return 0
    if not payload["peers"]:
        emit(_("no peers; add one with `coophub peers add URL`"))
        return 0
    _peer_table(payload["peers"], payload["sessions_known"])
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from hub.app import status_view

    home = home_from(args)
    serving = home.running_url()
    with open_store(home) as store:
        status = status_view(home, store, now_ms(), _live_peers(home, serving))
    status["serving"] = serving
    if args.json:
        emit_json(status)
        return 0
    kv(
        [
            (_("hub"), status["hub_id"]),
            (_("name"), status.get("name")),
            (_("home"), str(home.path)),
            (
                _("association"),
                f"{status.get('association') or ''} {status.get('association_id') or _('none yet')}".strip(),
            ),
            (_("member"), _("yes") if status.get("member") else _("no")),
            (_("records"), status.get("records")),
            (_("members"), status.get("members")),
            (_("peers"), status.get("peer_urls") or _("none")),
            (_("last sync"), status.get("last_sync") or _("never")),
            (_("refused"), status.get("refused")),
            (_("serving"), status["serving"] or _("not running (start with `coophub serve`)")),
        ]
    )
    if status["peer_sessions"]:
        emit("")
        _peer_table(status["peer_sessions"], status["sessions_known"])
    return 0


# -- export and import ---------------------------------------------------------------------------------------


def _jsonl_lines(home: Home, store: Store) -> Iterator[str]:
    after: tuple[int, bytes] | None = None
    limits = home.limits()
    now = now_ms()
    while True:
        page = store.iter_raws(after, _EXPORT_PAGE)
        for created, _id, raw in page:
            record = decode_record(raw, now_ms=max(now, created), limits=limits)
            yield json.dumps({"raw": raw.hex(), **record_to_json(record)}, ensure_ascii=False)
        if len(page) < _EXPORT_PAGE:
            return
        after = (page[-1][0], page[-1][1])


@contextlib.contextmanager
def _output(path: str | None) -> Iterator[IO[str]]:
    """stdout, or a file written atomically (a temporary file renamed once complete)."""
    if path is None or path == "-":
        yield sys.stdout
        return
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        try:
            f = open(tmp, "w", encoding="utf-8")
        except OSError as exc:
            # Name the file the user asked for, not the temporary file beside it.
            raise OSError(exc.errno, exc.strerror, str(target)) from None
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        try:
            os.replace(tmp, target)
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, str(target)) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def cmd_export(args: argparse.Namespace) -> int:
    home = home_from(args)
    with open_store(home) as store, _output(args.output) as out:
        if args.format != "jsonl":
            from hub.opendata.export import export_document

            document, omitted = export_document(store, args.format, now_ms(), home.config.url or None)
            json.dump(document, out, indent=2, ensure_ascii=False)
            out.write("\n")
            if omitted:  # values from peers' records that would not validate (docs/opendata.md)
                print(omitted.line(), file=sys.stderr)
        else:
            for line in _jsonl_lines(home, store):
                out.write(line + "\n")
    return 0


def read_import(path: str) -> list[bytes]:
    """Every record of a JSON lines backup, checked line by line before anything is stored.

    Raises:
        CliError: unreadable file, or a line that is not a JSON object with a hex "raw" field.
    """
    try:
        stream = sys.stdin if path == "-" else open(path, encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}", "check the path", code=2) from None
    raws = []
    with stream:
        try:
            for number, line in enumerate(stream, 1):
                if line.strip():
                    raws.append(_raw_of(line, path, number))
        except UnicodeDecodeError:
            raise CliError(
                f"{path} is not UTF-8 text", "import a file made by `coophub export --format jsonl`", code=2
            ) from None
    return raws


def _raw_of(line: str, path: str, number: int) -> bytes:
    try:
        item = json.loads(line)
        return bytes.fromhex(item["raw"])
    except (ValueError, KeyError, TypeError):
        raise CliError(
            f"{path} line {number} is not a record line",
            "import a file made by `coophub export "
            '--format jsonl` (one JSON object with a hex "raw" field per line); nothing was '
            "imported",
            code=2,
        ) from None


def ingest_all(home: Home, store: Store, raws: list[bytes], progress: bool) -> list[IngestResult]:
    """Ingest a backup's records (``coophub import``, ``coophub restore``), with a bar if ``progress``."""
    # One call when it fits (or no bar is shown), so a record that waits for a later one reports how it ended.
    if len(raws) <= home.limits().ingest_batch or not progress:
        return store.ingest(raws, now_ms=now_ms(), source="import") if raws else []
    batch = max(1, home.limits().ingest_batch)
    results: list[IngestResult] = []
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(file=sys.stderr), transient=False) as bar:
        task = bar.add_task("importing", total=len(raws))
        for start in range(0, len(raws), batch):
            results += store.ingest(raws[start : start + batch], now_ms=now_ms(), source="import")
            bar.advance(task, len(raws[start : start + batch]))
    return results


def cmd_import(args: argparse.Namespace) -> int:
    home = home_from(args)
    raws = read_import(args.file)
    progress = args.progress or sys.stderr.isatty()
    with open_store(home) as store:
        results = ingest_all(home, store, raws, progress)
    counts = {
        status: sum(1 for r in results if r.status == status)
        for status in ("accepted", "duplicate", "deferred", "refused")
    }
    reasons: dict[str, int] = {}
    for r in results:
        if r.status == "refused":
            reasons[r.reason or "invalid"] = reasons.get(r.reason or "invalid", 0) + 1
    if args.json:
        emit_json({**counts, "refused_reasons": reasons})
    else:
        emit(
            f"accepted {counts['accepted']}, duplicate {counts['duplicate']}, refused {counts['refused']}"
            + (" (" + ", ".join(f"{k}: {v}" for k, v in sorted(reasons.items())) + ")" if reasons else "")
            + (f", deferred {counts['deferred']} (held until what they wait for arrives)"
               if counts["deferred"] else "")
        )
    return 0


# -- parsers -------------------------------------------------------------------------------------------------


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (0–65535)")
    return value


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register init, serve, peers, status, export and import (join and sync: cli/network.py)."""
    p = sub.add_parser(
        "init",
        parents=[common],
        help="create a hub: key, database, config, API token",
        description="Create a new hub in --home and print its hub id.",
    )
    p.add_argument("--name", required=True, help="the co-op's name")
    p.add_argument("--region", help="the region the co-op serves")
    p.add_argument("--url", help="the public URL at which peers will reach this hub")
    p.add_argument("--key", metavar="FILE", help="use this hub.key (an old hub's 32-byte key) instead of a new "
                   "one; `coophub restore` also brings its records back")
    p.set_defaults(func=cmd_init)
    p = sub.add_parser(
        "serve",
        parents=[common],
        help="run the hub: HTTP API, web pages, gossip",
        description="Run the hub until Ctrl-C or SIGTERM. Listens on 127.0.0.1 unless told otherwise.",
    )
    p.add_argument("--host", help="address to listen on (default: config.toml's, 127.0.0.1)")
    p.add_argument("--port", type=_port, help="port to listen on (default: config.toml's, 8470)")
    p.add_argument("--log-format", choices=LOG_FORMATS, help="plain lines or JSON objects (default: config.toml's, "
                   "plain)")
    p.add_argument("--log-level", choices=LOG_LEVELS, help="least severe level logged (default: config.toml's, info)")
    p.add_argument("--access-log", action="store_true", help="log one line per HTTP request")
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser(
        "systemd-unit",
        parents=[common],
        help="print a systemd unit that runs this hub",
        description="Print a systemd service unit for this hub's home and this coophub, hardened (no new "
        "privileges, read-only system, writes only to the home). Save it as /etc/systemd/system/coophub.service, "
        "then `systemctl enable --now coophub`.",
    )
    p.add_argument("--user", metavar="USER", help="the system user the hub runs as (default: the current user)")
    p.set_defaults(func=cmd_systemd_unit)
    peers = sub.add_parser("peers", help="add, remove or list peers",
                           description="Add, remove or list this hub's peers.")
    peers_sub = peers.add_subparsers(dest="peers_command", required=True, metavar="COMMAND")
    p = peers_sub.add_parser(
        "add",
        parents=[common],
        help="add a peer URL to config.toml",
        description="Add a peer URL to config.toml.",
    )
    p.add_argument("url", metavar="URL", help="another hub's URL")
    p.set_defaults(func=cmd_peers_add)
    p = peers_sub.add_parser(
        "remove",
        parents=[common],
        help="remove a peer from config.toml and forget its saved state",
        description="Remove a peer URL from config.toml and forget what this hub saved about it. A URL that a "
        "member's profile names may be learnt again later.",
    )
    p.add_argument("url", metavar="URL", help="the peer's URL, as `coophub peers list` shows it")
    p.set_defaults(func=cmd_peers_remove)
    p = peers_sub.add_parser(
        "list",
        parents=[common],
        help="list peers and their health",
        description="List configured and discovered peers with their last sync.",
    )
    p.set_defaults(func=cmd_peers_list)
    p = sub.add_parser(
        "status",
        parents=[common],
        help="hub id, association, membership, records, peers",
        description="Show this hub's id, association, membership, record counts and peers.",
    )
    p.set_defaults(func=cmd_status)
    p = sub.add_parser(
        "export",
        parents=[common],
        help="export open data (HSDS, OCDS, Open Badges, Murmurations) or a backup (JSON lines)",
        description="Export the directory as Open Referral HSDS 3.0, closed joint purchases as an OCDS "
        "release package, quality marks as Open Badges 3.0 credentials, members as Murmurations profiles, "
        "or every record as JSON lines (a backup that `coophub import` restores).",
    )
    p.add_argument("--format", required=True, choices=("hsds", "jsonl", "ocds", "badges", "murmurations"),
                   help="hsds, jsonl, ocds, badges or murmurations")
    p.add_argument("--output", metavar="FILE", help="write to FILE (atomically) instead of stdout")
    p.set_defaults(func=cmd_export)
    p = sub.add_parser(
        "import",
        parents=[common],
        help="import records from a JSON lines backup",
        description="Import records from a JSON lines file made by `coophub export --format "
        "jsonl`; each record is checked like any other.",
    )
    p.add_argument("file", metavar="FILE", help="the JSON lines file ('-' for stdin)")
    p.add_argument("--progress", action="store_true", help="show a progress bar even when not on a terminal")
    p.set_defaults(func=cmd_import)
