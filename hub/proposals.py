"""Reads for governance: the proposals list, one proposal with its result, a guide's reviews, the terms in force.

Every function takes a read connection (inside one read transaction) and hands the few stored records a view
needs to protocol's pure functions (proposal_result, amendment_state, review_state), so a hub never disagrees
with what any other implementation computes from the same records. JSON shapes are documented in docs/api.md.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from protocol import CharterTerms, Record, amendment_state, format_hub_id, proposal_result, review_state
from protocol.governance import Result, proposal_close
from protocol.jsonview import body_to_json, iso_ms, record_to_json

from .derive import load_charter, load_record, load_records
from .governance import amendments_in_force, current_terms

__all__ = [
    "Context", "DEFAULT_LIST", "MAX_LIST", "guide_reviews", "load_context", "newest_ballots", "proposal_result_for",
    "proposal_view", "proposals_list", "terms_json",
]

DEFAULT_LIST = 20
MAX_LIST = 100
#: Order of the proposals list: open first (closing soonest first), then those awaiting their close, then
#: closed ones (most recently closing first).
_STATUS_ORDER = {"open": 0, "closing": 1}


@dataclass(frozen=True)
class Context:
    """The records every result needs, loaded once per read: the charter, the amendments in force, and the
    records that make the electorate and the proxies."""

    charter: Record
    amendments: list[Any]
    endorsements: list[Record]
    delegations: list[Record]
    revocations: list[Record]  # of endorsements and delegations


def load_context(conn: sqlite3.Connection) -> Context | None:
    charter = load_charter(conn)
    if charter is None:
        return None
    return Context(
        charter, amendments_in_force(conn),
        load_records(conn, "SELECT raw, id FROM records WHERE kind = 'endorsement'"),
        load_records(conn, "SELECT raw, id FROM records WHERE kind = 'delegation'"),
        load_records(conn, "SELECT raw, id FROM records WHERE kind = 'revocation' AND ref IN "
                           "(SELECT id FROM records WHERE kind IN ('endorsement', 'delegation'))"))


def _related(conn: sqlite3.Connection, proposal_id: bytes, kind: str) -> list[Record]:
    return load_records(conn, "SELECT raw, id FROM records INDEXED BY records_ref WHERE ref = ? AND kind = ?",
                        (proposal_id, kind))


def newest_ballots(conn: sqlite3.Connection, proposal_id: bytes) -> list[Record]:
    """Each hub's newest ballot that can count (the ``ballots`` table, hub.governance): what the open rules of
    §6.9 pick from, so a live tally reads one ballot per voter however often members changed their vote."""
    return load_records(conn, "SELECT r.raw, r.id FROM ballots b JOIN records r ON r.id = b.id "
                              "WHERE b.proposal = ?", (proposal_id,))


def _named_ballots(conn: sqlite3.Connection, closes: list[Record]) -> list[Record]:
    named = sorted({b for c in closes for b in c.body["ballots"]})
    out: list[Record] = []
    for start in range(0, len(named), 500):
        chunk = named[start:start + 500]
        out += load_records(conn, f"SELECT raw, id FROM records WHERE id IN ({','.join('?' * len(chunk))}) "
                                  "AND kind = 'ballot'", chunk)
    return out


def proposal_result_for(conn: sqlite3.Connection, proposal: Record, now_ms: int, ctx: Context, *,
                        ignore_close: bool = False) -> Result:
    """protocol.proposal_result over what this hub stored for the proposal and ``ctx``: once closed, the
    ballots its closes name; else (or with ``ignore_close``, for the recount) each hub's newest ballot."""
    closes = [] if ignore_close else _related(conn, proposal.id, "proposal-close")
    closed = proposal_close(proposal, closes) is not None
    ballots = _named_ballots(conn, closes) if closed else newest_ballots(conn, proposal.id)
    return proposal_result(proposal, ctx.charter, amendments=ctx.amendments, ballots=ballots,
                           delegations=ctx.delegations, closes=closes, endorsements=ctx.endorsements,
                           revocations=ctx.revocations, now_ms=now_ms)


