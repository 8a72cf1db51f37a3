"""Fixtures for hub tests: a fresh Store on a real SQLite file, and one holding a small sample association."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.store import Store

from .factory import Sample, raws, sample


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "hub.sqlite3"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    """An empty store; closed after the test."""
    s = Store(db_path, blobs_dir=db_path.parent / "blobs")
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def sample_assoc() -> Sample:
    return sample()


@pytest.fixture
def loaded(store: Store, sample_assoc: Sample) -> tuple[Store, Sample]:
    """A store holding every record of :func:`factory.sample`, all accepted."""
    results = store.ingest(raws(sample_assoc.records), now_ms=sample_assoc.a.now)
    assert [r.status for r in results] == ["accepted"] * len(results), results
    return store, sample_assoc
