"""Local publish checks for the mutual-aid kinds (hub.publishing's CHECKS table; docs/protocol.md §6.6–§6.7).

From a peer, these records are stored whatever they say, and derived state ignores what has no effect (a
payment past the payer's limit is flagged, an approval of one's own claim does not count): refusing them would
make storage depend on arrival order. From this hub's own user they are mistakes, refused here with one line
that says what is wrong and how to fix it — a payment past the limit names the balance and the limit.
"""

from __future__ import annotations

import sqlite3
from typing import NoReturn

from protocol import Record, format_hub_id
from protocol.credit import hours_text
from protocol.fund import ClaimState, FundState

from .aid_queries import claim_context, credit_headroom, fund_state_of
from .opendata.validate import currency_problem

__all__ = ["AID_CHECKS"]


def _refuse(message: str, field: str, reason: str = "invalid") -> NoReturn:
    # Imported here: hub.publishing imports this module for its CHECKS table.
    from .publishing import PublishRefused

    raise PublishRefused(message, field=field, reason=reason)


def _name(conn: sqlite3.Connection, hub: bytes) -> str:
    row = conn.execute("SELECT name FROM profiles WHERE hub = ?", (hub,)).fetchone()
    return f"{row[0]} ({format_hub_id(hub)})" if row else format_hub_id(hub)


def _member(conn: sqlite3.Connection, hub: bytes) -> bool:
    return conn.execute("SELECT 1 FROM members WHERE hub = ?", (hub,)).fetchone() is not None


# -- time credits ------------------------------------------------------------------------------------------


def _credit_payment(conn: sqlite3.Connection, record: Record, now_ms: int) -> None:
    payee, minutes = record.body["payee"], record.body["minutes"]
    if payee == record.author:
        _refuse("a co-op cannot pay itself; give the hub id of the co-op you are paying", "payee")
    if not _member(conn, payee):
        _refuse(f"{_name(conn, payee)} is not a member of the association; time credits are paid to members "
                "only (check the id with `coophub search --kind hub`)", "payee")
    balance, pending, limit = credit_headroom(conn, record.author, now_ms)
    after = balance - pending - minutes
    if after < -limit:
        can = max(0, balance - pending + limit)
        waiting = f", {hours_text(pending)} h more not yet booked" if pending else ""
        _refuse(f"paying {hours_text(minutes)} h would take this hub to {hours_text(after)} h: its balance is "
                f"{hours_text(balance)} h{waiting} and the credit limit is -{hours_text(limit)} h; "
                f"pay at most {hours_text(can)} h", "minutes")


def _credit_receipt(conn: sqlite3.Connection, record: Record, now_ms: int) -> None:
    payment = record.body["payment"]
    row = conn.execute("SELECT payee, receipt FROM credit_payments WHERE id = ?", (payment,)).fetchone()
    if row is None:
        kind = conn.execute("SELECT kind FROM records WHERE id = ?", (payment,)).fetchone()
        if kind is not None:
            _refuse(f"{payment.hex()[:12]}… is a {kind[0]}, not a time-credit payment", "payment")
        _refuse(f"no time-credit payment {payment.hex()} on this hub; check the id with `coophub credit history`",
                "payment", "missing-reference")
    if row[0] != record.author:
        _refuse(f"only the payee books a payment; this one is to {_name(conn, row[0])}", "payment")
    if row[1] is not None:
        _refuse(f"this hub already booked payment {payment.hex()[:12]}… (receipt {row[1].hex()})", "payment",
                "duplicate")


# -- solidarity funds --------------------------------------------------------------------------------------


def _fund_of(conn: sqlite3.Connection, fund_id: bytes, now_ms: int) -> FundState:
    state = fund_state_of(conn, fund_id, now_ms)
    if state is None:
        kind = conn.execute("SELECT kind FROM records WHERE id = ?", (fund_id,)).fetchone()
        if kind is not None:
            _refuse(f"{fund_id.hex()[:12]}… is a {kind[0]}, not a fund", "fund")
        _refuse(f"no fund {fund_id.hex()} on this hub; list funds with `coophub fund list`", "fund",
                "missing-reference")
    return state


def _membership(state: FundState, hub: bytes) -> str | None:
    return next((m.state for m in state.members if m.hub == hub), None)


