"""Shared by the CLI's commands: opening a home and its store, parsing dates/money/ids, and the publish path.

Publishing works with or without a running hub (PRODUCT.md §4): when ``HOME/serve.json`` names a live
``coophub serve``, the record goes through its ``POST /api/v1/publish`` so it is gossiped at once; otherwise
the CLI signs it and ingests it through ``Store.ingest`` itself. Either way the store's one ingest path
checks it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import re
import time
import zoneinfo
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hub.home import DEFAULT_TIMEZONE, Home, default_home
from hub.i18n import N_
from hub.i18n import gettext as _
from hub.publishing import PublishRefused
from hub.store import Store
from protocol import ProtocolError, build_record, parse_hub_id
from protocol.jsonview import body_to_json

from .output import CliError, emit, emit_json

__all__ = [
    "HTTP_TIMEOUT_S",
    "api_request",
    "check_url",
    "home_from",
    "now_ms",
    "open_store",
    "parse_hub",
    "parse_money",
    "parse_record_id",
    "parse_tier",
    "parse_when",
    "print_id",
    "publish",
    "put_blob",
]

#: How long the CLI waits for a running hub's API before giving up (seconds).
HTTP_TIMEOUT_S = 30
_TIER = re.compile(r"(\d{1,12}):(\d{1,10})(?:\.(\d{1,2}))?")
_MONEY = re.compile(r"(\d{1,10})(?:\.(\d{1,2}))?")
_URL = re.compile(r"https?://[^\s<>\"']{1,500}")


def print_id(args: argparse.Namespace, record_id: str, **extra: Any) -> int:
    """What every publishing command prints: the new record's id, or ``{"id": ..., **extra}`` with --json."""
    if args.json:
        emit_json({"id": record_id, **extra})
    else:
        emit(record_id)
    return 0


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def home_from(args: argparse.Namespace) -> Home:
    """Open the home named by ``--home`` (default $COOPHUB_HOME, else ~/.coophub).

    Raises:
        HomeError: no hub there, or an unsafe/unreadable home.
    """
    return Home.open(Path(args.home) if args.home else default_home())


@contextlib.contextmanager
def open_store(home: Home) -> Iterator[Store]:
    """The home's store, closed on exit.

    Raises:
        HomeError: the home's limits are malformed, or its database is missing.
        hub.db.DatabaseUnusable: the database is empty, foreign or damaged.
    """
    home.check_database()
    store = Store(home.db_path, limits=home.limits(), blobs_dir=home.blobs_dir, association=home.association)
    try:
        yield store
    finally:
        store.close()


# -- values --------------------------------------------------------------------------------------------------


def parse_when(text: str, name: str, *, end_of_day: bool = False, timezone: str = DEFAULT_TIMEZONE) -> int:
    """An ISO 8601 date or date-time as UTC milliseconds.

    A date alone means the start of that day in ``timezone`` — or, with ``end_of_day`` (deadlines, "valid
    until"), its last millisecond, so ``--deadline 2026-03-01`` closes at 23:59:59.999 on 1 March where the
    association is, not at midnight as the day begins. A date-time without an offset is in ``timezone`` too.

    Raises:
        CliError: not an ISO date or date-time.
    """
    zone = zoneinfo.ZoneInfo(timezone)
    text = text.strip()
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            if end_of_day:
                moment = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), zone)
                return _ms(moment, text, name) - 1
            moment = dt.datetime.combine(day, dt.time(), zone)
        else:
            moment = dt.datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=zone)
    except ValueError:
        raise CliError(
            _("%(option)s %(value)s is not a date") % {"option": name, "value": repr(text)},
            _("write YYYY-MM-DD or a full ISO 8601 time such as 2026-03-01T12:00:00Z"),
            code=2,
        ) from None
    return _ms(moment, text, name)


def _ms(moment: dt.datetime, text: str, name: str) -> int:
    ms = int(moment.timestamp() * 1000)
    if ms < 0:
        raise CliError(_("%(option)s %(value)s is before 1970") % {"option": name, "value": repr(text)},
                       _("give a later date"), code=2)
    return ms


def parse_money(text: str, name: str) -> int:
    """A non-negative amount with at most two decimals, in minor units (``4.50`` -> 450).

    Raises:
        CliError: negative, not a number, or more than two decimals.
    """
    match = _MONEY.fullmatch(text.strip())
    if not match:
        raise CliError(
            _("%(option)s %(value)s is not an amount") % {"option": name, "value": repr(text)},
            _("write a non-negative amount with at most two decimals, such as 4.50"),
            code=2,
        )
    return int(match.group(1)) * 100 + int((match.group(2) or "0").ljust(2, "0"))


def parse_tier(text: str) -> list[int]:
    """``MIN_QTY:UNIT_PRICE`` (e.g. ``100:4.50``) as ``[100, 450]``: quantity, unit price in minor units.

    Raises:
        CliError: not of that form, a negative value or a price with more than two decimals.
    """
    match = _TIER.fullmatch(text.strip())
    if not match or int(match.group(1)) < 1:
        raise CliError(
            _("--tier %(value)s is not MIN_QTY:UNIT_PRICE") % {"value": repr(text)},
            _("write e.g. --tier 100:4.50 (a quantity of at least 1, a non-negative price with at most two "
              "decimals)"),
            code=2,
        )
    price = int(match.group(2)) * 100 + int((match.group(3) or "0").ljust(2, "0"))
    return [int(match.group(1)), price]


def parse_hub(text: str) -> bytes:
    """Raises:
    CliError: not a valid hub id.
    """
    try:
        return parse_hub_id(text)
    except ProtocolError as exc:
        raise CliError(
            _("%(value)s is not a hub id (%(problem)s)") % {"value": repr(text), "problem": exc.message},
            _("copy the hub id (hub_…) exactly as `coophub status` or `coophub search` shows it"),
            code=2,
        ) from None


