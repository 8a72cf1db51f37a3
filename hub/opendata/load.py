"""The SQL that gathers the records each open-data document is built from (the builders themselves are pure
functions over records, so every hub computes the same document from the same records).

Each function runs inside one read transaction (``Store.view``) and returns records, never rows.
"""

from __future__ import annotations

import sqlite3

from hub.derive import load_charter, load_record, load_records
from protocol import Record

__all__ = [
    "attestation_ids",
    "attestation_records",
    "closed_offer_ids",
    "directory_records",
    "issuer_records",
    "offer_records",
    "profile_records",
    "signing_context",
]


def _charter(conn: sqlite3.Connection) -> list[Record]:
    charter = load_charter(conn)
    return [] if charter is None else [charter]


def _membership(conn: sqlite3.Connection) -> list[Record]:
    return load_records(conn, "SELECT raw, id FROM records WHERE kind IN ('endorsement', 'revocation')")


def profile_records(conn: sqlite3.Connection) -> list[Record]:
    """Every hub's current profile (one per hub: the derived ``profiles`` table)."""
    return load_records(conn, "SELECT r.raw, r.id FROM profiles p JOIN records r ON r.id = p.id")


def directory_records(conn: sqlite3.Connection) -> list[Record]:
    """What the HSDS and Murmurations exports need: the charter, endorsements and revocations (membership),
    current profiles and every attestation — not guides, offers or pledges, which are most of a hub's bytes."""
    attestations = load_records(conn, "SELECT raw, id FROM records WHERE kind = 'attestation'")
    from hub.governance import amendment_records  # the charter as the members amended it (protocol §6.10)

    return _charter(conn) + _membership(conn) + profile_records(conn) + attestations + amendment_records(conn)


def offer_records(conn: sqlite3.Connection, offer_id: bytes) -> list[Record]:
    """An offer and what its OCDS release draws on: its pledges, closes and revocations, the charter,
    membership and current profiles (for party names); empty if ``offer_id`` is not an offer."""
    offer = load_record(conn, offer_id)
    if offer is None or offer.kind != "offer":
        return []
    refs = load_records(conn, "SELECT raw, id FROM records INDEXED BY records_ref WHERE ref = ? "
                              "AND kind IN ('pledge', 'offer-close', 'revocation')", (offer_id,))
    return [offer, *refs, *_charter(conn), *_membership(conn), *profile_records(conn)]


def closed_offer_ids(conn: sqlite3.Connection) -> list[bytes]:
    """Ids of offers closed by their author, oldest close first."""
    return [bytes(row[0]) for row in conn.execute(
        "SELECT id FROM offers WHERE close_id IS NOT NULL ORDER BY close_created_ms, id")]


def attestation_records(conn: sqlite3.Connection, attestation_id: bytes) -> list[Record]:
    """An attestation, its revocations, the charter and current profiles; empty if not an attestation."""
    attestation = load_record(conn, attestation_id)
    if attestation is None or attestation.kind != "attestation":
        return []
    revocations = load_records(conn, "SELECT raw, id FROM records INDEXED BY records_ref WHERE ref = ? "
                                     "AND kind = 'revocation'", (attestation_id,))
    return [attestation, *revocations, *_charter(conn), *profile_records(conn)]


def issuer_records(conn: sqlite3.Connection, issuer: bytes) -> list[Record]:
    """Every attestation ``issuer`` signed, with revocations of them, the charter and current profiles."""
    attestations = load_records(conn, "SELECT raw, id FROM records WHERE kind = 'attestation' AND author = ?",
                                (issuer,))
    revocations = load_records(conn, "SELECT raw, id FROM records WHERE kind = 'revocation' AND author = ?",
                               (issuer,))
    return [*attestations, *revocations, *_charter(conn), *profile_records(conn)]


def signing_context(conn: sqlite3.Connection) -> tuple[Record | None, dict[bytes, str]]:
    """The charter and every hub's current name: what a credential issued now names."""
    return load_charter(conn), {bytes(hub): str(name) for hub, name in conn.execute("SELECT hub, name FROM profiles")}


def attestation_ids(conn: sqlite3.Connection) -> list[bytes]:
    """Every attestation's id, oldest first."""
    return [bytes(row[0]) for row in conn.execute("SELECT id FROM attestations ORDER BY created_ms, id")]
