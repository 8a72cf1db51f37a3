"""Quality marks: an attestation's status at a given time, with the reason (docs/protocol.md §6.5).

Status is decided by the first rule that applies, in this order (the order is the table, :data:`MARK_STATUSES`):

    unauthorised   the author is not an assessor of the scheme under the charter terms in force when the
                   attestation was created (or the scheme is unknown then)
    revoked        the author revoked it, by a revocation created at or before the time asked about
    not-yet-valid  the time is before valid_from
    expired        the time is at or after valid_until
    valid          otherwise
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .charter import Amendment, terms_at
from .identity import format_hub_id
from .records import Record

__all__ = ["MARK_STATUSES", "MarkStatus", "attestation_status", "authorised_assessors", "mark_status"]

#: Statuses in the order their rules are tried; the first that applies decides.
MARK_STATUSES = ("unauthorised", "revoked", "not-yet-valid", "expired", "valid")


@dataclass(frozen=True, slots=True)
class MarkStatus:
    status: str
    reason: str
    attestation: Record | None
    revocation: Record | None = None


def authorised_assessors(charter: Record, scheme: str, amendments: Iterable[Amendment] = (),
                         at_ms: int | None = None) -> frozenset[bytes]:
    """The assessors of ``scheme`` under the terms in force at ``at_ms`` (default: the charter's own terms,
    or with ``amendments``, the newest terms)."""
    amendments = list(amendments)
    if at_ms is None:
        at_ms = max((a.effective_ms for a in amendments), default=charter.created_ms)
    return terms_at(charter, amendments, at_ms).assessors(scheme)


_MAX_DATETIME_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last instant datetime can show


def _iso(ms: int) -> str:
    import datetime as _dt

    # Body times go up to 2**53 ms (kinds.MAX_TIME_MS), far past year 9999, where datetime raises.
    if ms > _MAX_DATETIME_MS:
        return f"{ms} ms after 1970 UTC"
    return _dt.datetime.fromtimestamp(ms / 1000, _dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def attestation_status(attestation: Record, charter: Record, revocations: Iterable[Record],
                       at_ms: int, amendments: Iterable[Amendment] = ()) -> MarkStatus:
    """The status of one attestation at ``at_ms``. A revocation takes effect from its own creation time.

    Its author must be an assessor of its scheme under the terms in force at the attestation's *creation*
    (the charter as ``amendments`` left it then): a scheme the members adopt later does not authorise earlier
    marks, and an assessor they remove keeps the marks it gave before.
    """
    body = attestation.body
    scheme = body["scheme"]
    if attestation.author not in authorised_assessors(charter, scheme, amendments, attestation.created_ms):
        return MarkStatus("unauthorised", f"{format_hub_id(attestation.author)} is not an assessor of scheme "
                          f"{scheme!r} under the charter in force when it attested ({_iso(attestation.created_ms)})",
                          attestation)
    for rev in sorted(revocations, key=lambda r: (r.created_ms, r.id)):
        if (rev.kind == "revocation" and rev.body["target"] == attestation.id
                and rev.author == attestation.author and rev.created_ms <= at_ms):
            return MarkStatus("revoked", f"revoked by the assessor on {_iso(rev.created_ms)}: "
                              f"{rev.body['reason']}", attestation, rev)
    if at_ms < body["valid_from"]:
        return MarkStatus("not-yet-valid", f"valid from {_iso(body['valid_from'])}", attestation)
    if at_ms >= body["valid_until"]:
        return MarkStatus("expired", f"expired on {_iso(body['valid_until'])}", attestation)
    return MarkStatus("valid", f"{body['level']} until {_iso(body['valid_until'])}, attested by "
                      f"{format_hub_id(attestation.author)}", attestation)


def mark_status(subject: bytes, scheme: str, attestations: Iterable[Record], charter: Record,
                revocations: Iterable[Record], at_ms: int, amendments: Iterable[Amendment] = ()) -> MarkStatus:
    """Whether ``subject`` holds a valid ``scheme`` mark at ``at_ms``, and why.

    Valid if any of its attestations is valid; otherwise the status of its newest attestation; ``none`` if
    there is no attestation for that hub and scheme at all.
    """
    mine = sorted((a for a in attestations if a.kind == "attestation" and a.body["subject"] == subject
                   and a.body["scheme"] == scheme), key=lambda a: (-a.created_ms, a.id))
    if not mine:
        return MarkStatus("none", f"no attestation of scheme {scheme!r} for {format_hub_id(subject)}", None)
    revs = [r for r in revocations if r.kind == "revocation"]
    amendments = list(amendments)
    statuses = [attestation_status(a, charter, revs, at_ms, amendments) for a in mine]
    for s in statuses:
        if s.status == "valid":
            return s
    return statuses[0]
