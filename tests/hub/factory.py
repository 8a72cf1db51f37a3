"""Build small, realistic associations with real keys and real signatures, for hub tests and anyone else's.

Everything is deterministic: keys come from fixed seeds and times from an explicit clock, so a failing test
replays exactly. Typical use::

    a = Association.create(founders=3, needed=2)       # charter signed by founder 0, assessor key ready
    p = a.profile(a.founders[0], "Gofal Gwynedd", regions=["Gwynedd"])
    g = a.guide(a.founders[0], "Safe lone working")
    o = a.offer(a.founders[1], "Nitrile gloves", deadline=a.now + 30 * DAY)
    store.ingest(raws([a.charter, p, g, o]), now_ms=a.now)

Every builder takes ``at=`` (creation time, ms); by default the clock advances one second per record, so
records built later are newer. :func:`sample` builds a whole small association in one call.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from protocol import HubKey, Record, build_record

__all__ = [
    "DAY", "HOUR", "SCHEME", "T0", "Association", "Sample", "forge", "hub_key", "raws", "sample",
]

#: 2026-01-01T00:00:00Z in UTC milliseconds; every factory clock starts here.
T0 = 1_767_225_600_000
HOUR = 3_600_000
DAY = 24 * HOUR
SCHEME = "care-quality"


def hub_key(name: str) -> HubKey:
    """A fixed key per name: the same name always gives the same hub id."""
    return HubKey.from_seed(hashlib.sha256(b"coophub-test-key:" + name.encode()).digest())


def raws(records: Iterable[Record]) -> list[bytes]:
    return [r.raw for r in records]


@dataclass
class Association:
    """An association under construction: its keys, its charter and a clock."""

    founders: list[HubKey]
    assessor: HubKey
    charter: Record
    clock: int = T0

    @classmethod
    def create(cls, founders: int = 3, needed: int = 2, *, name: str = "North Wales Care Co-operatives",
               scheme: str = SCHEME, seed: str = "") -> Association:
        """A charter with ``founders`` founder keys, ``needed`` endorsements, one assessor for ``scheme``.

        ``seed`` varies the keys, for tests that need two unrelated associations.
        """
        keys = [hub_key(f"{seed}founder-{i}") for i in range(founders)]
        assessor = hub_key(f"{seed}assessor")
        body = {"name": name, "description": "Social care co-operatives working together.",
                "founders": [k.public for k in keys], "endorsements_needed": needed,
                "schemes": [{"id": scheme, "name": "Care Quality Mark", "assessors": [assessor.public]}]}
        charter = build_record(keys[0], bytes(32), "charter", body, T0)
        return cls(keys, assessor, charter, T0)

    @property
    def id(self) -> bytes:
        return self.charter.id

    @property
    def now(self) -> int:
        """A "now" at which every record built so far is in the past (pass it as ``now_ms``)."""
        return self.clock + 1000

    def tick(self, at: int | None = None) -> int:
        """The creation time for the next record: ``at`` if given, else the clock plus one second."""
        if at is None:
            self.clock += 1000
            return self.clock
        self.clock = max(self.clock, at)
        return at

    def record(self, key: HubKey, kind: str, body: dict[str, Any], at: int | None = None,
               association: bytes | None = None) -> Record:
        """Any record, signed by ``key`` (raises SchemaError for a bad body, like build_record)."""
        return build_record(key, association or self.id, kind, body, self.tick(at))

    def profile(self, key: HubKey, name: str, *, regions: list[str] | None = None,
                services: list[tuple[str, str]] | None = None, description: str = "",
                peer_urls: list[str] | None = None, at: int | None = None) -> Record:
        """A profile; services are (name, category) pairs."""
        body: dict[str, Any] = {
            "name": name, "regions": regions if regions is not None else ["Gwynedd"],
            "services": [{"name": n, "category": c} for n, c in (services or [("Home care", "care")])],
            "peer_urls": peer_urls or [], "stakeholders": ["workers", "service-users"],
        }
        if description:
            body["description"] = description
        return self.record(key, "profile", body, at)

    def endorse(self, key: HubKey, subject: HubKey, at: int | None = None) -> Record:
        return self.record(key, "endorsement", {"subject": subject.public}, at)

    def guide(self, key: HubKey, title: str, *, summary: str = "What we learned.", body: str = "# Notes\n",
              tags: list[str] | None = None, supersedes: Record | None = None,
              at: int | None = None) -> Record:
        b: dict[str, Any] = {"title": title, "summary": summary, "body": body, "license": "CC-BY-SA-4.0",
                             "tags": tags if tags is not None else ["practice"], "language": "en"}
        if supersedes is not None:
            b["supersedes"] = supersedes.id
        return self.record(key, "guide", b, at)

    def offer(self, key: HubKey, title: str, *, deadline: int | None = None, min_total: int = 100,
              tiers: list[list[int]] | None = None, regions: list[str] | None = None,
              category: str = "health", description: str = "A joint purchase.",
              at: int | None = None) -> Record:
        created = self.tick(at)
        body = {"title": title, "description": description, "category": category, "unit": "box",
                "tiers": tiers or [[1, 900], [100, 800], [500, 700]], "currency": "GBP",
                "min_total": min_total,
                "deadline": deadline if deadline is not None else created + 30 * DAY,
                "regions": regions if regions is not None else ["Gwynedd"]}
        return self.record(key, "offer", body, created)

    def pledge(self, key: HubKey, offer: Record | bytes, quantity: int, at: int | None = None) -> Record:
        offer_id = offer.id if isinstance(offer, Record) else offer
        return self.record(key, "pledge", {"offer": offer_id, "quantity": quantity}, at)

    def close(self, key: HubKey, offer: Record, pledges: Iterable[Record], outcome: str = "awarded",
              at: int | None = None) -> Record:
        return self.record(key, "offer-close", {"offer": offer.id, "outcome": outcome,
                                                "pledges": [p.id for p in pledges]}, at)

    def attest(self, subject: HubKey, *, key: HubKey | None = None, scheme: str = SCHEME, level: str = "gold",
               valid_from: int | None = None, valid_until: int | None = None,
               at: int | None = None) -> Record:
        """An attestation, by the charter's assessor unless ``key`` says otherwise; valid for a year."""
        created = self.tick(at)
        start = valid_from if valid_from is not None else created
        body = {"subject": subject.public, "scheme": scheme, "level": level, "valid_from": start,
                "valid_until": valid_until if valid_until is not None else start + 365 * DAY}
        return self.record(key or self.assessor, "attestation", body, created)

    def revoke(self, key: HubKey, target: Record | bytes, reason: str = "withdrawn",
               at: int | None = None) -> Record:
        target_id = target.id if isinstance(target, Record) else target
        return self.record(key, "revocation", {"target": target_id, "reason": reason}, at)

    # -- mutual aid (docs/protocol.md §6.6–§6.7) ---------------------------------------------------------------

    def pay(self, key: HubKey, payee: HubKey, minutes: int, memo: str = "Cover shifts",
            at: int | None = None) -> Record:
        """A time-credit payment (pending until the payee books it with :meth:`book`)."""
        return self.record(key, "credit-payment", {"payee": payee.public, "minutes": minutes, "memo": memo}, at)

    def book(self, key: HubKey, payment: Record, at: int | None = None) -> Record:
        """The payee's receipt that books ``payment``."""
        return self.record(key, "credit-receipt", {"payment": payment.id}, at)

    def fund(self, key: HubKey, name: str = "Sick pay circle", *, contribution: int = 2500, approvals: int = 2,
             notice_days: int = 30, currency: str = "GBP", at: int | None = None) -> Record:
        return self.record(key, "fund", {"name": name, "contribution": contribution, "currency": currency,
                                         "approvals": approvals, "notice_days": notice_days}, at)

    def fund_join(self, key: HubKey, fund: Record, at: int | None = None) -> Record:
        return self.record(key, "fund-join", {"fund": fund.id}, at)

    def fund_leave(self, key: HubKey, fund: Record, at: int | None = None) -> Record:
        return self.record(key, "fund-leave", {"fund": fund.id}, at)

    def claim(self, key: HubKey, fund: Record, amount: int, reason: str = "Two carers off sick",
              at: int | None = None) -> Record:
        return self.record(key, "fund-claim", {"fund": fund.id, "amount": amount, "reason": reason}, at)

    def approve(self, key: HubKey, claim: Record, at: int | None = None) -> Record:
        return self.record(key, "fund-approval", {"claim": claim.id}, at)

    def fund_pay(self, key: HubKey, claim: Record, amount: int, at: int | None = None) -> Record:
        return self.record(key, "fund-payment", {"claim": claim.id, "amount": amount}, at)