def _fund_join(conn: sqlite3.Connection, record: Record, now_ms: int) -> None:
    state = _fund_of(conn, record.body["fund"], now_ms)
    if not _member(conn, record.author):
        _refuse("only members of the association may join a fund; ask members to endorse this hub", "fund",
                "blocked")
    if _membership(state, record.author) == "member":
        _refuse(f"this hub is already a member of the fund {state.fund.body['name']!r}", "fund", "duplicate")


def _fund_leave(conn: sqlite3.Connection, record: Record, now_ms: int) -> None:
    state = _fund_of(conn, record.body["fund"], now_ms)
    current = next((m for m in state.members if m.hub == record.author), None)
    if current is None:
        _refuse(f"this hub is not a member of the fund {state.fund.body['name']!r}", "fund")
    if current.state == "leaving":
        _refuse("this hub has already given notice; it leaves the fund when the notice ends", "fund", "duplicate")


def _fund_claim(conn: sqlite3.Connection, record: Record, now_ms: int) -> None:
    state = _fund_of(conn, record.body["fund"], now_ms)
    name = state.fund.body["name"]
    if _membership(state, record.author) is None:
        _refuse(f"only members of the fund {name!r} may claim; join it with `coophub fund join`", "fund")
    others = len(state.members) - 1
    cap = state.fund.body["contribution"] * others
    if record.body["amount"] > cap:
        currency = state.fund.body["currency"]
        _refuse(f"a claim may ask at most one monthly contribution from each other member: "
                f"{others} × {_money(state.fund.body['contribution'])} = {_money(cap)} {currency}", "amount")


def _money(minor: int) -> str:
    return f"{minor // 100:,}.{minor % 100:02d}"


def _claim_of(conn: sqlite3.Connection, claim_id: bytes, now_ms: int) -> tuple[FundState, ClaimState]:
    found = claim_context(conn, claim_id, now_ms)
    if found is None:
        kind = conn.execute("SELECT kind FROM records WHERE id = ?", (claim_id,)).fetchone()
        if kind is not None:
            _refuse(f"{claim_id.hex()[:12]}… is a {kind[0]}, not a claim on a fund", "claim")
        _refuse(f"no claim {claim_id.hex()} on this hub; see the fund's claims with `coophub fund status`",
                "claim", "missing-reference")
    return found


def _fund_approval(conn: sqlite3.Connection, record: Record, now_ms: int) -> None:
    state, claim = _claim_of(conn, record.body["claim"], now_ms)
    if claim.claim.author == record.author:
        _refuse("a member cannot approve its own claim; other members approve it", "claim")
    if _membership(state, record.author) is None:
        _refuse(f"only members of the fund {state.fund.body['name']!r} may approve its claims", "claim")
    if claim.status in ("not-member", "over-capacity"):
        _refuse(f"this claim cannot be approved: it is {claim.status}", "claim")
    if any(a.hub == record.author for a in claim.approvals):
        _refuse("this hub has already approved this claim", "claim", "duplicate")


def _fund_payment(conn: sqlite3.Connection, record: Record, now_ms: int) -> None:
    state, claim = _claim_of(conn, record.body["claim"], now_ms)
    if claim.status not in ("approved", "paid"):
        needed = state.fund.body["approvals"]
        _refuse(f"this claim is not approved ({claim.status}: {len(claim.approvals)} of {needed} approvals); "
                "record a payment once it is approved", "claim")
    amount = claim.claim.body["amount"]
    if record.body["amount"] > amount:
        _refuse(f"{_money(record.body['amount'])} is more than the whole claim "
                f"({_money(amount)} {state.fund.body['currency']})", "amount")


def _fund(conn: sqlite3.Connection, record: Record, now_ms: int) -> None:
    problem = currency_problem(record.body["currency"])
    if problem is not None:
        _refuse(f"currency {problem}", "currency")


#: kind -> its checks, merged into hub.publishing.CHECKS.
AID_CHECKS = {
    "fund": (_fund,),
    "credit-payment": (_credit_payment,),
    "credit-receipt": (_credit_receipt,),
    "fund-join": (_fund_join,),
    "fund-leave": (_fund_leave,),
    "fund-claim": (_fund_claim,),
    "fund-approval": (_fund_approval,),
    "fund-payment": (_fund_payment,),
}
