"""Query commands over this hub's copy of the federated directory: search, show, verify-mark."""

from __future__ import annotations

import argparse
from typing import Any

from hub.i18n import gettext as _
from hub.store import DirectoryQuery, Store
from hub.webview import mark_view, schemes_of
from protocol.jsonview import iso_ms, record_to_json

from .common import home_from, now_ms, open_store, parse_hub, parse_record_id
from .output import CliError, console, emit, emit_json, kv, short, table

__all__ = ["add_parsers"]

MAX_LIMIT = 200
#: Columns the search table needs to show every cell, the 64-character id whole among them; below it, each
#: result is printed as a short block instead (a table squeezed into 80 columns cut ids and mark status).
WIDE_TABLE = 190


def cmd_search(args: argparse.Namespace) -> int:
    home = home_from(args)
    query = DirectoryQuery(
        q=args.query or "",
        kind=args.kind,
        region=args.region,
        service=args.service,
        mark=args.mark,
        open=args.open,
        reviewed=args.reviewed,
        limit=args.limit,
        offset=args.offset,
    )
    with open_store(home) as store:
        results, total = store.search(query, now_ms())
    if args.json:
        emit_json({"results": results, "total": total})
        return 0
    if not results:
        emit(_("no matches (of %(total)s)") % {"total": total} if total else _("no matches"))
        return 0
    if console().width >= WIDE_TABLE:
        columns = (_("kind"), _("title"), _("by"), _("regions"), _("marks / status"), _("id"))
        table(columns, (_row(r) for r in results))
    else:
        _blocks(results)
    shown = f"{args.offset + 1}–{args.offset + len(results)}"
    more = args.offset + len(results) < total
    emit((_("%(shown)s of %(total)s — more with --offset") if more else _("%(shown)s of %(total)s"))
         % {"shown": shown, "total": total})
    return 0


def _blocks(results: list[dict[str, Any]]) -> None:
    """One short block per result for a narrow terminal: the id on a line of its own, never shortened, so it
    can be copied for `coophub show` or `coophub pledge`; the mark status never cut off."""
    for index, result in enumerate(results):
        kind, title, author, regions, state, rid = _row(result, width=None)
        if index:
            emit("")
        emit(f"{kind:<6} {title}")
        # A hub's entry is its own: its title is its name.
        by = _("by %(author)s") % {"author": author} if author and kind != "hub" else ""
        details = " · ".join(part for part in (by, regions) if part)
        if details:
            emit(f"       {details}")
        if state:
            emit(f"       {state}")
        emit("       " + _("id %(id)s") % {"id": rid})


def _row(result: dict[str, Any], width: int | None = 50) -> list[str]:
    marks = ", ".join(f"{m.get('scheme')}:{m.get('status')}" for m in result.get("marks") or [])
    state = result.get("status") or marks
    if result.get("kind") == "hub" and not result.get("member"):
        state = (_("applicant") + "; " + state) if state else _("applicant")
    author = result.get("author_name") or result.get("author") or ""
    def cut(value: Any, limit: int) -> str:
        return short(value, limit) if width is not None else short(value, 10_000)

    return [
        str(result.get("kind", "")),
        cut(result.get("title"), 50),
        cut(author, 30),
        cut(", ".join(result.get("regions") or []), 30),
        cut(state, 40),
        str(result.get("id", "")),
    ]


def _show_hub(store: Store, text: str, as_json: bool) -> int:
    hub = parse_hub(text)
    view = store.hub_view(hub, now_ms())
    if view is None:
        raise CliError(_("no hub %(hub)s in this hub's directory") % {"hub": text.strip()},
                       _("check the id, or wait for sync"))
    if as_json:
        emit_json(view)
        return 0
    body = (view.get("profile") or {}).get("body", {})
    kv(
        [
            (_("hub"), view["hub"]),
            (_("name"), view.get("name")),
            (_("member"), _("yes") if view["member"] else _("no (applicant)")),
            (_("founder"), _("yes") if view.get("founder") else None),
            (_("endorsers"), view.get("endorsers")),
            (_("description"), body.get("description")),
            (_("regions"), body.get("regions")),
            (_("services"), [f"{s['name']} ({s['category']})" for s in body.get("services", [])]),
            (_("website"), body.get("website")),
            (_("peer urls"), body.get("peer_urls")),
        ]
    )
    for mark in view.get("marks", []):
        emit(_("mark:  %(scheme)s %(level)s — %(status)s: %(reason)s")
             % mark)
    for guide in view.get("guides", []):
        emit(_("guide: %(title)s (%(id)s)") % guide)
    for offer in view.get("offers", []):
        emit(_("offer: %(title)s — %(status)s (%(id)s)") % offer)
    return 0


