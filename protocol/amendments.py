"""Charter amendments adopted by the members, and what they change (docs/protocol.md §6.10).

A proposal that carries an ``amendment`` (new values for some of the charter's terms) changes the terms from
its closing time ``c`` when all of these hold:

1. the proposer closed it and it ``passed`` under its own rule and quorum (protocol.governance);
2. the same counted votes also meet the amendment rule and quorum of the terms in force just before ``c``
   (``amendment_rule``, ``amendment_quorum``, ``amendment_quorum_of``; two thirds of the decisive weight with
   half the voting members by default) — so a charter cannot be changed by a simple majority unless it says so;
3. the terms it would set leave at least one voting member (a member whose class has weight above 0) in the
   membership at ``c``; otherwise it is ignored, since nobody could ever amend the charter again.

Amendment proposals are decided in (closing time, id) order, each under the amendments adopted before its
closing time, so the adopted list is a pure function of the records, whatever order they arrived in.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .charter import Amendment, terms_at
from .derived import membership
from .governance import Result, decide, proposal_result, quorum_met
from .records import Record

__all__ = ["AMENDMENT_STATES", "AmendmentState", "adopted_amendments", "amendment_state"]

#: pending: not closed yet · adopted: in force from the closing time · not-adopted: failed, no quorum, or
#: short of the charter's amendment rule · ignored: would leave no voting member
AMENDMENT_STATES = ("pending", "adopted", "not-adopted", "ignored")


@dataclass(frozen=True, slots=True)
class AmendmentState:
    state: str
    reason: str
    amendment: Amendment | None = None


def _meets_amendment_rule(result: Result) -> tuple[bool, str]:
    terms, body = result.terms, result.proposal.body
    participating, base = ((result.turnout, result.voters) if terms.amendment_quorum_of == "members"
                           else (result.turnout_weight, result.electorate_weight))
    objection = body.get("objection", body["options"][-1])
    objections = next(t.votes for t in result.options if t.option == objection)
    rule = f"{terms.amendment_rule} with a quorum of {terms.amendment_quorum}% of {terms.amendment_quorum_of}"
    if not quorum_met(terms.amendment_quorum, participating, base):
        return False, f"short of the charter's quorum for amendments ({rule})"
    if not decide(terms.amendment_rule, result.for_weight, result.decisive_weight, objections):
        return False, f"short of the charter's rule for amendments ({rule})"
    return True, rule


def amendment_state(result: Result, charter: Record, amendments: Iterable[Amendment],
                    endorsements: Iterable[Record], revocations: Iterable[Record]) -> AmendmentState | None:
    """Whether the amendment ``result``'s proposal carries is in force (None for a proposal without one).

    ``amendments`` are those adopted so far; only those effective before the closing time are considered.
    """
    proposal = result.proposal
    changes = proposal.body.get("amendment")
    if changes is None:
        return None
    closes = proposal.body["closes"]
    if result.close is None:
        return AmendmentState("pending", "takes effect from the closing time if the proposer's close shows it "
                                         "passed")
    if result.status != "passed":
        return AmendmentState("not-adopted", f"the proposal {result.status}")
    ok, why = _meets_amendment_rule(result)
    if not ok:
        return AmendmentState("not-adopted", why)
    candidate = Amendment(closes, proposal.id, dict(changes))
    new_terms = terms_at(charter, [*(a for a in amendments if a.effective_ms < closes), candidate], closes)
    after = membership(charter, endorsements, revocations, terms=new_terms, before_ms=closes)
    if not after.voters:
        return AmendmentState("ignored", "the new terms would leave no voting member")
    return AmendmentState("adopted", f"passed under {why}", candidate)


def adopted_amendments(charter: Record, records: Iterable[Record]) -> list[Amendment]:
    """Every amendment in force at some time, oldest first: the input of protocol.charter.terms_at.

    ``records`` may hold anything; what bears on amendments is picked out: proposals that carry one, their
    closes, ballots and delegations, and endorsements and revocations (the electorate).
    """
    proposals: list[Record] = []
    by_proposal: dict[bytes, list[Record]] = defaultdict(list)
    delegations: list[Record] = []
    endorsements: list[Record] = []
    revocations: list[Record] = []
    for r in records:
        if r.association != charter.id:
            continue
        if r.kind == "proposal" and "amendment" in r.body:
            proposals.append(r)
        elif r.kind in ("ballot", "proposal-close"):
            by_proposal[r.body["proposal"]].append(r)
        elif r.kind == "delegation":
            delegations.append(r)
        elif r.kind == "endorsement":
            endorsements.append(r)
        elif r.kind == "revocation":
            revocations.append(r)
    return decide_amendments(charter, proposals, by_proposal, delegations, endorsements, revocations)


def decide_amendments(charter: Record, proposals: Sequence[Record], by_proposal: dict[bytes, list[Record]],
                      delegations: Sequence[Record], endorsements: Sequence[Record],
                      revocations: Sequence[Record]) -> list[Amendment]:
    """:func:`adopted_amendments` over records already sorted out: ``by_proposal`` maps a proposal id to its
    ballots and closes (a hub hands over only what it stored for the amendment proposals)."""
    adopted: list[Amendment] = []
    for p in sorted(proposals, key=lambda p: (p.body["closes"], p.id)):
        related = by_proposal.get(p.id, [])
        closes = [r for r in related if r.kind == "proposal-close"]
        if not closes:
            continue  # not closed: pending, and nothing later depends on it
        result = proposal_result(p, charter, amendments=adopted, ballots=related, delegations=delegations,
                                 closes=closes, endorsements=endorsements, revocations=revocations,
                                 now_ms=p.body["closes"])
        state = amendment_state(result, charter, adopted, endorsements, revocations)
        if state is not None and state.amendment is not None:
            adopted.append(state.amendment)
    return adopted
