"""Blobs on demand, the I/O half: a guide's attachment this hub lacks is fetched from peers by hash, checked
against that hash and stored. Which peers to ask, and what a wrong blob costs its sender, are the node's
decisions (``FederationNode.blob_peers``, ``FederationNode.blob_mismatch``). A function of the
:class:`~federation.driver.Federation` (``fed``), kept apart so the driver module stays small.
"""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING

from protocol.errors import ProtocolError

from .client import PeerUnavailable

if TYPE_CHECKING:
    from .driver import Federation

__all__ = ["BLOB_PEERS_TRIED", "fetch"]

log = logging.getLogger("coophub.federation")
#: Peers asked for one missing blob, one after another: the guide's author first, then healthy peers. A blob
#: is asked of a few peers only, so one download request costs this hub a bounded number of requests.
BLOB_PEERS_TRIED = 4


async def fetch(fed: Federation, digest: bytes, author: bytes) -> bytes | None:
    """Ask peers for the blob ``digest`` in the node's order; store and return the first copy whose hash
    matches (None when no peer asked has it, or it cannot be stored). ``author``: the guide's hub."""
    assert fed.client is not None
    for url in fed.node.blob_peers(author, BLOB_PEERS_TRIED):
        try:
            data = await fed.client.blob(url, digest)
        except PeerUnavailable as exc:
            log.info("blob %s not fetched from %s: %s", digest.hex()[:12], url, exc)
            continue
        if hashlib.sha256(data).digest() != digest:
            # The name is the hash, so the peer provably sent the wrong bytes: refused, and scored.
            log.warning("peer %s sent a blob that does not match its hash %s", url, digest.hex())
            fed.stats["blobs_refused"] += 1
            fed._act(fed.node.blob_mismatch(url, fed.now_ms()))
            continue
        try:
            await fed.store.read(fed.store.put_blob, data, digest)
        except (ProtocolError, ValueError, OSError) as exc:  # over max_blob_bytes, or the disk failed
            log.warning("blob %s fetched from %s not stored: %s", digest.hex()[:12], url, exc)
            return None
        fed.stats["blobs_fetched"] += 1
        return data
    return None
