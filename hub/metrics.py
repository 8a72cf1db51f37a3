"""``GET /metrics``: the hub's health in the Prometheus text format (PRODUCT.md §4), for an operator's scraper.

Values are read at scrape time from what the hub already keeps — record counts per kind, refusals per reason,
the ingest latency histogram (``Store.ingest_timings``), federation's traffic counters and its peers by state —
through prometheus-client's custom-collector interface, so nothing is counted twice and a hub that nobody
scrapes pays nothing. The page is public and read-only like ``/api/v1/status`` (it holds counts, no record
contents); put it behind the reverse proxy's access rules if the operator prefers.

Federation adds its own families by appending a callable to ``app[COLLECTORS_KEY]`` (typed, wired in
``federation.driver.setup``), so this module never imports federation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from .app import STORE_KEY, TRAFFIC_KEY
from .store import Store

__all__ = ["COLLECTORS_KEY", "CONTENT_TYPE", "MetricsSource", "setup"]

#: Prometheus' text exposition format, version 0.0.4.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: A source of extra metric families, called at scrape time.
MetricsSource = Callable[[], Iterable[Metric]]
COLLECTORS_KEY: web.AppKey[list[MetricsSource]] = web.AppKey("metrics_sources", list)


def _store_families(store: Store) -> Iterator[Metric]:
    counts = store.counts()
    records = GaugeMetricFamily("coophub_records", "Records held, by kind.", labels=["kind"])
    for kind, n in sorted(counts.items()):
        if kind not in ("records", "members", "refused", "deferred", "quarantined", "eligible"):
            records.add_metric([kind], n)
    yield records
    yield GaugeMetricFamily("coophub_members", "Member hubs of the association.", value=counts.get("members", 0))
    # The storage rule (docs/protocol.md §2.3): records held back, not stored.
    yield GaugeMetricFamily("coophub_deferred_records", "Records deferred until what they wait for arrives.",
                            value=counts.get("deferred", 0))
    yield GaugeMetricFamily("coophub_quarantined_profiles", "Applicants' profiles waiting for a sponsor.",
                            value=counts.get("quarantined", 0))
    refused = CounterMetricFamily("coophub_refused_records", "Records refused, by reason.", labels=["reason"])
    by_reason: dict[str, int] = {}
    for row in store.refused_summary():
        by_reason[row["reason"]] = by_reason.get(row["reason"], 0) + int(row["count"])
    for reason, n in sorted(by_reason.items()):
        refused.add_metric([reason], n)
    yield refused
    buckets, total_s, _, ingested = store.ingest_timings.snapshot()
    yield HistogramMetricFamily(
        "coophub_ingest_seconds", "Time of one ingest call, from decoding to COMMIT.",
        buckets=[(_bound(b), n) for b, n in buckets], sum_value=total_s)
    yield CounterMetricFamily("coophub_ingested_records", "Records passed to ingest, whatever the outcome.",
                              value=ingested)


def _bound(value: float) -> str:
    return "+Inf" if value == float("inf") else repr(value)


def _traffic_families(traffic: dict[str, int]) -> Iterator[Metric]:
    family = CounterMetricFamily("coophub_federation_events", "Federation traffic since start, by counter "
                                 "(requests and bytes made and served, records pushed and received, sessions).",
                                 labels=["counter"])
    for name, value in sorted(traffic.items()):
        family.add_metric([name], value)
    yield family


class _Collector(Collector):
    def __init__(self, app: web.Application) -> None:
        self.app = app

    def collect(self) -> Iterable[Metric]:
        yield from _store_families(self.app[STORE_KEY])
        if TRAFFIC_KEY in self.app:
            yield from _traffic_families(self.app[TRAFFIC_KEY]())
        for source in self.app.get(COLLECTORS_KEY, []):
            yield from source()


async def get_metrics(request: web.Request) -> web.Response:
    registry: CollectorRegistry = request.app[_REGISTRY_KEY]
    store = request.app[STORE_KEY]
    body = await store.read(generate_latest, registry)  # reads the database: off the event loop
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


_REGISTRY_KEY: web.AppKey[CollectorRegistry] = web.AppKey("metrics_registry", CollectorRegistry)


def setup(app: web.Application) -> None:
    """Serve ``GET /metrics`` from a registry of this app's own (never the process-global one: tests and the
    demo run several hubs in one process)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(app))
    app[_REGISTRY_KEY] = registry
    if COLLECTORS_KEY not in app:
        app[COLLECTORS_KEY] = []
    app.router.add_get("/metrics", get_metrics)

