"""Federation: peers, push gossip, Negentropy anti-entropy, and the aiohttp driver that runs them.

The core (``node`` over ``peers`` and ``gossip``; ``sync``, ``negentropy``, ``session``, ``wire``) is sans-IO;
``client``, ``transport``, ``peering``, ``routes`` and ``driver`` do the network I/O, and ``store_api`` types the
seam to the hub's store.
"""

from __future__ import annotations

from .gossip import Gossip, PeerDropped, PushAction
from .negentropy import Negentropy, NegentropyError, Storage
from .node import FederationNode
from .peers import PeerState, PeerTable
from .store_api import FederationStore
from .sync import Done, Fetch, Offer, SendReconcile, SyncSession

__all__ = [
    "Done", "FederationNode", "FederationStore", "Fetch", "Gossip", "Negentropy", "NegentropyError", "Offer",
    "PeerDropped", "PeerState", "PeerTable", "PushAction", "SendReconcile", "Storage", "SyncSession",
]
