"""Records out of a :class:`~federation.driver.Federation`: pushing to a peer over its session (announce, then
only what it wants; records signed here unasked), the cache of recent records that relaying reads from, and
opening sessions before records need them. Functions of the Federation (``fed``), kept apart so the driver
module stays small; every decision is the node's (``SendAnnounce``, ``OpenSession``).
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .client import PeerUnavailable
from .wire import WireError

if TYPE_CHECKING:
    from .driver import Federation

__all__ = ["RAW_CACHE", "RawCache", "open_session", "push"]

log = logging.getLogger("coophub.federation")
#: Records a hub received or read lately, by id, so that relaying one to several peers reads it at most once
#: (an LRU: ~2 MB at the 1 KB of a typical guide).
RAW_CACHE = 2_000


class RawCache:
    """A bounded LRU of record id -> canonical bytes."""

    def __init__(self, capacity: int = RAW_CACHE) -> None:
        self.capacity = capacity
        self._raws: OrderedDict[bytes, bytes] = OrderedDict()

    def __len__(self) -> int:
        return len(self._raws)

    def add(self, pairs: Iterable[tuple[bytes, bytes]]) -> None:
        raws = self._raws
        for record_id, raw in pairs:
            raws[record_id] = raw
            raws.move_to_end(record_id)
        while len(raws) > self.capacity:
            raws.popitem(last=False)

    async def read(self, fed: Federation, ids: list[bytes]) -> list[bytes]:
        """The records of ``ids`` that ``fed``'s store holds, in that order: from the cache where they are
        in it, the rest read in one query (and kept, for the other peers)."""
        raws = self._raws
        missing = [i for i in ids if i not in raws]
        got: dict[bytes, bytes] = {}
        if missing:
            read = await fed.store.read(fed.store.raws_by_ids, missing)
            got = {hashlib.sha256(raw).digest(): raw for raw in read}
            self.add(got.items())
        return [r for i in ids if (r := raws.get(i) or got.get(i)) is not None]


async def push(fed: Federation, peer: str, ids: list[bytes], *, announce: bool, unasked: list[bytes]) -> None:
    """Announce ``ids``, then send only the records the peer wants (PRODUCT.md §3: only what it lacks), with
    the ``unasked`` ones (signed here just now: ``SendAnnounce.unasked``); ``announce`` False: an
    anti-entropy ``SendRecords``, sent as they are. The node hears how it ended."""
    client = fed.client
    assert client is not None
    before = client.bytes_out_to(peer)
    delivered = False
    try:
        want = ids
        if announce:
            want = list(unasked)
            if ids:
                want += await client.announce(peer, ids)
                fed.stats["push_announce"] += 1
        if want:
            raws = await fed.raws.read(fed, want)
            await client.push(peer, raws)
            fed.stats["push_records"] += len(raws)
        delivered = True
    except (PeerUnavailable, WireError) as exc:
        log.info("push to %s failed: %s", peer, exc)
    finally:
        # Reported even when something else went wrong: the node sends a peer one announce at a time.
        if not fed._stopped:
            sent = max(0, client.bytes_out_to(peer) - before)
            fed._act(fed.node.push_finished(peer, [*ids, *unasked], delivered, fed.now_ms(),
                                            announced=announce, bytes_out=sent))


async def open_session(fed: Federation, url: str) -> None:
    """Open a session to ``url`` before any record needs it (``FederationNode.dial_due``)."""
    client = fed.client
    assert client is not None
    ok = False
    try:
        await client.conn(url)
        ok = True
    except PeerUnavailable as exc:
        log.info("no session with %s yet: %s", url, exc)
    finally:
        if not fed._stopped:
            fed.node.dial_finished(url, ok, fed.now_ms())
