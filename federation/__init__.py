"""Federation: peers, push gossip, Negentropy anti-entropy, and the aiohttp driver that runs them.

The core (``peers``, ``gossip``, ``sync``, ``negentropy``, ``wire``) is sans-IO; ``client``, ``routes`` and
``driver`` do the network I/O.
"""

from __future__ import annotations

from .gossip import Gossip, PeerDropped, PushAction
from .negentropy import Negentropy, NegentropyError, Storage
from .peers import PeerState, PeerTable
from .sync import Done, Fetch, Offer, SendReconcile, SyncSession

__all__ = [
    "Done", "Fetch", "Gossip", "Negentropy", "NegentropyError", "Offer", "PeerDropped", "PeerState",
    "PeerTable", "PushAction", "SendReconcile", "Storage", "SyncSession",
]