def _names(conn: sqlite3.Connection, hubs: set[bytes]) -> dict[bytes, str]:
    return {hub: name for hub in hubs for (name,) in conn.execute("SELECT name FROM profiles WHERE hub = ?",
                                                                     (hub,))}


def _summary(result: Result, names: dict[bytes, str]) -> dict[str, Any]:
    p = result.proposal
    body = p.body
    return {
        "id": p.id_hex, "title": body["title"], "author": p.author_id, "author_name": names.get(p.author),
        "created": iso_ms(p.created_ms), "closes": iso_ms(body["closes"]), "closes_ms": body["closes"],
        "rule": body["rule"], "quorum": body["quorum"], "quorum_of": body["quorum_of"],
        "amendment": "amendment" in body, "status": result.status, "outcome": result.outcome,
        "turnout": result.turnout, "voters": result.voters, "quorum_met": result.quorum_met,
    }


def proposals_list(conn: sqlite3.Connection, now_ms: int, limit: int = DEFAULT_LIST,
                   offset: int = 0) -> dict[str, Any]:
    """``{"results": [...], "total": N}``: open proposals first, closing soonest first; then those past their
    closing time awaiting the proposer's close; then closed ones, most recent first."""
    ctx = load_context(conn)
    total = int(conn.execute("SELECT count(*) FROM proposals").fetchone()[0])
    if ctx is None:
        return {"results": [], "total": total}
    limit = max(1, min(limit, MAX_LIST))
    # Order in SQL by what decides the status without a tally: open (closes > now) by closes ascending; past
    # the closing time without a close; closed, by closes descending.
    rows = conn.execute(
        "SELECT id FROM proposals ORDER BY CASE WHEN close_id IS NULL AND closes > ? THEN 0 "
        "WHEN close_id IS NULL THEN 1 ELSE 2 END, CASE WHEN close_id IS NULL AND closes > ? THEN closes "
        "ELSE -closes END, id LIMIT ? OFFSET ?", (now_ms, now_ms, limit, max(0, offset))).fetchall()
    proposals = [p for (pid,) in rows if (p := load_record(conn, pid)) is not None]
    results = [proposal_result_for(conn, p, now_ms, ctx) for p in proposals]
    names = _names(conn, {p.author for p in proposals})
    return {"results": [_summary(r, names) for r in results], "total": total}


def _vote_json(v: Any, names: dict[bytes, str]) -> dict[str, Any]:
    return {"hub": format_hub_id(v.hub), "name": names.get(v.hub), "class": v.cls, "weight": v.weight,
            "option": v.option, "ballot": v.ballot_id.hex(),
            "proxy": format_hub_id(v.proxy) if v.proxy is not None else None,
            "proxy_name": names.get(v.proxy) if v.proxy is not None else None,
            "delegation": v.delegation_id.hex() if v.delegation_id is not None else None}


