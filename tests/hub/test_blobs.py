"""hub/blobs.py: content-addressed, atomic, verified on write and on read."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest

from hub.blobs import BlobStore
from hub.store import Store
from protocol import TooLargeError


def test_round_trip_and_layout(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path / "blobs", max_bytes=1024)
    data = b"a checklist"
    digest = blobs.put(data)
    assert digest == hashlib.sha256(data).digest()
    text = digest.hex()
    assert (tmp_path / "blobs" / text[:2] / text[2:]).read_bytes() == data
    assert blobs.get(digest) == data and blobs.has(digest)
    assert blobs.put(data) == digest  # idempotent
    assert [p.name for p in (tmp_path / "blobs" / text[:2]).iterdir()] == [text[2:]]  # no temp files left


def test_limits_and_expected_hash(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path, max_bytes=4)
    with pytest.raises(TooLargeError):
        blobs.put(b"12345")
    with pytest.raises(ValueError, match="expected"):
        blobs.put(b"1234", expected=bytes(32))
    with pytest.raises(ValueError):
        blobs.get(b"short")
    assert blobs.get(bytes(32)) is None
    assert list(tmp_path.iterdir()) == []


def test_a_corrupt_blob_is_not_served(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blobs = BlobStore(tmp_path, max_bytes=1024)
    digest = blobs.put(b"original")
    blobs.path(digest).write_bytes(b"tampered")
    with caplog.at_level(logging.ERROR, logger="hub.blobs"):
        assert blobs.get(digest) is None
    assert "corrupt" in caplog.text
    assert blobs.put(b"original") == digest  # re-putting repairs it
    assert blobs.get(digest) == b"original"


def test_store_blob_api(store: Store) -> None:
    digest = store.put_blob(b"\x00" * 100)
    assert store.get_blob(digest) == b"\x00" * 100
    assert store.get_blob(hashlib.sha256(b"other").digest()) is None


def test_store_finds_the_guide_that_names_a_blob(tmp_path: Path) -> None:
    """Store.attachment (hub/queries.py): which stored guide names a hash as an attachment — the check that
    lets a hub fetch a missing blob from peers (federation/driver.py) only for hashes it has reason to want."""
    from tests.hub.factory import Association, raws

    a = Association.create()
    with Store(tmp_path / "hub.sqlite3", blobs_dir=tmp_path / "blobs") as store:
        data = b"%PDF-1.4 a checklist"
        digest = hashlib.sha256(data).digest()
        first = a.guide(a.founders[0], "Lone working")
        attached = a.record(a.founders[0], "guide", {
            "title": "Checklist", "summary": "With a file.", "body": "# See the file\n", "license": "CC-BY-4.0",
            "tags": ["safety"], "language": "en", "supersedes": first.id,
            "attachments": [{"name": "c.pdf", "media_type": "application/pdf", "size": len(data),
                             "hash": digest}]})
        results = store.ingest(raws([a.charter, first, attached]), now_ms=a.now)
        assert [r.status for r in results] == ["accepted"] * 3, results
        meta = store.attachment(digest)
        assert meta == {"name": "c.pdf", "media_type": "application/pdf", "size": len(data), "hash": digest,
                        "author": a.founders[0].public, "guide": attached.id}
        # 32 bytes that occur in a guide, but not as an attachment's hash (here: its supersedes id).
        assert store.attachment(first.id) is None
        assert store.attachment(bytes(32)) is None
        assert store.put_blob(data, digest) == digest and store.get_blob(digest) == data
        with pytest.raises(ValueError, match="expected"):
            store.put_blob(b"other bytes", digest)
