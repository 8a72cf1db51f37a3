"""Published = enforced (issue 9, STYLE.md "Errors and limits"): every field of ``protocol.limits.Limits`` is
published in ``GET /fed/v1/info`` and has a prover here that shows a real hub enforces exactly it.

:data:`PROVERS` maps each field to an async function that starts a real hub (hub.bounds.BoundedRunner on
127.0.0.1, as ``coophub serve`` runs it) with that limit set to a small value and checks that a request *at*
the limit is accepted and one *over* it refused, with the documented status. A field whose enforcement lives
below HTTP (federation scheduling, scores, the storage rule's caps) is proved by a named test elsewhere
(:data:`ELSEWHERE`), which must exist and name the field. :func:`test_every_published_limit_has_a_prover`
fails as soon as a field is added without one. Times are proved by margins (well within accepted, never or far
too slow refused), never by a wall-clock assertion on how fast the hub is.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import inspect
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import msgpack
import pytest

from federation import wire
from federation.negentropy import Negentropy, NegentropyError
from federation.negentropy import Storage as NegentropyStorage
from protocol import HubKey, Limits, build_record
from protocol.errors import TooLargeError

from .live import LiveHub, live_hub, raw_close, raw_connect

Prover = Callable[[Path], Awaitable[None]]
PROVERS: dict[str, Prover] = {}

#: Fields proved by an existing test below HTTP: "path::test" (the test must exist and mention the field).
_PEERS = "tests/federation/test_peers.py::"
_RULE = "tests/hub/test_storage_rule.py::"
_SESSIONS = "tests/federation/test_session_network.py::"
ELSEWHERE: dict[str, str] = {
    "max_depth": "tests/protocol/test_encoding.py::test_pack_refuses_nesting_beyond_max_depth",
    "ingest_batch": "tests/hub/test_ingest.py::test_large_calls_are_split_into_batches",
    "push_batch": "tests/federation/test_gossip.py::test_batching_respects_push_batch",
    "push_fanout": "tests/federation/test_gossip.py::test_local_record_goes_to_fanout_peers_once",
    "sync_interval_ms": _PEERS + "test_sync_delay_is_jittered_within_a_quarter",
    "backoff_base_ms": _PEERS + "test_backoff_doubles_up_to_the_max",
    "backoff_max_ms": _PEERS + "test_backoff_doubles_up_to_the_max",
    "peer_score_start": _PEERS + "test_invalid_records_lower_the_score_and_drop_at_the_threshold",
    "peer_score_invalid_cost": _PEERS + "test_invalid_records_lower_the_score_and_drop_at_the_threshold",
    "peer_score_drop_at": _PEERS + "test_invalid_records_lower_the_score_and_drop_at_the_threshold",
    "credit_settle_ms": "tests/federation/test_aid_network.py",  # the whole module is about it
    "max_deferred_records": _RULE + "test_deferred_records_stay_within_their_caps_under_a_flood",
    "max_deferred_bytes": _RULE + "test_deferred_bytes_cap",
    "max_deferred_per_source": _RULE + "test_deferred_records_stay_within_their_caps_under_a_flood",
    "max_quarantine_profiles": _RULE + "test_quarantine_stays_within_its_caps_under_a_flood",
    "max_quarantine_bytes": _RULE + "test_quarantine_stays_within_its_caps_under_a_flood",
    # Peer sessions (federation/session.py, federation/transport.py), proved between real hubs.
    "session_batch_ms": _SESSIONS + "test_a_burst_is_batched_per_peer_and_one_session_carries_it",
    "session_inflight_bytes": _SESSIONS + "test_session_concurrency_and_session_inflight_bytes_hold_back_a_flood",
    "session_concurrency": _SESSIONS + "test_session_concurrency_and_session_inflight_bytes_hold_back_a_flood",
    "peer_records_per_s": _SESSIONS + "test_records_over_the_per_peer_quota_are_rate_limited_not_scored",
    "peer_bytes_per_s": "tests/federation/test_session.py::test_a_token_bucket_spreads_a_burst_at_its_rate",
    "max_sessions": _SESSIONS + "test_max_sessions_and_session_handshake_ms_bound_what_a_stranger_holds",
    "session_handshake_ms": _SESSIONS + "test_max_sessions_and_session_handshake_ms_bound_what_a_stranger_holds",
    "max_applicant_sessions": _SESSIONS + "test_strangers_keys_fill_only_the_applicants_sessions",
}

ROOT = Path(__file__).resolve().parents[2]


def proves(*fields: str) -> Callable[[Prover], Prover]:
    def register(fn: Prover) -> Prover:
        for name in fields:
            assert name not in PROVERS, f"{name} has two provers"
            PROVERS[name] = fn
        return fn

    return register


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _charter(key: HubKey, created_ms: int, name: str = "Care Co-ops") -> bytes:
    body = {"name": name, "founders": [key.public], "endorsements_needed": 1, "schemes": []}
    return build_record(key, bytes(32), "charter", body, created_ms).raw


async def _publish_raw(hub: LiveHub, raw: bytes) -> tuple[int, dict[str, str]]:
    return await hub.json("POST", "/api/v1/publish", json={"record": raw.hex()}, headers=hub.auth)


def _json_of_size(size: int) -> bytes:
    """A JSON object of exactly ``size`` bytes."""
    base = b'{"pad": ""}'
    assert size >= len(base)
    return b'{"pad": "' + b"x" * (size - len(base)) + b'"}'


async def _chunked(data: bytes, piece: int = 97) -> object:
    for i in range(0, len(data), piece):
        yield data[i:i + piece]


# -- the registry itself -------------------------------------------------------------------------------------


async def test_published_limits_are_the_enforced_ones(tmp_path: Path) -> None:
    """GET /fed/v1/info publishes every field of the Limits the app enforces, with its value (overrides too)."""
    async with live_hub(tmp_path, {"http_rate_burst": 77, "max_json_depth": 9}) as hub:
        status, _, body = await hub.request("GET", "/fed/v1/info")
        assert status == 200
        published = msgpack.unpackb(body, raw=False)["limits"]
        assert published == dataclasses.asdict(hub.limits)
        assert published["http_rate_burst"] == 77 and published["max_json_depth"] == 9
        assert set(published) == {f.name for f in dataclasses.fields(Limits)}


def test_every_published_limit_has_a_prover() -> None:
    fields = {f.name for f in dataclasses.fields(Limits)}
    missing = sorted(fields - set(PROVERS) - set(ELSEWHERE))
    assert not missing, f"limits without a prover in tests/hub/test_bounds.py: {missing}"
    assert not set(PROVERS) & set(ELSEWHERE)
    assert not (set(PROVERS) | set(ELSEWHERE)) - fields, "a prover for a field that no longer exists"


@pytest.mark.parametrize("field", sorted(ELSEWHERE))
def test_elsewhere_provers_exist_and_name_their_field(field: str) -> None:
    path, _, name = ELSEWHERE[field].partition("::")
    assert (ROOT / path).is_file(), ELSEWHERE[field]
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    if name:
        source = inspect.getsource(getattr(module, name))
    else:  # the whole module is about it
        source = inspect.getsource(module)
    assert field in source, f"{ELSEWHERE[field]} does not mention {field}"


# -- body sizes ----------------------------------------------------------------------------------------------


@proves("max_api_body_bytes")
async def _api_body(tmp_path: Path) -> None:
    async with live_hub(tmp_path, {"max_api_body_bytes": 1000}) as hub:
        for send in (lambda b: b, _chunked):  # declared length, and chunked (counted while it streams in)
            status, data = await hub.json("POST", "/api/v1/publish", data=send(_json_of_size(1000)), headers=hub.auth)
            assert status == 400 and data["error"] == "invalid", data  # read whole, then refused for its content
            status, data = await hub.json("POST", "/api/v1/publish", data=send(_json_of_size(1001)), headers=hub.auth)
            assert (status, data["error"]) == (413, "too-large"), data


@proves("max_blob_bytes")
async def _blob_body(tmp_path: Path) -> None:
    async with live_hub(tmp_path, {"max_blob_bytes": 3000}) as hub:
        status, data = await hub.json("POST", "/api/v1/blobs", data=b"b" * 3000, headers=hub.auth)
        assert status == 200 and data["size"] == 3000, data
        status, data = await hub.json("POST", "/api/v1/blobs", data=b"b" * 3001, headers=hub.auth)
        assert (status, data["error"]) == (413, "too-large"), data
        # Without the token an upload gets only the API's body limit, and is refused for the token after that.
        status, data = await hub.json("POST", "/api/v1/blobs", data=b"b" * 3000)
        assert status == 401, data


@proves("max_fed_body_bytes")
async def _fed_body(tmp_path: Path) -> None:
    # Any route under /fed/ (today's POST routes, or one that does not exist) has the same body limit.
    async with live_hub(tmp_path, {"max_fed_body_bytes": 2000}) as hub:
        for path in ("/fed/v1/push", "/fed/v1/no-such-route"):
            for send in (lambda b: b, _chunked):
                status, data = await hub.json("POST", path, data=send(b"\x00" * 2000))
                assert status in (400, 404, 405, 410), data  # 410: the old peer routes (use the session)
                status, data = await hub.json("POST", path, data=send(b"\x00" * 2001))
                assert (status, data["error"]) == (413, "too-large"), data


async def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit(tmp_path: Path) -> None:
    """Issue 9: a chunked body was read up to 8 MiB before a 413 even where the limit is 256 KiB. Now the 413
    comes while the client is still sending, a chunk after the limit (the body is never finished here)."""
    async with live_hub(tmp_path) as hub:
        limit = hub.limits.max_api_body_bytes
        raw = await raw_connect(hub)
        await raw.send(b"POST /api/v1/publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        piece = 16 * 1024
        chunk = f"{piece:x}\r\n".encode() + b"x" * piece + b"\r\n"
        sent = 0
        while sent <= limit + piece:
            await raw.send(chunk)
            sent += piece
        status, headers, body = await raw.response()
        assert status == 413 and json.loads(body)["error"] == "too-large"
        assert headers["connection"] == "close"
        assert sent < 2 * limit < hub.limits.max_blob_bytes
        raw.close()


# -- JSON depth ----------------------------------------------------------------------------------------------


@proves("max_json_depth")
async def _json_depth(tmp_path: Path) -> None:
    async with live_hub(tmp_path, {"max_json_depth": 6}) as hub:
        at = b'{"kind": "profile", "body": ' + b"[" * 5 + b"]" * 5 + b"}"  # 6 levels: refused by its schema
        status, data = await hub.json("POST", "/api/v1/publish", data=at, headers=hub.auth)
        assert status in (400, 409) and "max_json_depth" not in data["detail"], data
        over = b'{"kind": "profile", "body": ' + b"[" * 6 + b"]" * 6 + b"}"
        status, data = await hub.json("POST", "/api/v1/publish", data=over, headers=hub.auth)
        assert (status, data["error"]) == (400, "invalid") and "max_json_depth" in data["detail"], data
        # Brackets inside strings are not nesting.
        text = b'{"kind": "profile", "body": {"name": "' + b"[{" * 50 + b'"}}'
        status, data = await hub.json("POST", "/api/v1/publish", data=text, headers=hub.auth)
        assert "max_json_depth" not in data["detail"], data


# -- records over HTTP: size, time bounds --------------------------------------------------------------------


@proves("max_record_bytes")
async def _record_bytes(tmp_path: Path) -> None:
    key = HubKey.generate()
    now = _now_ms()
    fits = _charter(key, now, "Care Co-ops")
    bigger = _charter(key, now, "Care Co-ops!")
    assert len(bigger) == len(fits) + 1
    async with live_hub(tmp_path, {"max_record_bytes": len(fits)}, name="a") as hub:
        status, data = await _publish_raw(hub, fits)
        assert status == 200 and data["status"] == "accepted", data
    async with live_hub(tmp_path, {"max_record_bytes": len(fits)}, name="b") as hub:
        status, data = await _publish_raw(hub, bigger)
        assert (status, data["error"]) == (422, "too-large"), data


@proves("min_created_ms")
async def _min_created(tmp_path: Path) -> None:
    key, floor = HubKey.generate(), _now_ms() - 3_600_000
    async with live_hub(tmp_path, {"min_created_ms": floor}, name="a") as hub:
        status, data = await _publish_raw(hub, _charter(key, floor))
        assert status == 200 and data["status"] == "accepted", data
    async with live_hub(tmp_path, {"min_created_ms": floor}, name="b") as hub:
        status, data = await _publish_raw(hub, _charter(key, floor - 1))
        assert (status, data["error"]) == (422, "invalid"), data
        # The default floor refuses the unset clock of issue 9 (created_ms = 0, 1970).
    async with live_hub(tmp_path, name="c") as hub:
        status, data = await _publish_raw(hub, _charter(key, 0))
        assert (status, data["error"]) == (422, "invalid"), data
        assert hub.limits.min_created_ms == 1_735_689_600_000


@proves("max_future_skew_ms")
async def _future_skew(tmp_path: Path) -> None:
    now, skew, key = _now_ms(), 60_000, HubKey.generate()
    async with live_hub(tmp_path, {"max_future_skew_ms": skew}, name="a", now_ms=lambda: now) as hub:
        status, data = await _publish_raw(hub, _charter(key, now + skew))
        assert status == 200 and data["status"] == "accepted", data
    async with live_hub(tmp_path, {"max_future_skew_ms": skew}, name="b", now_ms=lambda: now) as hub:
        status, data = await _publish_raw(hub, _charter(key, now + skew + 1))
        assert status == 202 and (data["status"], data["reason"]) == ("deferred", "future"), data


# -- the peer protocol's counts and the refusals log ---------------------------------------------------------


@proves("fetch_batch")
async def _fetch_batch(tmp_path: Path) -> None:
    # The receiver's count limits on a peer message (sans-IO: the same whatever carries the message).
    limits = dataclasses.replace(Limits(), fetch_batch=5)
    ids = [bytes([i]) * 32 for i in range(6)]
    assert wire.decode_ids(wire.encode({"from": "", "ids": ids[:5]}), limits, what="fetch")[1] == ids[:5]
    with pytest.raises(TooLargeError):
        wire.decode_ids(wire.encode({"from": "", "ids": ids}), limits, what="fetch")
    assert len(wire.decode_push(wire.encode({"from": "", "records": [b"r"] * 5}), limits)[1]) == 5
    with pytest.raises(TooLargeError):
        wire.decode_push(wire.encode({"from": "", "records": [b"r"] * 6}), limits)
    # The same bounds on the bodies of session frames (docs/protocol.md §8), which is how peers send them now.
    assert wire.ids_from({"ids": ids[:5]}, limits, what="fetch") == ids[:5]
    with pytest.raises(TooLargeError):
        wire.ids_from({"ids": ids}, limits, what="fetch")
    with pytest.raises(TooLargeError):
        wire.records_from({"records": [b"r"] * 6}, limits)


@proves("refused_sources", "refused_examples")
async def _refusals_log(tmp_path: Path) -> None:
    async with live_hub(tmp_path, {"refused_sources": 5, "refused_examples": 7}) as hub:
        for i in range(20):  # what members' sessions pushed (each peer's refusals counted under its source)
            await hub.store.ingest_async([b"\x93garbage-%d" % i], now_ms=_now_ms(), source=f"http://liar-{i}.example")
        summary = hub.store.refused_summary()
        sources = {r["source"] for r in summary}
        assert len(sources - {"other"}) == 5 and "other" in sources
        assert sum(r["count"] for r in summary) == 20
        assert next(r["count"] for r in summary if r["source"] == "other") == 15
        examples = hub.store.refused_examples()
        assert len(examples) == 7 and examples[0]["source"] == "http://liar-19.example"


async def test_the_network_page_stays_small_under_3000_garbage_pushes(tmp_path: Path) -> None:
    """Issue 9: 3,000 garbage pushes made 3,003 refusal rows and a 1.9 MB /network page."""
    async with live_hub(tmp_path, {"http_rate_burst": 10_000, "http_rate_per_s": 10_000}) as hub:
        for i in range(3000):  # what peers' sessions pushed, each refusal under its source
            await hub.store.ingest_async([b"\x93garbage-%d" % i], now_ms=_now_ms(), source=f"http://liar-{i}.example")
        status, _, page = await hub.request("GET", "/network")
        assert status == 200
        assert len(hub.store.refused_summary()) <= hub.limits.refused_sources + 1
        assert len(hub.store.refused_examples()) == hub.limits.refused_examples
        assert len(page) < 100_000, len(page)


# -- connections ---------------------------------------------------------------------------------------------


async def _served(hub: LiveHub, source: str = "127.0.0.1") -> bool:
    raw = await raw_connect(hub, source)
    try:
        await raw.send(b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, _ = await raw.response()
        return status == 200
    finally:
        await raw_close(hub, raw)


@proves("http_max_connections_per_address")
async def _connections_per_address(tmp_path: Path) -> None:
    async with live_hub(tmp_path, {"http_max_connections_per_address": 3}) as hub:
        idle = [await raw_connect(hub) for _ in range(2)]
        assert await _served(hub)  # the 3rd from this address: at the limit
        idle.append(await raw_connect(hub))
        over = await raw_connect(hub)  # the 4th: answered 503 and closed at once
        status, headers, body = await over.response()
        assert status == 503 and headers["retry-after"] == "1" and json.loads(body)["error"] == "rate-limited"
        assert await over.closed()
        over.close()
        assert hub.runner.guard.refused == 1
        assert await _served(hub, "127.0.0.2")  # another address is not affected
        await raw_close(hub, idle.pop())
        assert await _served(hub)  # room again
        for r in idle:
            r.close()


@proves("http_max_connections")
async def _connections_total(tmp_path: Path) -> None:
    async with live_hub(tmp_path, {"http_max_connections": 4, "http_max_connections_per_address": 4}) as hub:
        flood = [await raw_connect(hub, "127.0.0.2") for _ in range(3)]
        assert await _served(hub, "127.0.0.2")  # the 4th connection: at the limit
        flood.append(await raw_connect(hub, "127.0.0.2"))
        over = await raw_connect(hub, "127.0.0.2")  # the 5th, from the address holding them all: refused
        assert (await over.response())[0] == 503
        over.close()
        assert hub.runner.guard.refused == 1
        # An honest client from another address is served: an idle connection of the flood is closed for it.
        assert await _served(hub, "127.0.0.1")
        assert hub.runner.guard.shed == 1
        assert [await r.closed(timeout=0.2) for r in flood].count(True) == 1
        for r in flood:
            r.close()


@proves("http_header_timeout_ms")
async def _header_timeout(tmp_path: Path) -> None:
    async with live_hub(tmp_path, {"http_header_timeout_ms": 500}) as hub:
        slow = await raw_connect(hub)
        await slow.send(b"GET /api/v1/status HTTP/1.1\r\n")  # and never the rest (slowloris)
        prompt = await raw_connect(hub)
        await asyncio.sleep(0.05)  # well within the timeout
        await prompt.send(b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await prompt.response())[0] == 200
        assert await slow.closed(timeout=10)
        # After a reply, the next head must come within the timeout too (an idle keep-alive is closed).
        assert await prompt.closed(timeout=10)
        slow.close()
        prompt.close()


@proves("http_body_timeout_ms", "http_body_min_rate_bytes_per_s")
async def _body_timeout(tmp_path: Path) -> None:
    async with live_hub(tmp_path, {"http_body_timeout_ms": 400, "http_body_min_rate_bytes_per_s": 200}) as hub:
        async def post(step_bytes: int, steps: int, pause: float, total: int) -> int:
            raw = await raw_connect(hub)
            try:
                await raw.send(b"POST /fed/v1/push HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % total)
                answer = asyncio.create_task(raw.response())
                for _ in range(steps):
                    if answer.done():
                        break
                    try:
                        await raw.send(b"\x00" * step_bytes)
                    except ConnectionError:  # answered and closed already
                        break
                    await asyncio.sleep(pause)
                return (await answer)[0]
            finally:
                raw.close()

        # 20 bytes every 50 ms (400 bytes/s, twice the minimum rate) for 1.5 s: well past the base timeout,
        # kept alive by its rate; then read whole and refused (410: the old peer route says to use the session).
        assert await post(20, 30, 0.05, 600) == 410
        # 5 bytes every 100 ms (50 bytes/s, a quarter of the minimum): 408 once the deadline passes.
        assert await post(5, 100, 0.1, 500) == 408
        # A body that stops: 408.
        assert await post(10, 1, 0.0, 100) == 408


@proves("http_max_header_line_bytes")
async def _header_line(tmp_path: Path) -> None:
    # The request target and each header value (aiohttp's llhttp parser counts them so: max_line_size and
    # max_field_size); a longer one is 400 in JSON and the connection closed.
    async with live_hub(tmp_path, {"http_max_header_line_bytes": 300}) as hub:
        async def status_of(head: bytes) -> int:
            raw = await raw_connect(hub)
            try:
                await raw.send(head)
                status, _, body = await raw.response()
                if status == 400:
                    assert json.loads(body)["error"] == "invalid"
                return status
            finally:
                raw.close()

        for size, expect in ((300, 200), (301, 400)):
            value = b"X-Pad: " + b"p" * size
            assert await status_of(b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\n" + value + b"\r\n\r\n") == expect
            target = b"/api/v1/status?x=" + b"a" * (size - len(b"/api/v1/status?x="))
            assert len(target) == size
            assert await status_of(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n") == expect


@proves("http_max_headers")
async def _header_count(tmp_path: Path) -> None:
    async with live_hub(tmp_path, {"http_max_headers": 10}) as hub:
        for count, expect in ((10, 200), (11, 400)):
            raw = await raw_connect(hub)
            lines = b"Host: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(count - 1))
            await raw.send(b"GET /api/v1/status HTTP/1.1\r\n" + lines + b"\r\n")
            status, _, body = await raw.response()
            assert status == expect, (count, status, body)
            raw.close()


# -- requests in flight and rates ----------------------------------------------------------------------------


async def _stalled_post(hub: LiveHub, length: int, path: str = "/fed/v1/push") -> object:
    raw = await raw_connect(hub)
    await raw.send(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\nx" % (path.encode(), length))
    await asyncio.sleep(0.05)
    return raw


@proves("http_max_requests_in_flight")
async def _in_flight(tmp_path: Path) -> None:
    async with live_hub(tmp_path, {"http_max_requests_in_flight": 2}) as hub:
        stalled = [await _stalled_post(hub, 100)]  # one request in flight, waiting for its body
        status, _, _ = await hub.request("GET", "/api/v1/status")
        assert status == 200  # the 2nd at once: at the limit
        stalled.append(await _stalled_post(hub, 100))
        status, headers, body = await hub.request("GET", "/api/v1/status")
        assert status == 503 and headers["Retry-After"] == "1" and json.loads(body)["error"] == "rate-limited"
        for raw in stalled:
            raw.close()  # type: ignore[attr-defined]
        await asyncio.sleep(0.1)
        assert (await hub.request("GET", "/api/v1/status"))[0] == 200


@proves("http_max_inflight_body_bytes")
async def _body_bytes(tmp_path: Path) -> None:
    async with live_hub(tmp_path, {"http_max_inflight_body_bytes": 1000}) as hub:
        held = [await _stalled_post(hub, 600), await _stalled_post(hub, 400)]  # 1,000 reserved: at the limit
        status, headers, body = await hub.request("POST", "/fed/v1/push", data=b"\x00")
        assert status == 503 and json.loads(body)["error"] == "rate-limited" and "Retry-After" in headers
        assert (await hub.request("GET", "/api/v1/status"))[0] == 200  # requests without a body go on
        held.pop().close()  # type: ignore[attr-defined]
        await asyncio.sleep(0.1)
        status, _, _ = await hub.request("POST", "/fed/v1/push", data=b"\x00" * 400)
        assert status == 410  # read, then refused: the old route says to use the session
        for raw in held:
            raw.close()  # type: ignore[attr-defined]


@proves("http_rate_burst", "http_rate_per_s")
async def _rate(tmp_path: Path) -> None:
    async with live_hub(tmp_path, {"http_rate_burst": 5, "http_rate_per_s": 2}) as hub:
        for _ in range(5):
            assert (await hub.request("GET", "/api/v1/status"))[0] == 200
        status, headers, body = await hub.request("GET", "/api/v1/status")
        assert status == 429 and int(headers["Retry-After"]) >= 1
        assert json.loads(body)["error"] == "rate-limited"
        status, _, page = await hub.request("GET", "/")  # pages too, as an HTML page
        assert status == 429 and b"<html" in page
        assert (await hub.request("GET", "/api/v1/status", headers=hub.auth))[0] == 200  # the token is not limited
        await asyncio.sleep(0.6)  # a little over 1 / http_rate_per_s: one more token
        assert (await hub.request("GET", "/api/v1/status"))[0] == 200
        assert (await hub.request("GET", "/api/v1/status"))[0] == 429


@proves("negentropy_frame_bytes")
async def _negentropy_frame(tmp_path: Path) -> None:
    # A responder refuses an incoming Negentropy message over its frame limit (sans-IO: whatever carries it).
    limit = 4096
    at, over = b"\x61" + b"\x00" * (limit - 1), b"\x61" + b"\x00" * limit
    try:
        Negentropy(NegentropyStorage([]), limit).reconcile(at)
    except NegentropyError as exc:
        assert "frame size limit" not in str(exc)
    with pytest.raises(NegentropyError, match="frame size limit"):
        Negentropy(NegentropyStorage([]), limit).reconcile(over)
    assert Limits().negentropy_frame_bytes >= 4096


# Last, once every prover above has registered itself.
@pytest.mark.parametrize("field", sorted(PROVERS))
async def test_limit_is_enforced_exactly(field: str, tmp_path: Path) -> None:
    await PROVERS[field](tmp_path)
