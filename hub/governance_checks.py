"""Local publish checks for the governance kinds (hub.publishing's CHECKS table).

From a peer, a ballot after the closing time, by a non-member or a weight-0 associate, for an unknown option,
a delegation to oneself, a close by someone else or before the closing time, a self-review — all are stored
and have no effect (docs/protocol.md §6.9). A member who *asks* to publish one has made a mistake, so this hub
refuses it with one line saying what is wrong and what to do, before anything is signed or stored.
"""

from __future__ import annotations

import sqlite3

from protocol import Record, format_hub_id, membership, terms_at
from protocol.charter import Amendment
from protocol.jsonview import iso_ms

from .derive import load_record
from .governance import current_terms
from .proposals import Context, load_context, proposal_result_for

__all__ = ["CHECKS"]


def _refused(message: str, field: str, reason: str = "invalid") -> Exception:
    from .publishing import PublishRefused  # hub.publishing imports this module for its table

    return PublishRefused(message, field=field, reason=reason)


def _context(conn: sqlite3.Connection) -> Context:
    ctx = load_context(conn)
    if ctx is None:
        raise _refused("this hub has no charter yet; join an association first", "association",
                       "missing-reference")
    return ctx


def _proposal(conn: sqlite3.Connection, proposal_id: bytes, field: str) -> Record:
    proposal = load_record(conn, proposal_id)
    if proposal is None:
        raise _refused(f"no proposal {proposal_id.hex()} on this hub; check the id with `coophub proposals`",
                       field, "missing-reference")
    if proposal.kind != "proposal":
        raise _refused(f"{proposal_id.hex()[:12]}… is a {proposal.kind}, not a proposal", field)
    return proposal


def _electorate_weight(conn: sqlite3.Connection, ctx: Context, hub: bytes, proposal: Record) -> tuple[str, int]:
    """(class, weight) of ``hub`` in the electorate of ``proposal`` as this hub's records stand."""
    result = proposal_result_for(conn, proposal, proposal.body["closes"], ctx, ignore_close=True)
    m = result.electorate
    if not m.is_member(hub):
        raise _refused(f"{format_hub_id(hub)} is not a member of the association, so it cannot vote or hold "
                       "a proxy; members are admitted by endorsements", "author", "blocked")
    cls = m.class_of(hub) or ""
    return cls, m.weight(hub)


def _ballot(conn: sqlite3.Connection, record: Record, now_ms: int) -> None:
    proposal = _proposal(conn, record.body["proposal"], "proposal")
    closes = proposal.body["closes"]
    if record.created_ms >= closes:
        raise _refused(f"voting closed at {iso_ms(closes)}; a ballot after the closing time does not count",
                       "proposal")
    options = proposal.body["options"]
    if record.body["option"] not in options:
        raise _refused(f"{record.body['option']!r} is not an option of this proposal; the options are: "
                       f"{', '.join(options)}", "option")
    cls, weight = _electorate_weight(conn, _context(conn), record.author, proposal)
    if weight == 0:
        raise _refused(f"this hub's class {cls!r} has vote weight 0: associates take part but do not vote",
                       "author")


def _delegation(conn: sqlite3.Connection, record: Record, now_ms: int) -> None:
    to = record.body["to"]
    if to == record.author:
        raise _refused("a hub cannot delegate its vote to itself; name another member's hub id", "to")
    ctx = _context(conn)
    terms = current_terms(conn, ctx.charter)
    assert terms is not None
    m = membership(ctx.charter, ctx.endorsements, ctx.revocations, terms=terms)
    if "proposal" in record.body:
        proposal = _proposal(conn, record.body["proposal"], "proposal")
        if record.created_ms >= proposal.body["closes"]:
            raise _refused(f"voting on that proposal closed at {iso_ms(proposal.body['closes'])}", "proposal")
    for hub, who, field in ((record.author, "this hub", "author"), (to, format_hub_id(to), "to")):
        if not m.is_member(hub):
            raise _refused(f"{who} is not a member: only members vote or hold proxies", field, "blocked")
        if m.weight(hub) == 0:
            raise _refused(f"{who} is a non-voting associate (class {m.class_of(hub)!r}, weight 0): it can "
                           "neither give nor hold a proxy", field)


