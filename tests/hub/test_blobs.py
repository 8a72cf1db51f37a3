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
