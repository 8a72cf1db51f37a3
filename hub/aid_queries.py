"""Reads for mutual aid: a hub's time-credit account and history, every balance, and solidarity funds.

Time credits come from the ledger hub.derive keeps (credit_payments, credit_accounts: protocol.credit's rule,
replayed as receipts arrive); funds are computed when read with protocol.fund over the fund's own records (a
fund has tens of members and claims). Every function takes a read connection inside one read transaction.
Money stays in minor units and time in minutes; ``*_hours`` fields are for people (two decimals).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from protocol import Record, format_hub_id
from protocol.credit import hours_text
from protocol.fund import ClaimState, FundState, fund_state
from protocol.jsonview import iso_ms

from .derive import credit_limits, load_record, load_records

__all__ = [
    "HISTORY_LIMIT", "claim_context", "credit_account", "credit_accounts", "credit_headroom", "credit_limit",
    "fund_list", "fund_state_of", "fund_view",
]

#: Payments listed on a hub's account, newest first (the total is given too); a year of weekly payments
#: each way fits.
HISTORY_LIMIT = 200
#: Funds listed at most (an association of 50 co-ops has a handful).
FUNDS_LIMIT = 200


def _hours(minutes: int) -> float:
    return round(minutes / 60, 2)


def _names(conn: sqlite3.Connection, hubs: set[bytes]) -> dict[bytes, str]:
    out: dict[bytes, str] = {}
    for hub in hubs:
        row = conn.execute("SELECT name FROM profiles WHERE hub = ?", (hub,)).fetchone()
        if row is not None:
            out[hub] = row[0]
    return out


def _is_member(conn: sqlite3.Connection, hub: bytes) -> bool:
    return conn.execute("SELECT 1 FROM members WHERE hub = ?", (hub,)).fetchone() is not None


# -- time credits ------------------------------------------------------------------------------------------


def credit_limit(conn: sqlite3.Connection, now_ms: int) -> int:
    """The credit limit (minutes) in the charter's terms in force at ``now_ms``; 0 before the charter."""
    return credit_limits(conn)(now_ms)


def credit_headroom(conn: sqlite3.Connection, hub: bytes, now_ms: int) -> tuple[int, int, int]:
    """(balance, minutes of its own payments still pending, limit now) for the local publish check."""
    row = conn.execute("SELECT balance FROM credit_accounts WHERE hub = ?", (hub,)).fetchone()
    pending = conn.execute("SELECT coalesce(sum(minutes), 0) FROM credit_payments WHERE payer = ? AND "
                           "status = 'pending'", (hub,)).fetchone()[0]
    return (row[0] if row else 0), int(pending), credit_limit(conn, now_ms)


def _line(hub: bytes, row: tuple[Any, ...], memo: str, names: dict[bytes, str], now_ms: int,
          settle_ms: int) -> dict[str, Any]:
    pid, payer, payee, minutes, created_ms, receipt, booked_ms, status, limit, payer_balance = row
    out = payer == hub
    other = payee if out else payer
    return {
        "id": pid.hex(),
        "direction": "out" if out else "in",
        "counterparty": format_hub_id(other),
        "counterparty_name": names.get(other),
        "minutes": minutes,
        "hours": _hours(minutes),
        "signed_minutes": -minutes if out else minutes,
        "memo": memo,
        "created": iso_ms(created_ms),
        "booked": iso_ms(booked_ms) if booked_ms is not None else None,
        "receipt": receipt.hex() if receipt is not None else None,
        "status": status,
        "final": status == "stands" and now_ms >= booked_ms + settle_ms,
        "final_at": iso_ms(booked_ms + settle_ms) if status == "stands" else None,
        "limit_minutes": limit,
        "payer_balance_minutes": payer_balance,
    }


_COLUMNS = "id, payer, payee, minutes, created_ms, receipt, booked_ms, status, limit_minutes, payer_balance"


