"""Mutual-aid commands: time credits (``credit pay|balance|history|accept``) and solidarity funds (``fund
create|join|leave|claim|approve|paid|status|list``). docs/cli.md describes each; docs/protocol.md §6.6–§6.7 the
rules.

Publishing commands go through :func:`cli.common.publish` (the running hub's API when it runs, else the store)
and print the new record's id; the local checks of hub.aid_checks refuse mistakes with one line — a payment past
the credit limit names the balance and the limit.
"""

from __future__ import annotations

import argparse
from typing import Any

from protocol.credit import hours_text, minutes_from_hours
from protocol.kinds import MAX_CREDIT_MINUTES

from .common import home_from, now_ms, open_store, parse_hub, parse_money, parse_record_id, print_id, publish
from .output import CliError, emit, emit_json, kv, short, table

__all__ = ["add_parsers"]

_STATUS_WORDS = {"stands": "booked", "pending": "pending", "over-limit": "OVER LIMIT", "unfunded": "unfunded"}


def _money(minor: int, currency: str) -> str:
    return f"{minor // 100:,}.{minor % 100:02d} {currency}"


# -- time credits ------------------------------------------------------------------------------------------


def _minutes(text: str) -> int:
    if text.strip().startswith("-"):
        raise CliError(f"HOURS: {text.strip()} is negative", "pay a positive number of hours, e.g. 1.5", code=2)
    try:
        minutes = minutes_from_hours(text)
    except ValueError as exc:
        raise CliError(f"HOURS: {exc}", "write hours as a number such as 2 or 1.5 (whole minutes)", code=2) from None
    if minutes < 1:
        raise CliError("HOURS: a payment is at least one minute", "write e.g. 0.5 for half an hour", code=2)
    if minutes > MAX_CREDIT_MINUTES:
        raise CliError(f"HOURS: {text} hours is more than one payment may carry ({hours_text(MAX_CREDIT_MINUTES)})",
                       "pay a smaller number of hours", code=2)
    return minutes


def cmd_credit_pay(args: argparse.Namespace) -> int:
    home = home_from(args)
    body = {"payee": parse_hub(args.hub_id), "minutes": _minutes(args.hours), "memo": args.memo}
    record_id = publish(home, "credit-payment", body)
    if not args.json:
        emit(record_id)
        emit(f"paid {hours_text(body['minutes'])} h; it counts once {short(args.hub_id.strip(), 24)} books it "
             "(its hub does so as soon as it holds the payment)")
        return 0
    return print_id(args, record_id, minutes=body["minutes"])


def _account(args: argparse.Namespace) -> dict[str, Any]:
    home = home_from(args)
    hub = parse_hub(args.hub_id) if args.hub_id else home.key.public
    with open_store(home) as store:
        view = store.credit_account(hub, now_ms())
    if view is None:
        raise CliError(f"no hub {args.hub_id.strip()} in this hub's directory", "check the id, or wait for sync")
    return view


def cmd_credit_balance(args: argparse.Namespace) -> int:
    view = _account(args)
    if args.json:
        emit_json({k: v for k, v in view.items() if k != "history"})
        return 0
    kv([
        ("hub", view["hub_id"]),
        ("name", view.get("name")),
        ("balance", f"{hours_text(view['balance_minutes'])} h"),
        ("limit", f"down to -{hours_text(view['limit_minutes'])} h"),
        ("can still pay", f"{hours_text(view['available_minutes'])} h"),
        ("paid, not booked", f"{hours_text(view['pending_out_minutes'])} h" if view["pending_out_minutes"] else None),
        ("received, not booked", f"{hours_text(view['pending_in_minutes'])} h" if view["pending_in_minutes"]
         else None),
        ("FLAGGED", f"{view['over_limit']} payment(s) beyond its credit limit" if view["flagged"] else None),
    ])
    return 0


def cmd_credit_history(args: argparse.Namespace) -> int:
    view = _account(args)
    if args.json:
        emit_json({"hub_id": view["hub_id"], "history": view["history"], "history_total": view["history_total"]})
        return 0
    if not view["history"]:
        emit("no payments yet")
        return 0

    def row(line: dict[str, Any]) -> list[str]:
        state = "final" if line["final"] else _STATUS_WORDS.get(line["status"], line["status"])
        sign = "-" if line["direction"] == "out" else "+"
        who = line.get("counterparty_name") or line["counterparty"]
        return [line["created"][:16].replace("T", " "), f"{'to' if sign == '-' else 'from'} {short(who, 30)}",
                f"{sign}{hours_text(line['minutes'])}", state, short(line["memo"], 40), line["id"]]

    table(("signed (UTC)", "with", "hours", "status", "memo", "id"), (row(line) for line in view["history"]))
    emit(f"balance {hours_text(view['balance_minutes'])} h; {len(view['history'])} of {view['history_total']} "
         "payments shown")
    return 0


