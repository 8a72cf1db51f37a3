"""Seeded malformed requests for every route of a hub (tests/faults/test_malformed.py).

:func:`routes` lists the routes of the real application (``hub.app.make_app``), so a route added later is
flooded too without editing this file. :func:`requests` draws requests from a Random: path parameters of the
wrong length, alphabet and size, unknown and hostile query parameters, and bodies that are random bytes, valid
frames and JSON documents mutated (bits flipped, cut short, spliced, types swapped), nested far too deep, or
larger than any limit, sent whole or chunked, under right and wrong content types.
"""

from __future__ import annotations

import json
import random
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack

from hub.app import make_app
from hub.home import Home
from hub.store import Store
from protocol import HubKey, build_record

from .harness import guide_body, now_ms


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # aiohttp's canonical form, with {name} placeholders


@dataclass
class Request:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes | None
    chunked: bool
    authorised: bool
    route: str


def routes() -> list[Route]:
    """Every (method, path) the hub's application serves, read from its router; HEAD is GET without a body."""
    with tempfile.TemporaryDirectory() as tmp:
        home = Home.create(Path(tmp) / "routes", "Routes")
        with Store(home.db_path, limits=home.limits(), blobs_dir=home.blobs_dir) as store:
            app = make_app(home, store)
            found = {Route(r.method, r.resource.canonical) for r in app.router.routes()
                     if r.resource is not None and r.method not in ("HEAD", "*")}
    return sorted(found, key=lambda r: (r.path, r.method))


#: Path parameter values: wrong length, wrong alphabet, hostile, huge, and some that look right.
def _param(rng: random.Random) -> str:
    choice = rng.randrange(12)
    if choice == 0:
        return rng.randbytes(32).hex()  # well-formed, unknown
    if choice == 1:
        return rng.randbytes(rng.randrange(0, 40)).hex()  # hex of the wrong length
    if choice == 2:
        return "hub_" + "".join(rng.choices("abcdefghijklmnopqrstuvwxyz234567", k=rng.randrange(0, 70)))
    if choice == 3:
        return "%2e%2e%2f" * rng.randrange(1, 6) + "etc%2fpasswd"
    if choice == 4:
        return "x" * rng.randrange(1000, 9000)
    if choice == 5:
        return "%00" * rng.randrange(1, 20)
    if choice == 6:
        return "".join(rng.choices("\u00e9\u4e2d\U0001f600\u202e", k=rng.randrange(1, 30)))
    if choice == 7:
        return str(rng.choice([-1, 0, 2**63, 2**64 + 1, 10**400]))
    if choice == 8:
        return rng.randbytes(32).hex().upper()
    if choice == 9:
        return rng.randbytes(32).hex() + rng.choice([".json", ".jwt", "/", "%20", "?", ";x=1"])
    if choice == 10:
        return "".join(rng.choices("0123456789abcdefg", k=64))
    return rng.choice(["", " ", "null", "undefined", "{}", "[]", "NaN", "true"])


_QUERY_NAMES = ["after", "limit", "offset", "page", "q", "kind", "region", "mark", "open", "reviewed", "hub",
                "scheme", "lang", "category", "service", "sort", "cursor", "x", ""]


def _query(rng: random.Random) -> list[tuple[str, str]]:
    pairs = []
    for _ in range(rng.choice([0, 0, 1, 1, 2, 3, 8, 60])):
        name = rng.choice(_QUERY_NAMES)
        value = rng.choice([
            str(rng.randrange(-10**6, 10**6)), str(10**rng.randrange(1, 400)), "-0", "1e9", "nan", "inf",
            f"{rng.randrange(2**63)}:{rng.randbytes(32).hex()}", f"{rng.randrange(2**70)}:zz", ":", "",
            rng.randbytes(rng.randrange(1, 64)).hex(), "x" * rng.randrange(1, 5000), "%ff%fe", "\u0000",
            "true", "yes", "1,2,3", "[]", "{}",
        ])
        pairs.append((name, value))
    return pairs