def credit_account(conn: sqlite3.Connection, hub: bytes, now_ms: int, settle_ms: int,
                   limit: int = HISTORY_LIMIT) -> dict[str, Any] | None:
    """A hub's balance, limit, pending payments, flag and history (newest first); None for a hub this hub
    knows nothing about."""
    account = conn.execute("SELECT balance, unstood_in, over_limit FROM credit_accounts WHERE hub = ?",
                           (hub,)).fetchone()
    rows = conn.execute(f"SELECT {_COLUMNS} FROM credit_payments INDEXED BY credit_payer WHERE payer = ? UNION ALL "
                        f"SELECT {_COLUMNS} FROM credit_payments INDEXED BY credit_payee WHERE payee = ? "
                        "ORDER BY created_ms DESC, id LIMIT ?", (hub, hub, max(0, limit))).fetchall()
    member = _is_member(conn, hub)
    known = account is not None or rows or member
    if not known and conn.execute("SELECT 1 FROM profiles WHERE hub = ?", (hub,)).fetchone() is None:
        return None
    total = conn.execute("SELECT (SELECT count(*) FROM credit_payments WHERE payer = ?) + "
                         "(SELECT count(*) FROM credit_payments WHERE payee = ?)", (hub, hub)).fetchone()[0]
    memos = {r.id: r.body["memo"] for r in load_records(
        conn, f"SELECT raw, id FROM records WHERE id IN ({','.join('?' * len(rows))})", [r[0] for r in rows])
        } if rows else {}
    names = _names(conn, {hub} | {r[1] for r in rows} | {r[2] for r in rows})
    balance, unstood, over = account if account is not None else (0, 0, 0)
    _, pending_out, limit_now = credit_headroom(conn, hub, now_ms)
    pending_in = conn.execute("SELECT coalesce(sum(minutes), 0) FROM credit_payments WHERE payee = ? AND "
                              "status = 'pending'", (hub,)).fetchone()[0]
    available = balance + limit_now - pending_out
    return {
        "hub_id": format_hub_id(hub),
        "name": names.get(hub),
        "member": member,
        "balance_minutes": balance,
        "balance_hours": _hours(balance),
        "balance_text": hours_text(balance),
        "limit_minutes": limit_now,
        "limit_hours": _hours(limit_now),
        "available_minutes": available,
        "available_hours": _hours(available),
        "pending_out_minutes": pending_out,
        "pending_in_minutes": int(pending_in),
        "unstood_in_minutes": unstood,
        "over_limit": over,
        "flagged": over > 0,
        "settle_ms": settle_ms,
        "history": [_line(hub, r, memos.get(r[0], ""), names, now_ms, settle_ms) for r in rows],
        "history_total": int(total),
    }


def credit_accounts(conn: sqlite3.Connection, now_ms: int) -> dict[str, Any]:
    """Every hub's balance (members, and any hub that paid or was paid), and the ledger's totals."""
    rows = {hub: (balance, over) for hub, balance, over in
            conn.execute("SELECT hub, balance, over_limit FROM credit_accounts")}
    members = {hub for (hub,) in conn.execute("SELECT hub FROM members")}
    names = _names(conn, set(rows) | members)
    pending = conn.execute("SELECT count(*), coalesce(sum(minutes), 0) FROM credit_payments "
                           "WHERE status = 'pending'").fetchone()
    counts = dict(conn.execute("SELECT status, count(*) FROM credit_payments GROUP BY status").fetchall())
    accounts = []
    for hub in sorted(set(rows) | members, key=lambda h: (names.get(h, "~").lower(), h)):
        balance, over = rows.get(hub, (0, 0))
        accounts.append({"hub_id": format_hub_id(hub), "name": names.get(hub), "member": hub in members,
                         "balance_minutes": balance, "balance_hours": _hours(balance),
                         "over_limit": over, "flagged": over > 0})
    limit = credit_limit(conn, now_ms)
    return {
        "accounts": accounts,
        "total_minutes": sum(balance for balance, _ in rows.values()),
        "limit_minutes": limit,
        "limit_hours": _hours(limit),
        "flagged": [a["hub_id"] for a in accounts if a["flagged"]],
        "payments": {status: int(counts.get(status, 0)) for status in ("stands", "pending", "over-limit",
                                                                      "unfunded")},
        "pending_minutes": int(pending[1]),
    }


# -- solidarity funds --------------------------------------------------------------------------------------


def _referring(conn: sqlite3.Connection, ids: list[bytes], kinds: tuple[str, ...]) -> list[Record]:
    out: list[Record] = []
    marks = ",".join("?" * len(kinds))
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        out += load_records(conn, f"SELECT raw, id FROM records INDEXED BY records_ref WHERE ref IN "
                                  f"({','.join('?' * len(chunk))}) AND kind IN ({marks})", [*chunk, *kinds])
    return out


def fund_state_of(conn: sqlite3.Connection, fund_id: bytes, now_ms: int) -> FundState | None:
    """protocol.fund.fund_state over the fund's stored records; None if ``fund_id`` is not a stored fund."""
    fund = load_record(conn, fund_id)
    if fund is None or fund.kind != "fund":
        return None
    direct = _referring(conn, [fund_id], ("fund-join", "fund-leave", "fund-claim"))
    claims = [r for r in direct if r.kind == "fund-claim"]
    second = _referring(conn, [c.id for c in claims], ("fund-approval", "fund-payment"))
    return fund_state(fund, [r for r in direct if r.kind == "fund-join"],
                      [r for r in direct if r.kind == "fund-leave"], claims,
                      [r for r in second if r.kind == "fund-approval"],
                      [r for r in second if r.kind == "fund-payment"], now_ms)


