"""A small association with membership classes, for the governance tests (protocol, hub and benchmarks).

Keys are fixed (``key(i)``); every record is really signed. Time is explicit: each builder takes ``at``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from protocol import HubKey, Record, build_record, proposal_result
from protocol.governance import Result

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
MIN = 60_000
DAY = 86_400_000
CLASSES = {"worker-coop": 1, "user-led": 2, "council": 0}


def key(i: int) -> HubKey:
    """The i-th test key (fixed: the same i is always the same hub)."""
    return HubKey.from_seed(hashlib.sha256(b"coophub-governance-test:%d" % i).digest())


@dataclass
class Assoc:
    """A charter and the records built on it; ``records`` collects everything built."""

    charter: Record
    records: list[Record] = field(default_factory=list)

    @classmethod
    def create(cls, founders: Iterable[tuple[HubKey, str]], *, classes: dict[str, int] | None = None,
               needed: int = 1, assessors: Iterable[HubKey] = (), **extra: Any) -> Assoc:
        founders = list(founders)
        classes = CLASSES if classes is None else classes
        body: dict[str, Any] = {
            "name": "Governance Test Co-operatives", "founders": [k.public for k, _ in founders],
            "endorsements_needed": needed,
            "schemes": [{"id": "care-quality", "name": "Care Quality Mark",
                         "assessors": [k.public for k in assessors]}] if assessors else [],
            "classes": [{"name": n, "weight": w} for n, w in classes.items()],
            "founder_classes": [{"hub": k.public, "class": c} for k, c in founders],
            **extra,
        }
        return cls(build_record(founders[0][0], bytes(32), "charter", body, T0))

    def rec(self, author: HubKey, kind: str, body: dict[str, Any], at: int) -> Record:
        record = build_record(author, self.charter.id, kind, body, at)
        self.records.append(record)
        return record

    def endorse(self, by: HubKey, subject: HubKey, cls: str | None = None, at: int = T0 + MIN) -> Record:
        body: dict[str, Any] = {"subject": subject.public}
        if cls is not None:
            body["class"] = cls
        return self.rec(by, "endorsement", body, at)

    def propose(self, by: HubKey, *, options: list[str] | None = None, rule: str = "majority",
                quorum: int = 0, quorum_of: str = "members", closes: int = T0 + DAY, at: int = T0 + 2 * MIN,
                title: str = "A motion", **extra: Any) -> Record:
        body = {"title": title, "options": options or ["yes", "no"], "rule": rule, "quorum": quorum,
                "quorum_of": quorum_of, "closes": closes, **extra}
        return self.rec(by, "proposal", body, at)

    def vote(self, by: HubKey, proposal: Record, option: str, at: int | None = None) -> Record:
        when = proposal.created_ms + MIN if at is None else at
        return self.rec(by, "ballot", {"proposal": proposal.id, "option": option}, when)

    def delegate(self, by: HubKey, to: HubKey, proposal: Record | None = None, at: int = T0 + MIN) -> Record:
        body: dict[str, Any] = {"to": to.public}
        if proposal is not None:
            body["proposal"] = proposal.id
        return self.rec(by, "delegation", body, at)

    def revoke(self, by: HubKey, target: Record, at: int) -> Record:
        return self.rec(by, "revocation", {"target": target.id, "reason": "withdrawn"}, at)

    def close(self, by: HubKey, proposal: Record, ballots: Iterable[Record] = (),
              delegations: Iterable[Record] = (), at: int | None = None) -> Record:
        when = proposal.body["closes"] if at is None else at
        return self.rec(by, "proposal-close", {"proposal": proposal.id, "ballots": [b.id for b in ballots],
                                               "delegations": [d.id for d in delegations]}, when)

    def close_honestly(self, by: HubKey, proposal: Record, at: int | None = None) -> Record:
        """The close an honest proposer publishes: exactly what the live tally counts."""
        live = self.result(proposal, proposal.body["closes"])
        ballots, delegations = live.counted_ids()
        when = proposal.body["closes"] if at is None else at
        return self.rec(by, "proposal-close", {"proposal": proposal.id, "ballots": sorted(ballots),
                                               "delegations": sorted(delegations)}, when)

    def result(self, proposal: Record, now_ms: int, records: Iterable[Record] | None = None,
               amendments: Iterable[Any] = ()) -> Result:
        rs = list(self.records if records is None else records)
        return proposal_result(proposal, self.charter, amendments=amendments,
                               ballots=[r for r in rs if r.kind == "ballot"],
                               delegations=[r for r in rs if r.kind == "delegation"],
                               closes=[r for r in rs if r.kind == "proposal-close"],
                               endorsements=[r for r in rs if r.kind == "endorsement"],
                               revocations=[r for r in rs if r.kind == "revocation"], now_ms=now_ms)

