"""Catch-up: a new or long-offline hub streams a peer's records page by page over the peer session."""

from __future__ import annotations

import time
from collections.abc import Callable

from protocol.limits import Limits

from .client import PeerClient
from .store_api import FederationStore

__all__ = ["catch_up"]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def catch_up(client: PeerClient, store: FederationStore, peer: str, limits: Limits, *,
                   now_ms: Callable[[], int] = _now_ms,
                   progress: Callable[[int, int], None] | None = None) -> int:
    """Stream every record of ``peer`` in (created_ms, id) pages of ``limits.fetch_batch`` and ingest them.

    For a new or long-offline hub this is cheaper than reconciliation: no id lists, one request per page.
    ``progress(done, total)`` is called after each page (the CLI draws a bar with it). Returns records accepted.
    Bounded: at most ``total / fetch_batch + 10`` pages, so a peer that keeps growing cannot hold us forever.

    Raises:
        PeerUnavailable, WireError: the peer failed or sent a malformed page.
    """
    info = await client.info(peer)
    total = max(info.records, 1)
    after: tuple[int, bytes] | None = None
    accepted = done = 0
    # The charter first, by id: every other record is checked against it, and pages come in creation-time
    # order, where a record from a hub whose clock runs slow (or an archive imported later) may sort first.
    expected = getattr(store, "expected_association", None)
    if expected is not None and await store.read(store.charter) is None:
        charter = await client.fetch(peer, [expected])
        if charter:
            results = await store.ingest_async(charter, now_ms=now_ms(), source=peer)
            accepted += sum(1 for r in results if r.status == "accepted")
    for _ in range(total // max(limits.fetch_batch, 1) + 10):
        raws, after = await client.page(peer, after, limits.fetch_batch)
        if raws:
            results = await store.ingest_async(raws, now_ms=now_ms(), source=peer)
            accepted += sum(1 for r in results if r.status == "accepted")
            done += len(raws)
        if progress is not None:
            progress(done, total)
        if after is None:
            break
    return accepted
