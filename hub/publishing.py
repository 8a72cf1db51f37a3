"""Checks on what *this* hub publishes, before it is signed into the association's history.

Records from peers follow the convergence rules (docs/protocol.md §2.1): a well-formed record of an eligible
author is stored, and derived state ignores what has no effect — a revocation of another hub's record, a pledge
after the deadline, a ballot after the close. That is right for a record that already exists somewhere, but a
member who *asks* to publish such a record has made a mistake and must be told, with nothing stored
(PRODUCT.md §5: bad input gets a clear error). These checks say so before signing; both ways to publish — the
API (``POST /api/v1/publish``) and the CLI without a running hub — go through :func:`check`.

Each check is ``fn(conn, record, now_ms)``: it reads the database (a read transaction, never writes) and raises
:class:`PublishRefused` with a reason from the protocol's vocabulary and one line saying what is wrong and how to
fix it. Checks are listed per kind in :data:`CHECKS`; a package that adds a kind adds its checks there (one table,
wired in one place). A check must never refuse something the protocol would store *and count*: it only catches
what would be stored and ignored, or what ingest would refuse anyway, with a better message.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from hub.opendata import validate as opendata
from protocol import REVOCABLE_KINDS, Record, format_hub_id
from protocol.charter import terms_at
from protocol.errors import ProtocolError
from protocol.jsonview import iso_ms

from . import storage_checks as storage
from .aid_checks import AID_CHECKS
from .derive import load_charter
from .governance import amendments_in_force

__all__ = ["CHECKS", "Check", "PublishRefused", "check"]


class PublishRefused(ProtocolError):
    """A record this hub was asked to publish that would have no effect or be refused; nothing is stored."""


Check = Callable[[sqlite3.Connection, Record, int], None]

def _endorsement(conn: sqlite3.Connection, record: Record, now_ms: int) -> None:
    subject = record.body["subject"]
    if subject == record.author:
        raise PublishRefused("a hub cannot endorse itself; endorse another hub's id", field="subject")
    row = conn.execute(
        "SELECT lower(hex(e.id)) FROM records e WHERE e.kind = 'endorsement' AND e.author = ? AND e.ref = ? "
        "AND NOT EXISTS (SELECT 1 FROM records r WHERE r.kind = 'revocation' AND r.ref = e.id "
        "AND r.author = e.author)", (record.author, subject)).fetchone()
    if row is not None:
        raise PublishRefused(f"this hub already endorses {format_hub_id(subject)} (endorsement {row[0]}); "
                             "revoke that one first to write a new statement", field="subject",
                             reason="duplicate")


def _revocation(conn: sqlite3.Connection, record: Record, now_ms: int) -> None:
    target = record.body["target"]
    row = conn.execute("SELECT kind, author FROM records WHERE id = ?", (target,)).fetchone()
    if row is None:
        raise PublishRefused(f"no record {target.hex()} on this hub; check the id with `coophub show`",
                             field="target", reason="missing-reference")
    kind, author = row
    if author != record.author:
        raise PublishRefused(f"a hub can only revoke what it published; {target.hex()[:12]}… was published "
                             f"by {format_hub_id(author)}", field="target")
    if kind not in REVOCABLE_KINDS:
        raise PublishRefused(f"a {kind} cannot be revoked; revocable kinds: {', '.join(sorted(REVOCABLE_KINDS))}"
                             + ("; publish a new one instead" if kind in ("profile", "pledge") else ""),
                             field="target")
    done = conn.execute("SELECT lower(hex(id)) FROM records WHERE kind = 'revocation' AND ref = ? AND author = ?",
                        (target, record.author)).fetchone()
    if done is not None:
        raise PublishRefused(f"{target.hex()[:12]}… is already revoked (revocation {done[0]})", field="target",
                             reason="duplicate")


def _pledge(conn: sqlite3.Connection, record: Record, now_ms: int) -> None:
    offer_id = record.body["offer"]
    row = conn.execute("SELECT deadline, revoked, close_outcome, close_created_ms FROM offers WHERE id = ?",
                       (offer_id,)).fetchone()
    if row is None:
        raise PublishRefused(f"no offer {offer_id.hex()} on this hub; find it with `coophub search --kind offer`",
                             field="offer", reason="missing-reference")
    deadline, revoked, outcome, closed_ms = row
    if outcome is not None:
        raise PublishRefused(f"the offer was closed ({outcome}) on {iso_ms(closed_ms)}; a pledge now would not "
                             "count", field="offer")
    if revoked:
        raise PublishRefused("the offer was withdrawn by its author; a pledge would not count", field="offer")
    if record.created_ms > deadline:
        raise PublishRefused(f"the offer's deadline passed on {iso_ms(deadline)}; pledges after it do not "
                             "count", field="offer")


def _attestation(conn: sqlite3.Connection, record: Record, now_ms: int) -> None:
    charter = load_charter(conn)
    if charter is None:
        return  # ingest says the charter is missing
    scheme = record.body["scheme"]
    # The terms in force when it is created, as the members amended them (docs/protocol.md §6.5, §6.10).
    terms = terms_at(charter, amendments_in_force(conn), record.created_ms)
    if scheme not in terms.schemes:
        known = ", ".join(sorted(terms.schemes)) or "none"
        raise PublishRefused(f"the charter has no scheme {scheme!r} (its schemes: {known}); a scheme is adopted "
                             "by the charter before marks of it count", field="scheme")
    if record.author not in terms.assessors(scheme):
        raise PublishRefused(f"this hub is not an authorised assessor of {scheme!r} in the charter; its marks "
                             "would show as unauthorised", field="scheme")


def _governance() -> dict[str, tuple[Check, ...]]:
    from . import governance_checks  # imports hub.proposals, which does not import this module

    return governance_checks.CHECKS  # type: ignore[return-value]


#: kind -> the checks a locally published record of that kind passes, in order; "*": checks every kind
#: passes first.
CHECKS: dict[str, tuple[Check, ...]] = {
    "*": (storage.member_only,),
    "attestation": (_attestation, opendata.CHECKS["attestation"]),
    "endorsement": (_endorsement, *_governance()["endorsement"]),
    "pledge": (storage.references_held, _pledge),
    "revocation": (_revocation,),
    "offer-close": (storage.references_held, storage.close_own_offer),
    # open data (hub.opendata.validate): e-mail, URLs, ISO 4217 currency, BCP 47 language
    "profile": (opendata.CHECKS["profile"],),
    "guide": (storage.references_held, storage.supersede_own_guide, opendata.CHECKS["guide"]),
    "offer": (opendata.CHECKS["offer"],),
    # mutual aid (hub.aid_checks, docs/protocol.md §6.8)
    "credit-payment": AID_CHECKS["credit-payment"],
    "credit-receipt": AID_CHECKS["credit-receipt"],
    "fund": AID_CHECKS["fund"],
    "fund-join": AID_CHECKS["fund-join"],
    "fund-leave": AID_CHECKS["fund-leave"],
    "fund-claim": AID_CHECKS["fund-claim"],
    "fund-approval": AID_CHECKS["fund-approval"],
    "fund-payment": AID_CHECKS["fund-payment"],
    # governance (hub.governance_checks): ballots, proxies, closes, amendments, reviews
    "proposal": _governance()["proposal"],
    "ballot": _governance()["ballot"],
    "delegation": _governance()["delegation"],
    "proposal-close": _governance()["proposal-close"],
    "review": _governance()["review"],
}


def check(conn: sqlite3.Connection, record: Record, now_ms: int) -> None:
    """Run the checks for ``record``'s kind.

    Raises:
        PublishRefused: the record would be refused or ignored; the message says why and what to do.
    """
    for fn in CHECKS.get("*", ()) + CHECKS.get(record.kind, ()):
        fn(conn, record, now_ms)