def _show_record(store: Store, text: str, as_json: bool) -> int:
    record_id = parse_record_id(text, "record id or hub id")
    record = store.get_record(record_id)
    if record is None:
        raise CliError(_("no record %(id)s on this hub") % {"id": record_id.hex()}, _("check the id, or wait for sync"))
    data: dict[str, Any] = {**record_to_json(record), "raw": record.raw.hex()}
    now = now_ms()
    if record.kind == "offer":
        data["tally"] = (store.offer_view(record_id, now) or {}).get("tally")
    elif record.kind == "guide":
        view = store.guide_view(record_id) or {}
        data.update({k: v for k, v in view.items() if k not in data})
    if as_json:
        emit_json(data)
        return 0
    kv([("id", data["id"]), ("kind", data["kind"]), ("author", data["author"]), ("created", data["created"])])
    _print_body(record.kind, data["body"])
    if data.get("tally"):
        _print_tally(data["tally"], str(data["body"].get("currency", "")))
    return 0


def _print_body(kind: str, body: dict[str, Any]) -> None:
    long_text = body.pop("body", None) if kind == "guide" else None
    for key, value in body.items():
        if key in ("deadline", "valid_from", "valid_until") and isinstance(value, int):
            value = iso_ms(value)
        emit(f"  {key}: {value if not isinstance(value, (list, dict)) else _compact(value)}")
    if long_text:
        emit("")
        emit(long_text.rstrip())


def _compact(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)


def _print_tally(tally: dict[str, Any], currency: str) -> None:
    from hub.webview import money

    tier = tally.get("tier")
    line = _("tally: %(status)s, %(total)s pledged") % tally
    if tier:
        line += _(", tier from %(quantity)s at %(price)s each") % {
            "quantity": tier["min_quantity"], "price": money(tier["unit_price"], currency)}
    emit(line + (_(", proceeds") if tally.get("proceeds") else _(", below the minimum total")))
    for line in tally.get("pledges", []):
        emit(f"  {line['quantity']:>8}  {line.get('name') or line['hub']}  ({line['pledge_id']})")


def _names(store: Store) -> dict[str, str]:
    rows, _total = store.search(DirectoryQuery(kind="hub", limit=MAX_LIMIT), now_ms())
    return {r["author"]: r["title"] for r in rows}


def cmd_show(args: argparse.Namespace) -> int:
    home = home_from(args)
    with open_store(home) as store:
        if args.id.strip().startswith("hub_"):
            return _show_hub(store, args.id, args.json)
        return _show_record(store, args.id, args.json)


def cmd_verify_mark(args: argparse.Namespace) -> int:
    home = home_from(args)
    hub = parse_hub(args.hub_id)
    with open_store(home) as store:
        check = store.mark_check(hub, args.scheme, now_ms())
        names = _names(store)
        charter = store.charter()
    if check["status"] == "unknown-scheme":
        raise CliError(check["reason"], _("use one of the charter's schemes"))
    if args.json:
        emit_json(check)
    else:
        # The reason worded as on the web pages: in the locale's language, people by name rather than by id.
        mark = mark_view(check, args.scheme, schemes_of(charter), names, subject_name=names.get(args.hub_id, ""))
        emit(f"{check['status']}: {mark['reason']}")
        if check.get("attestation"):
            emit(_("attestation: %(id)s") % check["attestation"])
        if check.get("revocation"):
            emit(_("revocation: %(id)s") % check["revocation"])
    return 0


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MAX_LIMIT}")
    return value


def _offset(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register search, show and verify-mark."""
    p = sub.add_parser(
        "search",
        parents=[common],
        help="search the federated directory",
        description="Search the federated directory: co-ops, guides and offers.",
    )
    p.add_argument("query", nargs="?", metavar="QUERY", help="words to look for")
    p.add_argument("--kind", choices=("hub", "guide", "offer"), help="only this kind of entry")
    p.add_argument("--region", metavar="R", help="only entries for this region")
    p.add_argument("--service", metavar="S", help="only co-ops offering this service name or category")
    p.add_argument("--mark", metavar="SCHEME", help="only co-ops holding a valid mark of this scheme")
    p.add_argument("--open", action="store_true", help="only offers open for pledges")
    p.add_argument("--reviewed", action="store_true", help="only guide versions that are association-reviewed")
    p.add_argument("--limit", type=_limit, default=20, help=f"entries per page (1–{MAX_LIMIT}, default 20)")
    p.add_argument("--offset", type=_offset, default=0, help="skip this many entries")
    p.set_defaults(func=cmd_search)
    p = sub.add_parser(
        "show",
        parents=[common],
        help="show one record or hub",
        description="Show one record (by its id) or one hub (by its hub_ id).",
    )
    p.add_argument("id", metavar="ID", help="a record id (64 hex) or a hub id (hub_…)")
    p.set_defaults(func=cmd_show)
    p = sub.add_parser(
        "verify-mark",
        parents=[common],
        help="check a hub's quality mark and say why",
        description="Whether a hub holds a valid mark of a scheme now, and why (valid, expired, "
        "revoked, not-yet-valid, unauthorised, none).",
    )
    p.add_argument("hub_id", metavar="HUB_ID", help="the hub")
    p.add_argument("scheme", metavar="SCHEME", help="the scheme id from the charter")
    p.set_defaults(func=cmd_verify_mark)