def _mutate(data: bytes, rng: random.Random) -> bytes:
    """One to four byte-level mutations, as a fuzzer's havoc stage does."""
    out = bytearray(data)
    for _ in range(rng.randrange(1, 5)):
        op = rng.randrange(6)
        if op == 0 and out:
            i = rng.randrange(len(out))
            out[i] ^= 1 << rng.randrange(8)
        elif op == 1 and out:
            del out[rng.randrange(len(out)):]
        elif op == 2:
            i = rng.randrange(len(out) + 1)
            out[i:i] = rng.randbytes(rng.randrange(1, 16))
        elif op == 3 and out:
            i = rng.randrange(len(out))
            out[i] = rng.choice([0x00, 0xFF, 0xC0, 0xC1, 0xDC, 0xDD, 0xDE, 0xDF, 0x7F, 0x80])
        elif op == 4 and len(out) > 2:
            i, j = sorted(rng.sample(range(len(out)), 2))
            out[i:j] = out[i:j] * rng.randrange(2, 4)
        elif out:
            i = rng.randrange(len(out))
            out[i:i + 4] = rng.choice([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\xdd\xff\xff\xff"])
    return bytes(out)


def _nested(rng: random.Random, *, as_json: bool) -> bytes:
    depth = rng.choice([64, 1000, 10_000, 100_000])
    if as_json:
        opener, closer = rng.choice([("[", "]"), ('{"a":', "}")])
        return (opener * depth + "1" + closer * depth).encode()
    return b"\x91" * depth + b"\x01"  # a msgpack list of a list of …


class Corpus:
    """Valid seeds to mutate: signed records, wire frames and publish requests."""

    def __init__(self, rng: random.Random) -> None:
        key = HubKey.generate()
        association = rng.randbytes(32)
        self.records = [build_record(key, association, "guide", guide_body(f"Seed {i}"), now_ms()).raw
                        for i in range(4)]
        ids = [rng.randbytes(32) for _ in range(4)]
        self.frames = [
            msgpack.packb({"from": "http://127.0.0.1:9", "records": self.records}),
            msgpack.packb({"from": "http://127.0.0.1:9", "ids": ids}),
            msgpack.packb({"records": [b"\x00" * 10]}),
            msgpack.packb({"from": 5, "ids": "x"}),
            msgpack.packb([1, 2, 3]),
            bytes([0x61]) + rng.randbytes(40),  # a Negentropy message: version byte, then ranges
            bytes([0x61, 0x00, 0x00, 0x02]) + rng.randbytes(32),
        ]
        self.json = [
            json.dumps({"kind": "guide", "body": guide_body("Fuzz")}).encode(),
            json.dumps({"kind": "profile", "body": {"name": "x", "regions": ["y"], "services": [],
                                                    "peer_urls": ["http://127.0.0.1:9"]}}).encode(),
            json.dumps({"record": self.records[0].hex()}).encode(),
            json.dumps({"kind": 5, "body": []}).encode(),
            json.dumps({"kind": "offer", "body": {"deadline": 10**30}}).encode(),
            b'{"kind": "guide", "body": {"title": NaN, "tags": [Infinity]}}',
            b'{"a": 1, "a": 2}',
        ]

    def body(self, route: Route, rng: random.Random) -> tuple[bytes, str]:
        """A body and a content type for ``route``."""
        fed = route.path.startswith("/fed/")
        choice = rng.randrange(10)
        if choice == 0:
            return rng.randbytes(rng.randrange(0, 2000)), rng.choice(["application/octet-stream", ""])
        if choice == 1:
            return _nested(rng, as_json=not fed), "application/json"
        if choice == 2:
            # Over every limit (API 256 KiB, federation 8 MiB); few of them, they are the slow ones.
            if rng.random() < 0.2:
                return rng.randbytes(rng.choice([300 * 1024, 9 * 1024 * 1024])), "application/msgpack"
            return rng.randbytes(rng.randrange(1, 4096)), "application/msgpack"
        if choice in (3, 4, 5, 6) and fed:
            return _mutate(rng.choice(self.frames), rng), rng.choice(
                ["application/msgpack", "application/negentropy", "text/plain"])
        if choice in (3, 4, 5, 6):
            return _mutate(rng.choice(self.json), rng), rng.choice(["application/json", "text/plain"])
        if choice == 7:
            return rng.choice(self.frames if fed else self.json), "application/json"  # unmutated, wrong type
        if choice == 8:
            return "".join(rng.choices("\u00e9\ud7ff\u4e2d{}[]\":,0", k=rng.randrange(1, 300))).encode(
                "utf-8", "surrogatepass"), "application/json"
        return b"", rng.choice(["application/json", "application/msgpack", "multipart/form-data; boundary=x"])


def requests(rng: random.Random, count: int, token: str) -> Iterator[Request]:
    """``count`` malformed requests spread over every route, drawn from ``rng``."""
    table = routes()
    corpus = Corpus(rng)
    for _ in range(count):
        route = rng.choice(table)
        path = route.path
        while "{" in path:
            start, end = path.index("{"), path.index("}")
            path = path[:start] + _param(rng) + path[end + 1:]
        method = route.method if rng.random() < 0.9 else rng.choice(["GET", "POST", "PUT", "DELETE", "PATCH"])
        body: bytes | None = None
        headers: dict[str, Any] = {}
        if method in ("POST", "PUT", "PATCH"):
            body, content_type = corpus.body(route, rng)
            if content_type:
                headers["Content-Type"] = content_type
        authorised = route.path.startswith("/api/") and rng.random() < 0.5
        if authorised:
            headers["Authorization"] = f"Bearer {token}"
        elif rng.random() < 0.1:
            headers["Authorization"] = rng.choice(["Bearer", "Bearer " + "x" * 5000, "Basic Zm9vOmJhcg=="])
        if rng.random() < 0.05:
            headers["Accept-Language"] = rng.choice(["cy", "*;q=x", "x" * 3000, "en-GB;q=0.5, cy;q=2"])
        chunked = body is not None and rng.random() < 0.25
        yield Request(method, path, _query(rng), headers, body, chunked, authorised,
                      f"{route.method} {route.path}")
