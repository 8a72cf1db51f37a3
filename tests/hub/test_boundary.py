"""The one error boundary (hub/boundary.py, issue 9): client input never produces a 500 or a traceback, on any
route; a bug is one log line with an error id and a 500 that shows it.

Every route the app registers (API, peer protocol, pages, static files) is fed malformed bodies (JSON, msgpack,
deep nesting, random bytes), bad query parameters and bad path segments, over real HTTP to a real hub. Seeded,
so a failure replays exactly.
"""

from __future__ import annotations

import json
import logging
import random
import re
from pathlib import Path

import msgpack
import pytest
from aiohttp import web

from hub.boundary import LineBudget

from .live import LiveHub, live_hub, raw_connect

SEED = 9
UNLIMITED = {"http_rate_burst": 1_000_000, "http_rate_per_s": 1_000_000}
PATH_GARBAGE = ["zz", "0" * 63, "f" * 65, "hub_", "hub_" + "a" * 55, "%00", "..", "é" * 10, "1" * 300, "-1"]
QUERY_GARBAGE = [
    {"after": "zz"}, {"after": "1.zz"}, {"after": "-1." + "0" * 64}, {"after": "9" * 40 + "." + "0" * 64},
    {"limit": "x"}, {"limit": "-5"}, {"limit": "9" * 30}, {"offset": "-1"}, {"offset": "1e9"},
    {"q": "\"unbalanced AND (", "kind": "nope"}, {"open": "maybe"}, {"lang": "xx"}, {"scheme": "x" * 600},
    {"page": "0"}, {"page": "-3"}, {"page": "x"}, {"unknown": "1"},
]


def _bodies(rng: random.Random) -> list[bytes]:
    deep_json = b"[" * 100_000 + b"]" * 100_000
    deep_mixed = b'{"kind": "profile", "body": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5001
    deep_msgpack = b"\x91" * 100_000 + b"\xc0"
    return [
        b"", b"{", b"[1,2", b"\xff\xfe\x00", b"null", b'"text"', b"{}", b'{"record": 5}', b'{"record": "zz"}',
        b'{"kind": "guide", "body": []}', b'{"kind": 1, "body": {}}', deep_json, deep_mixed, deep_msgpack,
        msgpack.packb({"from": 1, "ids": "x"}), msgpack.packb({"from": "", "records": [1, 2]}),
        msgpack.packb({"from": "", "ids": [b"x" * 31]}), msgpack.packb([1, 2, 3]), b"\xc1", b"\xdd\xff\xff\xff\xff",
        b"\x61" + bytes(rng.randrange(256) for _ in range(200)),
        bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4000))),
    ]


def _paths(app: web.Application) -> list[tuple[str, str]]:
    """(method, concrete path) for every route, with each path parameter replaced by garbage."""
    out: set[tuple[str, str]] = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        method = route.method if route.method != "*" else "GET"
        if "path" in info:
            out.add((method, info["path"]))
        elif "formatter" in info:
            fmt = info["formatter"]
            for junk in PATH_GARBAGE:
                out.add((method, re.sub(r"\{[^}]+\}", junk, fmt)))
        elif "prefix" in info:  # static files
            out.add((method, info["prefix"] + "/../../etc/passwd"))
            out.add((method, info["prefix"] + "/nope.css"))
    return sorted(out)


def _check(method: str, status: int, headers: dict[str, str], body: bytes, path: str, what: str) -> None:
    what = f"{method} {what}"
    assert status < 500, (what, path, status, body[:300])
    if method == "HEAD":
        return
    assert b"Traceback" not in body, (what, path)
    if status >= 400 and path.startswith(("/api/", "/fed/")):
        assert headers.get("Content-Type", "").startswith("application/json"), (what, path, status, body[:200])
        data = json.loads(body)
        assert set(data) == {"error", "detail"} and data["detail"] and "\n" not in data["detail"], (what, path, data)