def proposal_view(conn: sqlite3.Connection, proposal_id: bytes, now_ms: int) -> dict[str, Any] | None:
    """A proposal as JSON with its result: status, tallies raw and weighted, turnout, quorum, roll-call,
    close, amendment state and — once closed — a recount of what the open rule would have counted."""
    proposal = load_record(conn, proposal_id)
    ctx = load_context(conn)
    if proposal is None or proposal.kind != "proposal" or ctx is None:
        return None
    result = proposal_result_for(conn, proposal, now_ms, ctx)
    names = _names(conn, {proposal.author} | {v.hub for v in result.votes}
                   | {v.proxy for v in result.votes if v.proxy is not None})
    body = proposal.body
    base = result.voters if body["quorum_of"] == "members" else result.electorate_weight
    participating = result.turnout if body["quorum_of"] == "members" else result.turnout_weight
    out: dict[str, Any] = {
        **record_to_json(proposal), **_summary(result, names),
        "options": [{"option": t.option, "votes": t.votes, "weight": t.weight,
                     "motion": i == 0, "abstain": t.option == body.get("abstain"),
                     "objection": body["rule"] == "consent" and t.option == body.get("objection",
                                                                                       body["options"][-1])}
                    for i, t in enumerate(result.options)],
        "turnout_weight": result.turnout_weight, "electorate_weight": result.electorate_weight,
        "quorum": {"percent": body["quorum"], "of": body["quorum_of"], "needed": result.quorum_needed,
                   "participating": participating, "base": base, "met": result.quorum_met},
        "decision": {"rule": body["rule"], "for_weight": result.for_weight,
                     "decisive_weight": result.decisive_weight, "objections": result.objections},
        "roll_call": [_vote_json(v, names) for v in result.votes],
        "close_id": result.close.id_hex if result.close is not None else None,
        "amendment": None,
        "recount": None,
    }
    state = amendment_state(result, ctx.charter, ctx.amendments, ctx.endorsements, ctx.revocations)
    if state is not None:
        out["amendment"] = {"changes": body_to_json("proposal", {"amendment": body["amendment"]})["amendment"],
                            "state": state.state, "reason": state.reason}
    if result.close is not None:
        live = proposal_result_for(conn, proposal, now_ms, ctx, ignore_close=True)
        named = set(result.close.body["ballots"]) | set(result.close.body["delegations"])
        counted = set().union(*live.counted_ids())
        used = set().union(*result.counted_ids())
        out["recount"] = {"matches": counted == used and live.outcome == result.outcome,
                          "outcome": live.outcome,
                          "omitted": sorted(i.hex() for i in counted - named),
                          "not_counted": sorted(i.hex() for i in named - used)}
    return out


def guide_reviews(conn: sqlite3.Connection, guide: Record) -> dict[str, Any]:
    """``{"reviewed", "approvals": [{"hub", "name", "review"}], "needed"}`` for one guide version."""
    terms = current_terms(conn)
    if terms is None:
        return {"reviewed": False, "approvals": [], "needed": 0}
    reviews = load_records(conn, "SELECT raw, id FROM records INDEXED BY records_ref WHERE ref = ? "
                                 "AND kind = 'review'", (guide.id,))
    revocations = load_records(conn, "SELECT raw, id FROM records WHERE kind = 'revocation' AND ref IN "
                                     "(SELECT id FROM records INDEXED BY records_ref WHERE ref = ? "
                                     "AND kind = 'review')", (guide.id,))
    members = frozenset(hub for (hub,) in conn.execute("SELECT hub FROM members"))
    state = review_state(guide, reviews, revocations, members, terms.reviews_needed)
    names = _names(conn, set(state.approvals))
    return {"reviewed": state.reviewed, "needed": state.needed,
            "approvals": [{"hub": format_hub_id(h), "name": names.get(h), "review": r.hex()}
                          for h, r in zip(state.approvals, state.review_ids, strict=True)]}


def terms_json(terms: CharterTerms) -> dict[str, Any]:
    """The terms in force as JSON (hub ids as text): what ``coophub charter terms`` prints."""
    return {
        "name": terms.name, "since": iso_ms(terms.since_ms), "amended_by": [i.hex() for i in terms.amended_by],
        "endorsements_needed": terms.endorsements_needed,
        "classes": [{"name": n, "weight": w} for n, w in terms.classes.items()],
        "default_class": terms.default_class,
        "founder_classes": [{"hub": format_hub_id(h), "class": c} for h, c in terms.founder_classes.items()],
        "schemes": [{"id": s, "name": terms.scheme_names.get(s, s),
                     "assessors": sorted(format_hub_id(h) for h in hubs)} for s, hubs in terms.schemes.items()],
        "reviews_needed": terms.reviews_needed, "credit_limit_minutes": terms.credit_limit_minutes,
        "amendment_rule": terms.amendment_rule, "amendment_quorum": terms.amendment_quorum,
        "amendment_quorum_of": terms.amendment_quorum_of,
    }
