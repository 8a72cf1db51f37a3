"""The association's collective voice: proposals, ballots, proxies, closes and results (docs/protocol.md §6.9).

Everything here is a pure function of a set of records, so every hub computes the same result whatever order
the records arrived in. A proposal's lifecycle is a table (:data:`PROPOSAL_TRANSITIONS`):

    open ──closing time passes──▶ closing ──the proposer's close──▶ passed | failed | no-quorum   (final)

The electorate is the membership at the proposal's closing time ``c``: members and classes under the charter
terms in force just before ``c`` (:func:`protocol.charter.terms_before`), from endorsements and revocations
created before ``c``; it votes with the weights of those terms. A proposal is never decided under terms that it,
or any proposal closing at the same moment, sets — so deciding amendments in closing order is well-founded
(protocol.amendments).

Counting, for each member of the electorate whose weight is above 0 (a *voter*):

- its own ballot: among its ballots for the proposal created at or after the proposal and before ``c``, naming
  one of the options, the newest (greatest ``created_ms``, then lowest id);
- else its proxy's: its newest delegation for this proposal, else its newest delegation for every proposal
  (each created before ``c`` and not revoked by its author before ``c``), when it names another voter who has
  an own ballot. One hop only: a proxy's own proxy is not followed.

Once the proposer closes the proposal (a ``proposal-close`` by the proposal's author, created at or after
``c``; the earliest decides), the same rule is applied to exactly the ballots and delegations the close
names, so ballots that turn up later, however they are dated, change nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .charter import Amendment, CharterTerms, terms_before
from .derived import Membership, membership, replaceable_key
from .records import Record

__all__ = [
    "PROPOSAL_STATUSES",
    "PROPOSAL_TRANSITIONS",
    "OptionTally",
    "Result",
    "Vote",
    "decide",
    "electorate",
    "proposal_close",
    "proposal_result",
    "quorum_met",
]

#: state -> {event: next state}. ``passed``, ``failed`` and ``no-quorum`` are final.
PROPOSAL_TRANSITIONS: dict[str, dict[str, str]] = {
    "open": {"closing-time": "closing"},
    "closing": {"close:passed": "passed", "close:failed": "failed", "close:no-quorum": "no-quorum"},
    "passed": {},
    "failed": {},
    "no-quorum": {},
}
PROPOSAL_STATUSES = tuple(PROPOSAL_TRANSITIONS)


@dataclass(frozen=True, slots=True)
class Vote:
    """One line of the roll-call: how one voter's weight was cast."""

    hub: bytes
    cls: str
    weight: int
    option: str
    ballot_id: bytes  # the ballot whose option counted: the voter's own, or its proxy's
    proxy: bytes | None = None  # the member who voted for it, when by proxy
    delegation_id: bytes | None = None


@dataclass(frozen=True, slots=True)
class OptionTally:
    option: str
    votes: int  # voters who chose it (directly or by proxy)
    weight: int  # their vote weight


@dataclass(frozen=True, slots=True)
class Result:
    """A proposal's status and tally. ``outcome`` is what the tally gives (passed / failed / no-quorum):
    final once closed, provisional while ``status`` is ``open`` or ``closing``."""

    proposal: Record
    status: str
    outcome: str
    options: tuple[OptionTally, ...]
    votes: tuple[Vote, ...]  # roll-call, by hub id
    voters: int  # members of the electorate with weight above 0
    electorate_weight: int
    turnout: int  # voters whose vote counted
    turnout_weight: int
    quorum_needed: int  # voters (quorum_of "members") or weight ("weight") needed for the quorum
    quorum_met: bool
    for_weight: int  # the motion's (the first option's) weight
    decisive_weight: int  # weight cast, less abstentions
    objections: int  # voters who chose the objection (consent)
    close: Record | None
    terms: CharterTerms  # the terms it is decided under
    electorate: Membership

    @property
    def closed(self) -> bool:
        return self.close is not None

    def counted_ids(self) -> tuple[frozenset[bytes], frozenset[bytes]]:
        """(ballot ids, delegation ids) this tally counts: what an honest close names."""
        ballots = frozenset(v.ballot_id for v in self.votes)
        delegations = frozenset(v.delegation_id for v in self.votes if v.delegation_id is not None)
        return ballots, delegations