async def test_malformed_input_on_every_route_gets_4xx_never_500_nor_a_log_line(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rng = random.Random(SEED)
    caplog.set_level(logging.INFO)
    async with live_hub(tmp_path, UNLIMITED) as hub:
        routes = _paths(hub.app)
        assert len(routes) > 40 and any(p.startswith("/fed/") for _, p in routes)
        sent = 0
        for method, path in routes:
            # Bodies where a route reads one; bad path segments and query parameters everywhere.
            bodies = _bodies(rng) if method == "POST" else [b"", b"{"]
            for headers in ([{}, hub.auth] if path.startswith("/api/") else [{}]):
                for body in bodies:
                    status, rh, rb = await hub.request(method, path, data=body, headers=headers)
                    _check(method, status, rh, rb, path, f"body {body[:40]!r}")
                    sent += 1
            if method == "GET":
                for query in QUERY_GARBAGE:
                    status, rh, rb = await hub.request("GET", path, params=query)
                    _check(method, status, rh, rb, path, f"query {query}")
                    sent += 1
        assert sent > 1000
        # Nothing the client sent is a bug: no error line, no traceback in the log.
        bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
        assert not bad, [r.getMessage()[:200] for r in bad[:5]]


async def test_deeply_nested_json_to_publish_is_400_not_a_recursion_error(tmp_path: Path) -> None:
    """Issue 9: deeply nested JSON to /api/v1/publish answered 500 (RecursionError)."""
    async with live_hub(tmp_path) as hub:
        status, data = await hub.json("POST", "/api/v1/publish", data=b"[" * 100_000 + b"]" * 100_000,
                                      headers=hub.auth)
        assert (status, data["error"]) == (400, "invalid") and "max_json_depth" in data["detail"]


async def test_a_request_the_http_parser_refuses_is_json_and_not_logged_as_an_error(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with live_hub(tmp_path) as hub:
        for head in (b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
                     b"GET /\x00 HTTP/1.1\r\n\r\n", b"POST /fed/v1/push HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
                     b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"):  # the last: TLS to an HTTP port
            raw = await raw_connect(hub)
            await raw.send(head)
            status, headers, body = await raw.response()
            assert status == 400 and json.loads(body)["error"] == "invalid", (head, body)
            assert await raw.closed()
            raw.close()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]


def _boom_routes(app: web.Application) -> None:
    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("a bug\nover two lines")

    for path in ("/api/v1/boom", "/fed/v1/boom", "/boom"):
        app.router.add_get(path, boom)


async def test_a_bug_is_one_log_line_with_an_id_that_the_500_shows(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with live_hub(tmp_path, setup=_boom_routes) as hub:
        for path in ("/api/v1/boom", "/fed/v1/boom"):
            caplog.clear()
            status, data = await hub.json("GET", path)
            assert (status, data["error"]) == (500, "error")
            (error_id,) = re.findall(r"internal error ([0-9a-f]{12})", data["detail"])
            lines = [r for r in caplog.records if r.levelno >= logging.ERROR]
            assert len(lines) == 1 and error_id in lines[0].getMessage(), [r.getMessage() for r in lines]
            assert lines[0].exc_info is None and "\n" not in lines[0].getMessage()
            assert getattr(lines[0], "error_id", None) == error_id
            assert "RuntimeError" in lines[0].getMessage() and "test_boundary.py" in lines[0].getMessage()
        caplog.clear()
        status, headers, page = await hub.request("GET", "/boom")
        assert status == 500 and headers["Content-Type"].startswith("text/html")
        (error_id,) = re.findall(rb"\[([0-9a-f]{12})\]", page)
        assert b"Traceback" not in page and b"a bug" not in page
        lines = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(lines) == 1 and error_id.decode() in lines[0].getMessage()


async def test_error_lines_are_rate_limited(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A bug a stranger can trigger cannot flood the log: a burst of lines, then one in a while."""
    caplog.set_level(logging.INFO)
    async with live_hub(tmp_path, UNLIMITED, setup=_boom_routes) as hub:
        for _ in range(100):
            assert (await hub.request("GET", "/api/v1/boom"))[0] == 500
    lines = [r for r in caplog.records if r.name == "coophub.boundary"]
    assert 1 <= len(lines) <= 25


def test_line_budget_counts_what_it_drops() -> None:
    budget = LineBudget(burst=2, per_s=0.0)
    assert [budget.take() for _ in range(5)] == [0, 0, None, None, None]
    assert budget.suppressed == 3


async def test_a_429_on_a_page_is_an_html_page_and_on_the_api_json(tmp_path: Path) -> None:
    async with live_hub(tmp_path, {"http_rate_burst": 1, "http_rate_per_s": 1}) as hub:
        assert (await hub.request("GET", "/"))[0] == 200
        status, headers, page = await hub.request("GET", "/")
        assert status == 429 and headers["Content-Type"].startswith("text/html") and "Retry-After" in headers
        status, headers, body = await hub.request("GET", "/fed/v1/info")
        assert status == 429 and json.loads(body) == {"error": "rate-limited", "detail": json.loads(body)["detail"]}


async def test_unknown_routes_and_methods(tmp_path: Path) -> None:
    async with live_hub(tmp_path) as hub:
        status, data = await hub.json("GET", "/fed/v1/nope")
        assert (status, data["error"]) == (404, "not-found")
        status, data = await hub.json("DELETE", "/api/v1/status")
        assert (status, data["error"]) == (405, "method-not-allowed")
        status, headers, page = await hub.request("GET", "/no/such/page")
        assert status == 404 and headers["Content-Type"].startswith("text/html")


async def test_a_client_that_leaves_mid_body_is_not_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with live_hub(tmp_path) as hub:
        raw = await raw_connect(hub)
        await raw.send(b"POST /fed/v1/push HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc")
        raw.close()
        status, _, _ = await hub.request("GET", "/api/v1/status")
        assert status == 200
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]


_ = LiveHub


async def test_metrics_count_what_the_bounds_refused(tmp_path: Path) -> None:
    async with live_hub(tmp_path, {"http_rate_burst": 2, "http_rate_per_s": 1}) as hub:
        statuses = [(await hub.request("GET", "/api/v1/status"))[0] for _ in range(4)]
        assert statuses == [200, 200, 429, 429]
        status, _, text = await hub.request("GET", "/metrics", headers=hub.auth)
        assert status == 200
        assert b'coophub_http_refused_total{reason="rate-limited"} 2.0' in text
        assert b"coophub_http_connections " in text and b"coophub_http_requests_in_flight 1.0" in text