@dataclass
class Sample:
    """A small association's records, by role, in creation order (``records``)."""

    a: Association
    records: list[Record] = field(default_factory=list)
    by_name: dict[str, Record] = field(default_factory=dict)
    applicant: HubKey = field(default_factory=lambda: hub_key("applicant"))

    def add(self, name: str, record: Record) -> Record:
        self.records.append(record)
        self.by_name[name] = record
        return record

    def __getitem__(self, name: str) -> Record:
        return self.by_name[name]


def sample() -> Sample:
    """Three founder co-ops with profiles, a guide and its newer version, an offer with pledges, a valid
    quality mark for founder 0, and an applicant's profile with one sponsor (eligible, so its records are
    stored, but not yet a member: the charter needs two endorsements).
    """
    a = Association.create(founders=3, needed=2)
    f0, f1, f2 = a.founders
    s = Sample(a)
    s.add("charter", a.charter)
    s.add("profile0", a.profile(f0, "Gofal Gwynedd", regions=["Gwynedd", "Anglesey"],
                                services=[("Home care", "care"), ("Respite care", "care")],
                                description="Worker-owned home care across north-west Wales."))
    s.add("profile1", a.profile(f1, "Cardiff Community Carers", regions=["Cardiff"],
                                services=[("Day centre", "care"), ("Meals on wheels", "food")],
                                description="A multi-stakeholder co-op running a day centre."))
    s.add("profile2", a.profile(f2, "Powys Supported Living", regions=["Powys"],
                                services=[("Supported housing", "housing")],
                                description="Supported living for adults with learning disabilities."))
    s.add("guide_v1", a.guide(f0, "Safe lone working", summary="Staying safe on solo visits.",
                              body="Check in before and after each visit.", tags=["safety", "lone-working"]))
    s.add("guide_v2", a.guide(f0, "Safe lone working, revised", summary="Staying safe on solo visits.",
                              body="Check in before and after each visit; carry a personal alarm.",
                              tags=["safety", "lone-working"], supersedes=s["guide_v1"]))
    s.add("guide_rota", a.guide(f1, "Fair rotas", summary="Scheduling that workers agree on.",
                                body="Rotas are drafted by the workers' council.",
                                tags=["rota", "governance"]))
    s.add("offer", a.offer(f1, "Nitrile gloves", description="Boxes of 100 medium nitrile gloves.",
                           regions=["Cardiff", "Gwynedd"], category="health"))
    s.add("pledge0", a.pledge(f0, s["offer"], 60))
    s.add("pledge2", a.pledge(f2, s["offer"], 50))
    s.add("attest0", a.attest(f0))
    s.add("applicant_profile", a.profile(s.applicant, "Newport Home Helpers", regions=["Newport"],
                                         services=[("Home care", "care")]))
    s.add("sponsor", a.endorse(f0, s.applicant))
    return s


def forge(key: HubKey, association: bytes, kind: str, body: dict[str, Any], created_ms: int) -> bytes:
    """Canonical bytes with a valid signature but *no* body validation: for refusal tests (unknown kinds,
    schema errors) that build_record would not let us build.
    """
    from protocol import PROTOCOL_VERSION, SIGNING_DOMAIN, pack

    unsigned = [PROTOCOL_VERSION, association, key.public, created_ms, kind, body]
    signature = key.sign(SIGNING_DOMAIN + pack(unsigned))
    return pack([*unsigned, signature])
