"""A store holding a small association with everything the open-data formats draw on: members' profiles (one
from a peer with an invalid e-mail and URL), a valid quality mark, an awarded and a cancelled joint purchase and
an open one."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hub.store import Store
from protocol import Record

from ..hub.factory import DAY, Sample, raws, sample


@dataclass
class World:
    store: Store
    s: Sample
    awarded: Record
    cancelled: Record
    open_offer: Record
    now: int


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    s = sample()
    a = s.a
    f0, f1, f2 = a.founders
    # Profiles peers publish are stored by the protocol's rules only: this e-mail and URL pass the schema
    # (any text; http:// and no spaces) but not the open-data checks (docs/opendata.md).
    s.add("profile2b", a.record(f2, "profile", {
        "name": "Powys Supported Living", "regions": ["Powys"], "peer_urls": [],
        "services": [{"name": "Supported housing", "category": "housing"}],
        "contact": {"email": "post at powys", "phone": "+44 1597 000000"},
        "website": "http://powys.example:99999/"}))
    s.add("assessor_profile", a.profile(a.assessor, "Arolygiaeth Gofal Cymru", regions=["Wales"]))
    s.add("pledge1", a.pledge(f1, s["offer"], 40))
    s.add("close", a.close(f1, s["offer"], [s["pledge0"], s["pledge2"], s["pledge1"]]))
    gloves = s.add("offer2", a.offer(f0, "Aprons", category="health", min_total=10, tiers=[[1, 250]]))
    s.add("pledge_aprons", a.pledge(f2, gloves, 5))
    s.add("close2", a.close(f0, gloves, [s["pledge_aprons"]], outcome="cancelled"))
    s.add("offer3", a.offer(f2, "Hoists", deadline=a.clock + 60 * DAY))
    store = Store(tmp_path / "hub.sqlite3", blobs_dir=tmp_path / "blobs")
    results = store.ingest(raws(s.records), now_ms=a.now)
    assert [r.status for r in results] == ["accepted"] * len(results), results
    try:
        yield World(store, s, s["offer"], gloves, s["offer3"], a.now)
    finally:
        store.close()
