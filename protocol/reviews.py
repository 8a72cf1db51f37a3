"""Association-reviewed guides (docs/protocol.md §6.11).

A guide *version* (one guide record id; a new version starts again from zero) is **association-reviewed** when
at least ``reviews_needed`` distinct members — other than the guide's author — have a live review of exactly
that id. A review is live unless its author revoked it. Members and ``reviews_needed`` are those in force now
(the hub's current membership and terms): a review by a hub that has left stops counting, and an amendment that
raises the number applies to every guide at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .derived import revoked_ids
from .records import Record

__all__ = ["ReviewState", "review_state"]


@dataclass(frozen=True, slots=True)
class ReviewState:
    guide_id: bytes
    approvals: tuple[bytes, ...]  # member hubs whose live review counts, by hub id
    review_ids: tuple[bytes, ...]  # their reviews, in the same order
    needed: int
    reviewed: bool


def review_state(guide: Record, reviews: Iterable[Record], revocations: Iterable[Record],
                 members: frozenset[bytes], needed: int) -> ReviewState:
    """Who approves ``guide`` (this exact version) and whether that makes it association-reviewed."""
    mine = [r for r in reviews if r.kind == "review" and r.body["guide"] == guide.id
            and r.association == guide.association]
    revoked = revoked_ids(revocations, {r.id: r for r in mine})
    by_hub: dict[bytes, Record] = {}
    for r in sorted(mine, key=lambda r: (r.created_ms, r.id)):
        if r.id not in revoked and r.author in members and r.author != guide.author:
            by_hub.setdefault(r.author, r)  # the earliest live review of each member
    hubs = tuple(sorted(by_hub))
    return ReviewState(guide.id, hubs, tuple(by_hub[h].id for h in hubs), needed, len(hubs) >= needed)