def electorate(charter: Record, amendments: Iterable[Amendment], endorsements: Iterable[Record],
               revocations: Iterable[Record], closes_ms: int) -> Membership:
    """Membership at ``closes_ms`` under the terms in force just before it, from records created before it."""
    terms = terms_before(charter, amendments, closes_ms)
    return membership(charter, endorsements, revocations, terms=terms, before_ms=closes_ms)


def proposal_close(proposal: Record, closes: Iterable[Record]) -> Record | None:
    """The close that decides: the earliest ``proposal-close`` of this proposal by its author created at or
    after its closing time. Closes by anyone else, or before the closing time, have no effect."""
    return min((c for c in closes if c.kind == "proposal-close" and c.body["proposal"] == proposal.id
                and c.author == proposal.author and c.created_ms >= proposal.body["closes"]
                and c.association == proposal.association),
               key=lambda c: (c.created_ms, c.id), default=None)


def quorum_met(quorum: int, participating: int, base: int) -> bool:
    """``participating`` is at least ``quorum`` percent of ``base``, in integers (no floats anywhere)."""
    return 100 * participating >= quorum * base


def decide(rule: str, for_weight: int, decisive_weight: int, objections: int) -> bool:
    """Whether the motion carries under ``rule`` (docs/protocol.md §6.9), in exact integer arithmetic:

    majority    more than half the decisive weight is for it: 2·for > decisive
    two-thirds  at least two thirds of it, and some weight was decisive: 3·for ≥ 2·decisive > 0
    consent     no voter chose the objection
    """
    if rule == "majority":
        return 2 * for_weight > decisive_weight
    if rule == "two-thirds":
        return decisive_weight > 0 and 3 * for_weight >= 2 * decisive_weight
    if rule == "consent":
        return objections == 0
    raise ValueError(f"unknown rule {rule!r}")


def _own_ballots(proposal: Record, ballots: Iterable[Record], voters: frozenset[bytes]) -> dict[bytes, Record]:
    body = proposal.body
    options, closes = set(body["options"]), body["closes"]
    out: dict[bytes, Record] = {}
    for b in ballots:
        if (b.kind != "ballot" or b.body["proposal"] != proposal.id or b.author not in voters
                or b.body["option"] not in options or not proposal.created_ms <= b.created_ms < closes
                or b.association != proposal.association):
            continue
        current = out.get(b.author)
        if current is None or replaceable_key(b) < replaceable_key(current):
            out[b.author] = b
    return out


def _proxies(proposal: Record, delegations: Iterable[Record], revocations: Iterable[Record],
             voters: frozenset[bytes]) -> dict[bytes, Record]:
    """Each voter's delegation that applies to ``proposal``: per scope (this proposal; every proposal) the
    newest created before the closing time replaces older ones; it applies unless revoked by its author before
    the closing time, or naming itself or a hub that is not a voter. The scoped one wins over the general."""
    closes = proposal.body["closes"]
    newest: dict[tuple[bytes, bool], Record] = {}
    for d in delegations:
        scope = d.body.get("proposal")
        if (d.kind != "delegation" or d.author not in voters or d.created_ms >= closes
                or scope not in (None, proposal.id) or d.association != proposal.association):
            continue
        key = (d.author, scope is not None)
        if key not in newest or replaceable_key(d) < replaceable_key(newest[key]):
            newest[key] = d
    candidates = {d.id: d for d in newest.values()}
    revoked = {r.body["target"] for r in revocations if r.kind == "revocation" and r.created_ms < closes
               and r.body["target"] in candidates and candidates[r.body["target"]].author == r.author}
    out: dict[bytes, Record] = {}
    for (author, _scoped), d in sorted(newest.items(), key=lambda item: item[0][1]):  # general first
        if d.id not in revoked and d.body["to"] != author and d.body["to"] in voters:
            out[author] = d  # the scoped delegation, sorted last, overrides the general one
    return out