def _close(conn: sqlite3.Connection, record: Record, now_ms: int) -> None:
    proposal = _proposal(conn, record.body["proposal"], "proposal")
    if proposal.author != record.author:
        raise _refused(f"only the proposer can close a proposal; it was made by {proposal.author_id}",
                       "proposal")
    closes = proposal.body["closes"]
    if record.created_ms < closes:
        raise _refused(f"voting is open until {iso_ms(closes)}; close the proposal after that", "proposal")
    ctx = _context(conn)
    if proposal_result_for(conn, proposal, now_ms, ctx).close is not None:
        raise _refused("this proposal is already closed", "proposal", "duplicate")
    ballots, delegations = proposal_result_for(conn, proposal, closes, ctx, ignore_close=True).counted_ids()
    if set(record.body["ballots"]) != ballots or set(record.body["delegations"]) != delegations:
        raise _refused(f"a close names exactly the {len(ballots)} ballot(s) and {len(delegations)} "
                       "delegation(s) the tally counts; use `coophub close-proposal`, which names them",
                       "ballots")


def _review(conn: sqlite3.Connection, record: Record, now_ms: int) -> None:
    guide = load_record(conn, record.body["guide"])
    if guide is None or guide.kind != "guide":
        raise _refused(f"no guide {record.body['guide'].hex()} on this hub; check the id with "
                       "`coophub search --kind guide`", "guide", "missing-reference")
    if guide.author == record.author:
        raise _refused("a hub cannot review its own guide; other members review it", "guide")
    done = conn.execute(
        "SELECT lower(hex(v.id)) FROM records v WHERE v.kind = 'review' AND v.author = ? AND v.ref = ? "
        "AND NOT EXISTS (SELECT 1 FROM records r WHERE r.kind = 'revocation' AND r.ref = v.id "
        "AND r.author = v.author)", (record.author, guide.id)).fetchone()
    if done is not None:
        raise _refused(f"this hub already approved this version (review {done[0]})", "guide", "duplicate")


def _proposal_terms(conn: sqlite3.Connection, record: Record, now_ms: int) -> None:
    body = record.body
    if body["closes"] <= record.created_ms:
        raise _refused(f"the closing time {iso_ms(body['closes'])} is not in the future; give a later --closes",
                       "closes")
    if "amendment" not in body:
        return
    ctx = _context(conn)
    terms = terms_at(ctx.charter, ctx.amendments, body["closes"] - 1)
    rule = f"{terms.amendment_rule} with a quorum of {terms.amendment_quorum}% of {terms.amendment_quorum_of}"
    if (body["rule"] != terms.amendment_rule or body["quorum"] < terms.amendment_quorum
            or body["quorum_of"] != terms.amendment_quorum_of):
        raise _refused(f"the charter is amended by {rule}; propose with --rule {terms.amendment_rule} "
                       f"--quorum {terms.amendment_quorum} --quorum-of {terms.amendment_quorum_of} (or stricter "
                       "quorum)", "rule")
    new = terms_at(ctx.charter, [*ctx.amendments, Amendment(body["closes"], record.id, body["amendment"])],
                   body["closes"])
    after = membership(ctx.charter, ctx.endorsements, ctx.revocations, terms=new)
    if not after.voters:
        raise _refused("these terms would leave no voting member (every member's class would have weight 0), "
                       "so nobody could amend the charter again", "amendment")
    unknown = sorted({c for c in new.founder_classes.values() if c not in new.classes})
    if unknown:
        raise _refused(f"founder class {unknown[0]!r} is not among the classes: "
                       f"{', '.join(new.classes)}", "amendment")


def _endorsement_class(conn: sqlite3.Connection, record: Record, now_ms: int) -> None:
    cls = record.body.get("class")
    terms = current_terms(conn)
    if cls is not None and terms is not None and cls not in terms.classes:
        raise _refused(f"{cls!r} is not a class of this association; its classes are: "
                       f"{', '.join(terms.classes)}", "class")


#: kind -> checks, merged into hub.publishing.CHECKS.
CHECKS = {
    "proposal": (_proposal_terms,),
    "ballot": (_ballot,),
    "delegation": (_delegation,),
    "proposal-close": (_close,),
    "review": (_review,),
    "endorsement": (_endorsement_class,),
}
