"""Mutual-aid web pages (docs/web.md): time credits and solidarity funds, in the directory's style, read-only.

    /credit                 every co-op's time-credit balance, the limit and the ledger's totals
    /credit/{hub_id}        one co-op's balance, limit, pending payments, flag and history
    /funds                  the solidarity funds
    /funds/{id}             one fund: members, claims with approvals, shares and payments, what is owed

Registered by ``hub.app.make_app`` after ``hub.web`` (whose renderer, error pages and security headers these
pages share). Every string people read is in the templates, written with ``_()`` for the translations.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hub.app import NOW_KEY, STORE_KEY
from hub.i18n import gettext as _
from hub.web import PageError, render
from hub.webview import money, short_hub

__all__ = ["ICONS", "TONES", "account_page_view", "fund_page_view", "ledger_page_view", "setup"]

#: status word -> the tone the status macro shows (words are always shown; colour and symbol only repeat them).
TONES = {
    "stands": "ok", "final": "ok", "approved": "warn", "paid": "ok", "member": "ok", "open": "warn",
    "pending": "warn", "leaving": "warn", "over-limit": "bad", "unfunded": "bad", "not-member": "bad",
    "over-capacity": "bad",
}
ICONS = {"ok": "✓", "warn": "!", "bad": "✗", "none": "–"}


def _hours(minutes: int, signed: bool = False) -> str:
    text = f"{abs(minutes) / 60:,.2f}".rstrip("0").rstrip(".")
    if not signed or minutes == 0:
        return ("−" if minutes < 0 else "") + text
    return ("+" if minutes > 0 else "−") + text


def _name(entry: dict[str, Any], key: str, name_key: str) -> str:
    return str(entry.get(name_key) or short_hub(entry.get(key)))


def account_page_view(data: dict[str, Any]) -> dict[str, Any]:
    """What the account page shows, from ``Store.credit_account``."""
    history = []
    for line in data.get("history", []):
        state = "final" if line.get("final") else line.get("status", "")
        history.append({**line, "state": state, "tone": TONES.get(state, "none"),
                        "who": _name(line, "counterparty", "counterparty_name"),
                        "amount": _hours(int(line.get("signed_minutes", 0)), signed=True)})
    return {**data, "title": data.get("name") or short_hub(data.get("hub_id")),
            "balance": _hours(int(data.get("balance_minutes", 0))),
            "limit": _hours(int(data.get("limit_minutes", 0))),
            "available": _hours(int(data.get("available_minutes", 0))),
            "pending_out": _hours(int(data.get("pending_out_minutes", 0))),
            "pending_in": _hours(int(data.get("pending_in_minutes", 0))),
            "settle_minutes": int(data.get("settle_ms", 0)) // 60_000, "history": history}


def ledger_page_view(data: dict[str, Any]) -> dict[str, Any]:
    accounts = [{**a, "who": _name(a, "hub_id", "name"), "balance": _hours(int(a["balance_minutes"]), signed=True)}
                for a in data.get("accounts", [])]
    return {**data, "accounts": accounts, "limit": _hours(int(data.get("limit_minutes", 0))),
            "total": _hours(int(data.get("total_minutes", 0)))}


def fund_page_view(data: dict[str, Any]) -> dict[str, Any]:
    """What the fund page shows, from ``Store.fund_view``: amounts as money, names for hub ids."""
    currency = data.get("currency", "")

    def cash(minor: Any) -> str:
        return money(minor, currency)

    claims = []
    for c in data.get("claims", []):
        claims.append({**c, "tone": TONES.get(c.get("status", ""), "none"), "who": _name(c, "claimant",
                                                                                       "claimant_name"),
                       "amount_text": cash(c.get("amount")), "paid_text": cash(c.get("paid")),
                       "owed_text": cash(c.get("owed")),
                       "approvers": [{**a, "who": _name(a, "hub", "name")} for a in c.get("approvers", [])],
                       "shares": [{**s, "who": _name(s, "hub", "name"), "share_text": cash(s["share"]),
                                   "paid_text": cash(s["paid"]), "owed_text": cash(s["owed"])}
                                  for s in c.get("shares", [])],
                       "gifts": [{**g, "who": _name(g, "hub", "name"), "amount_text": cash(g["amount"])}
                                 for g in c.get("gifts", [])]})
    members = [{**m, "who": _name(m, "hub", "name"), "tone": TONES.get(m.get("state", ""), "none")}
               for m in data.get("members", [])]
    owed_by = [{**o, "who": _name(o, "hub", "name"), "owed_text": cash(o["owed"])} for o in data.get("owed_by", [])]
    return {**data, "claims": claims, "members": members, "owed_by": owed_by,
            "contribution_text": cash(data.get("contribution")), "monthly_text": cash(data.get("monthly_total")),
            "owed_text": cash(data.get("owed_total")), "author_who": _name(data, "author", "author_name")}


def _hub(text: str) -> bytes:
    from protocol import ProtocolError, parse_hub_id

    try:
        return parse_hub_id(text)
    except ProtocolError as exc:
        raise PageError(404, _("No such hub"), _("“%(text)s” is not a hub id (%(problem)s). Hub ids start with "
                                                 "hub_ and are 59 characters long.")
                        % {"text": text[:80], "problem": exc.message}) from None


def _fund_id(text: str) -> bytes:
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise PageError(404, _("No such fund"), _("“%(text)s” is not a fund id: ids are 64 characters of 0–9 "
                                                  "and a–f. Check the link, or see the list of funds.")
                        % {"text": text[:80]})
    return raw


async def ledger_page(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    data = await store.read(store.credit_accounts, request.app[NOW_KEY]())
    return await render(request, "credit.html", title=_("Time credits"), section="/credit",
                        ledger=ledger_page_view(data), icons=ICONS, tones=TONES)


async def account_page(request: web.Request) -> web.Response:
    hub = _hub(request.match_info["hub_id"])
    store = request.app[STORE_KEY]
    data = await store.read(store.credit_account, hub, request.app[NOW_KEY]())
    if data is None:
        raise PageError(404, _("Hub not found"), _("This hub is not in this hub's copy of the directory, and has "
                                                   "neither paid nor been paid time credits here."))
    account = account_page_view(data)
    return await render(request, "credit_account.html", title=account["title"], section="/credit",
                        account=account, icons=ICONS)


async def funds_page(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    funds = await store.read(store.fund_list, request.app[NOW_KEY]())
    rows = [{**f, "who": _name(f, "author", "author_name"), "contribution_text": money(f["contribution"],
                                                                                      f["currency"]),
             "owed_text": money(f["owed"], f["currency"])} for f in funds]
    return await render(request, "funds.html", title=_("Solidarity funds"), section="/funds", funds=rows)


async def fund_page(request: web.Request) -> web.Response:
    fund_id = _fund_id(request.match_info["id"])
    store = request.app[STORE_KEY]
    data = await store.read(store.fund_view, fund_id, request.app[NOW_KEY]())
    if data is None:
        raise PageError(404, _("Fund not found"), _("No solidarity fund with this id is on this hub. It may not "
                                                    "have reached this hub yet; see the list of funds."))
    fund = fund_page_view(data)
    return await render(request, "fund.html", title=fund["name"], section="/funds", fund=fund, icons=ICONS)


def setup(app: web.Application) -> None:
    """Add the mutual-aid pages to the hub's app (after ``hub.web.setup``)."""
    r = app.router
    r.add_get("/credit", ledger_page, name="credit")
    r.add_get("/credit/{hub_id}", account_page, name="credit_account")
    r.add_get("/funds", funds_page, name="funds")
    r.add_get("/funds/{id}", fund_page, name="fund")