def cmd_credit_accept(args: argparse.Namespace) -> int:
    home = home_from(args)
    if args.payment_id:
        ids = [parse_record_id(args.payment_id, "payment id")]
    else:
        with open_store(home) as store:
            ids = store.unbooked_payments(home.key.public, 10_000)
    booked = [publish(home, "credit-receipt", {"payment": pid}) for pid in ids]
    if args.json:
        emit_json({"receipts": booked, "payments": [pid.hex() for pid in ids]})
    else:
        emit(f"booked {len(booked)} payment(s)" if booked else "no payments to this hub are waiting to be booked")
    return 0


# -- solidarity funds --------------------------------------------------------------------------------------


def cmd_fund_create(args: argparse.Namespace) -> int:
    home = home_from(args)
    body: dict[str, Any] = {
        "name": args.name,
        "contribution": parse_money(args.contribution, "--contribution"),
        "currency": args.currency.strip().upper(),
        "approvals": args.approvals,
        "notice_days": args.notice_days,
    }
    if args.description:
        body["description"] = args.description
    return print_id(args, publish(home, "fund", body))


def _fund_record(args: argparse.Namespace, kind: str) -> int:
    home = home_from(args)
    return print_id(args, publish(home, kind, {"fund": parse_record_id(args.fund_id, "fund id")}))


def cmd_fund_join(args: argparse.Namespace) -> int:
    return _fund_record(args, "fund-join")


def cmd_fund_leave(args: argparse.Namespace) -> int:
    return _fund_record(args, "fund-leave")


def cmd_fund_claim(args: argparse.Namespace) -> int:
    home = home_from(args)
    body = {"fund": parse_record_id(args.fund_id, "fund id"), "amount": parse_money(args.amount, "--amount"),
            "reason": args.reason}
    return print_id(args, publish(home, "fund-claim", body))


def cmd_fund_approve(args: argparse.Namespace) -> int:
    home = home_from(args)
    return print_id(args, publish(home, "fund-approval", {"claim": parse_record_id(args.claim_id, "claim id")}))


def cmd_fund_paid(args: argparse.Namespace) -> int:
    home = home_from(args)
    body: dict[str, Any] = {"claim": parse_record_id(args.claim_id, "claim id"),
                            "amount": parse_money(args.amount, "--amount")}
    if args.reference:
        body["reference"] = args.reference
    return print_id(args, publish(home, "fund-payment", body))


def cmd_fund_status(args: argparse.Namespace) -> int:
    home = home_from(args)
    fund_id = parse_record_id(args.fund_id, "fund id")
    with open_store(home) as store:
        view = store.fund_view(fund_id, now_ms())
    if view is None:
        raise CliError(f"no fund {fund_id.hex()} on this hub", "list funds with `coophub fund list`")
    if args.json:
        emit_json(view)
        return 0
    cur = view["currency"]
    kv([("fund", view["name"]), ("id", view["id"]), ("started by", view.get("author_name") or view["author"]),
        ("contribution", f"{_money(view['contribution'], cur)} a month per member"),
        ("approvals", f"{view['approvals_needed']} members other than the claimant"),
        ("notice", f"{view['notice_days']} days"), ("still owed", _money(view["owed_total"], cur))])
    table(("member", "since", "status"),
          ([m.get("name") or m["hub"], m["since"][:10], m["state"] + (f" until {m['leaving'][:10]}" if m["leaving"]
                                                                       else "")] for m in view["members"]),
          title="members")
    if view["claims"]:
        table(("claim", "by", "amount", "status", "approvals", "paid", "owed"),
              ([c["id"], short(c.get("claimant_name") or c["claimant"], 30), _money(c["amount"], cur), c["status"],
                f"{c['approvals']}/{view['approvals_needed']}", _money(c["paid"], cur), _money(c["owed"], cur)]
               for c in view["claims"]), title="claims")
    if view["owed_by"]:
        table(("member", "owes"), ([o.get("name") or o["hub"], _money(o["owed"], cur)] for o in view["owed_by"]),
              title="still owed")
    return 0


def cmd_fund_list(args: argparse.Namespace) -> int:
    home = home_from(args)
    with open_store(home) as store:
        funds = store.fund_list(now_ms())
    if args.json:
        emit_json({"funds": funds})
        return 0
    if not funds:
        emit("no funds yet — start one with `coophub fund create`")
        return 0
    table(("fund", "members", "contribution", "open claims", "owed", "id"),
          ([short(f["name"], 40), f["members"], _money(f["contribution"], f["currency"]), f["open_claims"],
            _money(f["owed"], f["currency"]), f["id"]] for f in funds))
    return 0


# -- parsers -----------------------------------------------------------------------------------------------


