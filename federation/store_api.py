"""The seam between the hub and federation: exactly the store methods federation calls, as a typed Protocol.

``hub.store.Store`` satisfies :class:`FederationStore` structurally (no inheritance; a test checks every name
and signature, tests/federation/test_store_api.py). ``hub.app.make_app`` wires the two together in one place,
``federation.driver.setup(app)``, imported normally (STYLE.md "Seams are typed").

Federation reads and writes the store only through these methods; ``read`` runs any of the synchronous ones
in the store's thread pool (``await store.read(store.held, ids)``), and ``ingest_async`` is the one way in for
every record a peer sends (STYLE.md "One way in").
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

from protocol.limits import Limits
from protocol.records import Record

__all__ = ["FederationStore", "IngestOutcome", "Listener", "STORE_METHODS"]

T = TypeVar("T")


class IngestOutcome(Protocol):
    """What federation reads of one ingest result (``hub.ingest.IngestResult``)."""

    @property
    def id(self) -> str | None:
        """The record id in hex (None when the bytes were not even a record)."""

    @property
    def status(self) -> str:
        """"accepted", "duplicate", "refused", "deferred" or "quarantined"."""

    @property
    def reason(self) -> str | None:
        """One of ``protocol.errors.REASONS`` when refused, deferred or quarantined."""


#: Called after every ingest with (results, source); see ``hub.store.Listener``.
Listener = Callable[[list[Any], str], None]


@runtime_checkable
class FederationStore(Protocol):
    """The store methods federation uses (``federation/driver.py``, ``peering.py``, ``routes.py``,
    ``catchup.py``); nothing else of the hub's store is federation's business."""

    limits: Limits
    #: The association this hub joined by id before it holds the charter (config ``association_id``).
    expected_association: bytes | None

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a synchronous store method in the store's thread pool."""

    async def ingest_async(self, raws: Sequence[bytes], *, now_ms: int, source: str = "local",
                           origin: bytes | None = None) -> list[Any]:
        """Check and store records (the one way in); results in input order."""

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(results, source)`` after every ingest."""

    def retry_due(self, now_ms: int) -> list[Any]:
        """Retry deferred records whose time has come; listeners hear about those accepted."""

    def association_id(self) -> bytes | None:
        """The charter's id, else the expected association, else None."""

    def charter(self) -> Record | None:
        """The stored charter."""

    def counts(self) -> dict[str, int]:
        """Records per kind, plus "members" and the storage rule's counts."""

    def count(self) -> int:
        """How many records are stored."""

    def member_peer_urls(self) -> list[str]:
        """Peer URLs named in current members' current profiles."""

    def is_eligible(self, hub: bytes) -> bool:
        """Whether ``hub``'s records are stored (a member, or sponsored)."""

    def applicant_raw(self, hub: bytes) -> bytes | None:
        """The canonical bytes of ``hub``'s quarantined profile, if this hub holds one."""

    def held(self, ids: Iterable[bytes]) -> set[bytes]:
        """The subset of ``ids`` held in any form: stored, deferred or quarantined."""

    def raws_by_ids(self, ids: Iterable[bytes]) -> list[bytes]:
        """The stored raws among ``ids``."""

    def iter_raws(self, after: tuple[int, bytes] | None, limit: int) -> list[tuple[int, bytes, bytes]]:
        """Up to ``limit`` (created_ms, id, raw) after ``after`` in (created_ms, id) order."""

    def sync_items_after(self, rowid: int) -> tuple[list[tuple[int, bytes]], int]:
        """(created_ms, id) of records stored after row ``rowid``, and the last row."""

    def sync_items_stream(self) -> contextlib.AbstractContextManager[tuple[int, Iterator[tuple[int, bytes]]]]:
        """(the last row, every (created_ms, id) in order) from one snapshot."""

    def list_peers(self) -> list[dict[str, Any]]:
        """Every saved peer."""

    def upsert_peers(self, rows: Iterable[tuple[str, dict[str, Any]]]) -> None:
        """Save several peers' data (url, data), in one transaction."""

    def put_blob(self, data: bytes, expected: bytes | None = None) -> bytes:
        """Store a blob (checked against ``expected``); returns its hash."""

    def get_blob(self, digest: bytes) -> bytes | None:
        """A blob's bytes, or None."""


#: The method names of :class:`FederationStore` (the structural test checks each one's signature).
STORE_METHODS = tuple(sorted(name for name, value in vars(FederationStore).items()
                             if callable(value) and not name.startswith("_")))