def _roll_call(proposal: Record, electorate: Membership, ballots: Iterable[Record],
               delegations: Iterable[Record], revocations: Iterable[Record]) -> tuple[Vote, ...]:
    voters = electorate.voters
    own = _own_ballots(proposal, ballots, voters)
    proxies = _proxies(proposal, delegations, revocations, voters)
    votes: list[Vote] = []
    for hub in sorted(voters):
        cls, weight = electorate.classes[hub], electorate.weights[hub]
        if hub in own:
            votes.append(Vote(hub, cls, weight, own[hub].body["option"], own[hub].id))
        elif (d := proxies.get(hub)) is not None and (by := own.get(d.body["to"])) is not None:
            votes.append(Vote(hub, cls, weight, by.body["option"], by.id, by.author, d.id))
    return tuple(votes)


def proposal_result(proposal: Record, charter: Record, *, amendments: Iterable[Amendment] = (),
                    ballots: Iterable[Record] = (), delegations: Iterable[Record] = (),
                    closes: Iterable[Record] = (), endorsements: Iterable[Record] = (),
                    revocations: Iterable[Record] = (), now_ms: int) -> Result:
    """The status and tally of ``proposal`` at ``now_ms`` (module docstring for the rules).

    ``amendments`` are those adopted (protocol.amendments.adopted_amendments); only those that take effect
    before the closing time matter. ``revocations`` may be of anything: those of endorsements shape the
    electorate, those of delegations withdraw proxies.
    """
    body = proposal.body
    revocations = list(revocations)
    voters_at = electorate(charter, amendments, endorsements, revocations, body["closes"])
    terms = terms_before(charter, amendments, body["closes"])
    close = proposal_close(proposal, closes)
    if close is not None:
        named_ballots, named_delegations = set(close.body["ballots"]), set(close.body["delegations"])
        ballots = [b for b in ballots if b.id in named_ballots]
        delegations = [d for d in delegations if d.id in named_delegations]
    votes = _roll_call(proposal, voters_at, ballots, delegations, revocations)
    return _tally(proposal, terms, voters_at, votes, close, now_ms)


def _tally(proposal: Record, terms: CharterTerms, voters_at: Membership, votes: tuple[Vote, ...],
           close: Record | None, now_ms: int) -> Result:
    body = proposal.body
    options = body["options"]
    tallies = tuple(OptionTally(o, sum(1 for v in votes if v.option == o),
                                sum(v.weight for v in votes if v.option == o)) for o in options)
    by_option = {t.option: t for t in tallies}
    cast = sum(t.weight for t in tallies)
    abstained = by_option[body["abstain"]].weight if "abstain" in body else 0
    objection = body.get("objection", options[-1]) if body["rule"] == "consent" else None
    objections = by_option[objection].votes if objection is not None else 0
    voters = voters_at.voters
    total_weight = sum(voters_at.weights[h] for h in voters)
    turnout, turnout_weight = len(votes), sum(v.weight for v in votes)
    participating, base = ((turnout, len(voters)) if body["quorum_of"] == "members"
                           else (turnout_weight, total_weight))
    met = quorum_met(body["quorum"], participating, base)
    carried = decide(body["rule"], by_option[options[0]].weight, cast - abstained, objections)
    outcome = "passed" if met and carried else "failed" if met else "no-quorum"
    if close is not None:
        status = outcome
    else:
        status = "closing" if now_ms >= body["closes"] else "open"
    return Result(proposal, status, outcome, tallies, votes, len(voters), total_weight, turnout,
                  turnout_weight, -(-body["quorum"] * base // 100), met, by_option[options[0]].weight,
                  cast - abstained, objections, close, terms, voters_at)