def parse_record_id(text: str, what: str = "record id") -> bytes:
    """Raises:
    CliError: not 64 hex characters.
    """
    try:
        raw = bytes.fromhex(text.strip())
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise CliError(
            f"{text!r} is not {_article(what)} {what}",
            _("a record id is 64 hex characters, as printed when it was published or shown by `coophub search`"),
            code=2,
        )
    return raw


def _article(noun: str) -> str:
    return "an" if noun[:1].lower() in "aeiou" else "a"


def check_url(text: str, name: str) -> str:
    """Raises:
    CliError: not an http(s) URL.
    """
    if not _URL.fullmatch(text.strip()):
        raise CliError(
            _("%(option)s %(value)s is not a URL") % {"option": name, "value": repr(text)},
            _("write an http:// or https:// URL without spaces"), code=2
        )
    return text.strip()


# -- the running hub's API -----------------------------------------------------------------------------------


async def _request(method: str, url: str, token: str, **kwargs: Any) -> tuple[int, Any]:
    import aiohttp  # only when a hub is running: most commands never touch the network

    timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S)
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async with session.request(method, url, headers=headers, **kwargs) as response:
            try:
                data = await response.json(content_type=None)
            except ValueError:
                data = {"error": "error", "detail": (await response.text())[:200]}
            return response.status, data


def api_request(method: str, url: str, token: str, **kwargs: Any) -> tuple[int, Any]:
    """One request to a running hub; returns (status, JSON body).

    Raises:
        aiohttp.ClientError, asyncio.TimeoutError: the hub did not answer.
    """
    return asyncio.run(_request(method, url, token, **kwargs))


def _refused(data: Any) -> CliError:
    reason = data.get("error", "error") if isinstance(data, dict) else "error"
    detail = data.get("detail", "") if isinstance(data, dict) else str(data)
    return CliError(_("refused (%(reason)s): %(detail)s") % {"reason": reason, "detail": detail},
                    _(_REFUSAL_FIX.get(reason, N_("nothing was stored"))))


_REFUSAL_FIX = {  # translated where shown (hub.i18n.N_ marks them for the catalogue)
    "wrong-association": N_("the record belongs to another association; check `coophub status`"),
    "not-a-member": N_("ask members to endorse your hub: they run `coophub endorse` with your hub id "
                       "(`coophub status` shows it)"),
    "missing-reference": N_("the record it refers to is not on this hub yet; check the id, or wait for the "
                            "hub to sync (`coophub serve`)"),
    "rate-limited": N_("wait an hour and try again"),
    "invalid": N_("nothing was stored; check the values given"),
    "too-large": N_("nothing was stored; shorten it or attach large files with --attach"),
}


# -- publishing ----------------------------------------------------------------------------------------------


def _association(home: Home, store: Store, kind: str) -> bytes:
    association = store.association_id() or home.association
    if association is None and kind != "charter":
        raise CliError(
            _("this hub has not joined an association yet"),
            _("run `coophub charter create --association NAME` (founding hub) or "
              "`coophub join ASSOCIATION_ID --peer URL` first"),
        )
    return association or bytes(32)


def publish(home: Home, kind: str, body: dict[str, Any]) -> str:
    """Sign and publish one record of ``kind``; return its id (hex).

    Goes through the running hub's API when there is one, else straight into the store.

    Raises:
        CliError: refused by the store (code 1) or an invalid body (code 2); nothing is stored then.
        ProtocolError: the body does not match the kind's schema.
    """
    now = now_ms()
    with open_store(home) as store:
        association = _association(home, store, kind)
        record = build_record(home.key, association, kind, body, now, limits=home.limits())
        try:
            store.check_publish(record, now)
        except PublishRefused as exc:
            raise _refused({"error": exc.reason, "detail": str(exc)}) from None
        url = home.running_url()
        if url is not None:
            sent = _publish_via_api(url, home.token, kind, body)
            if sent is not None:
                return sent
        # origin: this hub itself, so its own profile while it is an applicant is held here (quarantined)
        # until a member endorses it (docs/protocol.md §2.3).
        result = store.ingest([record.raw], now_ms=now, source="local", origin=home.key.public)[0]
        if result.status == "refused":
            raise _refused({"error": result.reason, "detail": result.detail})
        return record.id_hex


def _publish_via_api(url: str, token: str, kind: str, body: dict[str, Any]) -> str | None:
    """The id the running hub gives the record, or None if nothing listens at ``url`` (a stale serve.json).

    Raises:
        CliError: the hub refused the record.
        aiohttp.ClientError, asyncio.TimeoutError: the hub accepted the connection but did not answer.
    """
    import aiohttp

    payload = {"kind": kind, "body": body_to_json(kind, body)}
    try:
        status, data = api_request("POST", f"{url}/api/v1/publish", token, json=payload)
    except aiohttp.ClientConnectorError:
        # Nothing received the request (connection refused), so storing it directly cannot duplicate it.
        return None
    if status not in (200, 202):  # 202: held (an applicant's profile, a record waiting for another)
        raise _refused(data)
    return str(data["id"])


def put_blob(home: Home, data: bytes) -> str:
    """Store an attachment in the home's blobs (through the running hub when there is one); return its hash.

    Raises:
        CliError: the blob is refused (too large).
    """
    url = home.running_url()
    if url is None:
        with open_store(home) as store:
            try:
                return store.put_blob(data).hex()
            except ProtocolError as exc:
                raise CliError(f"attachment refused: {exc}", "attach a smaller file") from None
    status, reply = api_request("POST", f"{url}/api/v1/blobs", home.token, data=data)
    if status != 200:
        raise _refused(reply)
    return str(reply["hash"])
