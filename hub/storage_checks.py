"""Local checks for what the storage rule would store and ignore, or hold back (docs/protocol.md §2.3).

A peer's record that has no effect is stored and ignored, and one whose reference or author is not there yet is
deferred; that is right for records that already exist. When *this* hub's user asks to publish such a record it
is a mistake, and hub.publishing refuses it before signing with one line saying what to do:

    any kind     a hub that is not a member publishing anything but its profile, a revocation of its own
                 records or an attestation it is an assessor for: "not a member yet"
    references   a pledge's offer, a close's offer and pledges, a guide's earlier version must be on this hub
                 and of the right kind
    offer-close  only the offer's author closes it, naming pledges of that offer
    guide        a new version supersedes only this hub's own guide

(A pledge's offer — held, open, before its deadline — is checked by hub.publishing itself.)
"""

from __future__ import annotations

import sqlite3

from protocol import Record, authorised_assessors, format_hub_id, references

from . import publishing
from .derive import load_charter

__all__ = ["close_own_offer", "member_only", "references_held", "supersede_own_guide"]

#: Kinds a hub that is not (or no longer) a member may still publish: its profile (so members can find and
#: endorse it) and revocations of its own records (withdrawing is always possible). Attestations are allowed to
#: the charter's assessors of their scheme, members or not.
NON_MEMBER_KINDS = frozenset({"charter", "profile", "revocation"})


def member_only(conn: sqlite3.Connection, record: Record, now_ms: int) -> None:
    if record.kind in NON_MEMBER_KINDS:
        return
    charter = load_charter(conn)
    if charter is None or conn.execute("SELECT 1 FROM members WHERE hub = ?", (record.author,)).fetchone():
        return
    if record.kind == "attestation" and record.author in authorised_assessors(charter, record.body["scheme"]):
        return
    raise publishing.PublishRefused(
        f"not a member yet: ask members to endorse you ({charter.body['endorsements_needed']} endorsement(s) "
        f"needed for {format_hub_id(record.author)}); until then this hub publishes only its profile",
        field="kind", reason="not-a-member")


def _row(conn: sqlite3.Connection, record_id: bytes) -> tuple[str, bytes, bytes | None] | None:
    row = conn.execute("SELECT kind, author, ref FROM records WHERE id = ?", (record_id,)).fetchone()
    return None if row is None else (str(row[0]), bytes(row[1]), row[2])


def references_held(conn: sqlite3.Connection, record: Record, now_ms: int) -> None:
    """Every record it names is on this hub and of the right kind (a revocation's target has its own check in
    hub.publishing, and so has a pledge's offer when it is missing)."""
    if record.kind == "revocation":
        return
    for path, rid, kinds in references(record):
        row = _row(conn, rid)
        name = path.removeprefix("body.")
        if row is None and record.kind == "pledge":
            return  # hub.publishing._pledge says how to find the offer
        if row is None:
            raise publishing.PublishRefused(f"no record {rid.hex()} on this hub; check the id with "
                                            "`coophub show`", field=name, reason="missing-reference")
        if row[0] not in kinds:
            raise publishing.PublishRefused(f"{rid.hex()[:12]}… is a {row[0]}, not a {' or '.join(sorted(kinds))}",
                                            field=name)


def close_own_offer(conn: sqlite3.Connection, record: Record, now_ms: int) -> None:
    offer = _row(conn, record.body["offer"])
    if offer is None:
        return  # references_held says so
    if offer[1] != record.author:
        raise publishing.PublishRefused(f"only the offer's author can close it; {record.body['offer'].hex()[:12]}… "
                                        f"was published by {format_hub_id(offer[1])}", field="offer")
    for pledge in record.body["pledges"]:
        row = _row(conn, pledge)
        if row is not None and row[0] == "pledge" and row[2] != record.body["offer"]:
            raise publishing.PublishRefused(f"{pledge.hex()[:12]}… is a pledge to another offer; name only "
                                            "pledges to this one", field="pledges")


def supersede_own_guide(conn: sqlite3.Connection, record: Record, now_ms: int) -> None:
    earlier: bytes | None = record.body.get("supersedes")
    row = _row(conn, earlier) if earlier is not None else None
    if earlier is not None and row is not None and row[0] == "guide" and row[1] != record.author:
        raise publishing.PublishRefused(f"a guide can only supersede this hub's own guides; {earlier.hex()[:12]}… "
                                        f"was published by {format_hub_id(row[1])}; publish a new guide instead",
                                        field="supersedes")
