"""The hub: storage (records, derived state, directory search), blobs and the hub's home directory.

Public surface: :class:`Store` (docs/dev/hub-contract.md), its result and query types, and the home directory.
"""

from __future__ import annotations

from .home import Home, HomeError, HubConfig
from .store import DirectoryQuery, IngestResult, Store

__all__ = ["DirectoryQuery", "Home", "HomeError", "HubConfig", "IngestResult", "Store"]
