"""GET /metrics (hub/metrics.py): the Prometheus text format, parsed back by prometheus-client's own parser."""

from __future__ import annotations

import time
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from hub.app import make_app
from hub.home import Home
from hub.store import Store
from protocol import HubKey, build_record


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def test_metrics_report_records_refusals_ingest_latency_and_peers(tmp_path: Path) -> None:
    home = Home.create(tmp_path / "h", "Alpha Care")
    charter = build_record(home.key, bytes(32), "charter", {
        "name": "Care", "founders": [home.key.public], "endorsements_needed": 1, "schemes": []}, now_ms())
    home.config.association_id = charter.id.hex()
    home.config.peers = ["http://127.0.0.1:9"]  # a peer that never answers: one "new" or "failing" peer
    home.save_config()
    store = Store(home.db_path, limits=home.limits(), blobs_dir=home.blobs_dir, association=charter.id)
    guide = {"title": "T", "summary": "S", "body": "B", "license": "CC0-1.0", "tags": [], "language": "en"}
    good = [build_record(home.key, charter.id, "guide", {**guide, "title": f"T{i}"}, now_ms()) for i in range(3)]
    forged = bytearray(build_record(HubKey.generate(), charter.id, "guide", guide, now_ms()).raw)
    forged[-1] ^= 1
    store.ingest([charter.raw, *(g.raw for g in good), bytes(forged)], now_ms=now_ms(), source="import")
    client = TestClient(TestServer(make_app(home, store, web_pages=False), host="127.0.0.1", port=0))
    await client.start_server()
    try:
        async with client.get("/metrics") as resp:
            assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            text = await resp.text()
    finally:
        await client.close()
        store.close()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    records = {s.labels["kind"]: s.value for s in families["coophub_records"].samples}
    assert records == {"charter": 1, "guide": 3}
    assert families["coophub_members"].samples[0].value == 1
    refused = {s.labels["reason"]: s.value for s in families["coophub_refused_records"].samples}
    assert refused == {"invalid": 1}
    count = [s for s in families["coophub_ingest_seconds"].samples if s.name == "coophub_ingest_seconds_count"]
    assert count and count[0].value == 1  # one ingest call
    peers = {s.labels["state"]: s.value for s in families["coophub_peers"].samples}
    assert sum(peers.values()) == 1 and peers["dropped"] == 0