def _approvals(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError("must be from 1 to 100")
    return value


def _days(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days") from None
    if not 0 <= value <= 366:
        raise argparse.ArgumentTypeError("must be from 0 to 366 days")
    return value


def _add(sub: Any, common: argparse.ArgumentParser, name: str, help_text: str, description: str) -> Any:
    return sub.add_parser(name, parents=[common], help=help_text, description=description)


def _credit_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    credit = sub.add_parser("credit", help="time credits between co-ops (pay, balance, history)",
                            description="Time credits: co-ops pay each other hours for help given.")
    csub = credit.add_subparsers(dest="credit_command", required=True, metavar="COMMAND")
    p = _add(csub, common, "pay", "pay another co-op hours; prints the payment's id",
             "Pay a member co-op hours for help given. It counts once the payee's hub books it; a payment that "
             "would take this hub below its credit limit is refused.")
    p.add_argument("hub_id", metavar="HUB_ID", help="the co-op paid")
    p.add_argument("hours", metavar="HOURS", help="hours, e.g. 2 or 1.5 (whole minutes)")
    p.add_argument("--memo", required=True, help="what the hours are for, e.g. 'Cover for two night shifts'")
    p.set_defaults(func=cmd_credit_pay)
    p = _add(csub, common, "balance", "a co-op's balance and credit limit (default: this hub)",
             "A co-op's time-credit balance, its credit limit, what it can still pay and whether it is flagged.")
    p.add_argument("hub_id", metavar="HUB_ID", nargs="?", help="the co-op (default: this hub)")
    p.set_defaults(func=cmd_credit_balance)
    p = _add(csub, common, "history", "a co-op's payments, newest first (default: this hub)",
             "A co-op's time-credit payments, newest first, with the status of each: pending, booked, final, "
             "over the limit or unfunded.")
    p.add_argument("hub_id", metavar="HUB_ID", nargs="?", help="the co-op (default: this hub)")
    p.set_defaults(func=cmd_credit_history)
    p = _add(csub, common, "accept", "book payments made to this hub (a running hub does it by itself)",
             "Sign receipts that book payments made to this hub: one payment, or every one not booked yet. A "
             "running hub books payments to it as soon as it holds them.")
    p.add_argument("payment_id", metavar="PAYMENT_ID", nargs="?", help="one payment (default: all waiting)")
    p.set_defaults(func=cmd_credit_accept)


def _fund_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    fund = sub.add_parser("fund", help="solidarity funds (create, join, claim, approve, paid, status)",
                          description="Solidarity funds: members pool risk with a monthly contribution.")
    fsub = fund.add_subparsers(dest="fund_command", required=True, metavar="COMMAND")
    p = _add(fsub, common, "create", "start a fund; this hub is its first member",
             "Start a solidarity fund: its name, the monthly contribution per member, the currency, how many "
             "approvals a claim needs and the notice period for leaving.")
    p.add_argument("--name", required=True, help="the fund's name")
    p.add_argument("--contribution", required=True, metavar="AMOUNT", help="per member per month, e.g. 25.00")
    p.add_argument("--currency", required=True, metavar="C", help="ISO 4217 code, e.g. GBP")
    p.add_argument("--approvals", required=True, type=_approvals, metavar="K",
                   help="members other than the claimant who must approve a claim (1-100)")
    p.add_argument("--notice-days", type=_days, default=30, metavar="D",
                   help="days between giving notice and leaving (default 30)")
    p.add_argument("--description", help="what the fund is for")
    p.set_defaults(func=cmd_fund_create)
    for name, func, help_text, description in (
            ("join", cmd_fund_join, "join a fund", "Join a solidarity fund as a member."),
            ("leave", cmd_fund_leave, "give notice to leave a fund",
             "Give notice to leave a fund: this hub stays a member until the notice period ends.")):
        p = _add(fsub, common, name, help_text, description)
        p.add_argument("fund_id", metavar="FUND_ID", help="the fund's id")
        p.set_defaults(func=func)
    p = _add(fsub, common, "claim", "claim from a fund; prints the claim's id",
             "Claim an amount from a fund, with the reason; other members approve it.")
    p.add_argument("fund_id", metavar="FUND_ID", help="the fund's id")
    p.add_argument("--amount", required=True, metavar="A", help="the amount, e.g. 400.00")
    p.add_argument("--reason", required=True, help="why the co-op needs it")
    p.set_defaults(func=cmd_fund_claim)
    p = _add(fsub, common, "approve", "approve another member's claim",
             "Approve a claim by another member of the fund (a member cannot approve its own).")
    p.add_argument("claim_id", metavar="CLAIM_ID", help="the claim's id")
    p.set_defaults(func=cmd_fund_approve)
    p = _add(fsub, common, "paid", "record what this hub paid toward an approved claim",
             "Record a payment this hub made (by bank transfer) toward an approved claim.")
    p.add_argument("claim_id", metavar="CLAIM_ID", help="the claim's id")
    p.add_argument("--amount", required=True, metavar="A", help="the amount paid, e.g. 50.00")
    p.add_argument("--reference", help="the bank transfer's reference")
    p.set_defaults(func=cmd_fund_paid)
    p = _add(fsub, common, "status", "a fund's members, claims and what is owed",
             "A fund's terms, members, claims (status, approvals, paid, owed) and who still owes what.")
    p.add_argument("fund_id", metavar="FUND_ID", help="the fund's id")
    p.set_defaults(func=cmd_fund_status)
    p = _add(fsub, common, "list", "the association's funds", "Every solidarity fund this hub holds.")
    p.set_defaults(func=cmd_fund_list)


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register ``coophub credit …`` and ``coophub fund …``."""
    _credit_parsers(sub, common)
    _fund_parsers(sub, common)