def claim_context(conn: sqlite3.Connection, claim_id: bytes, now_ms: int) -> tuple[FundState, ClaimState] | None:
    """The fund a claim belongs to and the claim's state; None if ``claim_id`` is not a stored claim."""
    claim = load_record(conn, claim_id)
    if claim is None or claim.kind != "fund-claim":
        return None
    state = fund_state_of(conn, claim.body["fund"], now_ms)
    if state is None:
        return None
    return state, next(c for c in state.claims if c.claim.id == claim_id)


def _claim_json(c: ClaimState, names: dict[bytes, str]) -> dict[str, Any]:
    def who(hub: bytes) -> dict[str, Any]:
        return {"hub": format_hub_id(hub), "name": names.get(hub)}

    return {
        "id": c.claim.id_hex,
        "claimant": format_hub_id(c.claim.author),
        "claimant_name": names.get(c.claim.author),
        "amount": c.claim.body["amount"],
        "reason": c.claim.body["reason"],
        "created": iso_ms(c.claim.created_ms),
        "status": c.status,
        "approvals": len(c.approvals),
        "approvers": [{**who(a.hub), "id": a.record.hex(), "created": iso_ms(a.created_ms)} for a in c.approvals],
        "approved": iso_ms(c.approved_ms) if c.approved_ms is not None else None,
        "shares": [{**who(s.hub), "share": s.share, "paid": s.paid, "owed": s.owed} for s in c.shares],
        "gifts": [{**who(hub), "amount": n} for hub, n in c.gifts.items()],
        "paid": c.paid,
        "owed": c.owed,
    }


def fund_view(conn: sqlite3.Connection, fund_id: bytes, now_ms: int) -> dict[str, Any] | None:
    """A fund with its members, claims (approvals, shares, payments, what is owed) and who owes what."""
    state = fund_state_of(conn, fund_id, now_ms)
    if state is None:
        return None
    fund, body = state.fund, state.fund.body
    hubs = {fund.author} | {m.hub for m in state.members}
    for c in state.claims:
        hubs |= {c.claim.author} | {a.hub for a in c.approvals} | {s.hub for s in c.shares} | set(c.gifts)
    names = _names(conn, hubs)
    owed_by: dict[bytes, int] = {}
    for c in state.claims:
        for s in c.shares:
            if s.owed:
                owed_by[s.hub] = owed_by.get(s.hub, 0) + s.owed
    return {
        "id": fund.id_hex,
        "name": body["name"],
        "description": body.get("description"),
        "author": fund.author_id,
        "author_name": names.get(fund.author),
        "created": iso_ms(fund.created_ms),
        "currency": body["currency"],
        "contribution": body["contribution"],
        "approvals_needed": body["approvals"],
        "notice_days": body["notice_days"],
        "members": [{"hub": format_hub_id(m.hub), "name": names.get(m.hub), "state": m.state,
                     "since": iso_ms(m.since_ms),
                     "leaving": iso_ms(m.leaving_ms) if m.leaving_ms is not None else None}
                    for m in state.members],
        "monthly_total": body["contribution"] * len(state.members),
        "claims": [_claim_json(c, names) for c in state.claims],
        "owed_total": sum(owed_by.values()),
        "owed_by": [{"hub": format_hub_id(h), "name": names.get(h), "owed": n}
                    for h, n in sorted(owed_by.items(), key=lambda item: (-item[1], item[0]))],
    }


def fund_list(conn: sqlite3.Connection, now_ms: int) -> list[dict[str, Any]]:
    """Every fund, newest first, with its member count and its open and owing claims."""
    funds = load_records(conn, "SELECT raw, id FROM records WHERE kind = 'fund' ORDER BY created_ms DESC, id "
                               "LIMIT ?", (FUNDS_LIMIT,))
    out = []
    for fund in funds:
        state = fund_state_of(conn, fund.id, now_ms)
        assert state is not None
        names = _names(conn, {fund.author})
        out.append({"id": fund.id_hex, "name": fund.body["name"], "author": fund.author_id,
                    "author_name": names.get(fund.author), "created": iso_ms(fund.created_ms),
                    "currency": fund.body["currency"], "contribution": fund.body["contribution"],
                    "approvals_needed": fund.body["approvals"], "members": len(state.members),
                    "open_claims": sum(c.status == "open" for c in state.claims),
                    "owed": sum(c.owed for c in state.claims)})
    return out
