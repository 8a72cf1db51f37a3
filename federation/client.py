"""The initiator side of the peer protocol: one aiohttp session, bounded requests to ``/fed/v1/``.

Every call has a total timeout and reads at most ``limits.max_fed_body_bytes`` of a reply; a peer that sends
more, or garbage, raises :class:`PeerUnavailable` or :class:`~federation.wire.WireError`, which the driver turns
into backoff or score.
"""

from __future__ import annotations

import aiohttp

from protocol.limits import Limits

from . import wire

__all__ = ["PeerClient", "PeerUnavailable"]

REQUEST_TIMEOUT_S = 15.0  # a page of 500 records over a slow link; anti-entropy retries later anyway


class PeerUnavailable(Exception):
    """The peer could not be reached or answered with an HTTP error."""


class PeerClient:
    """Calls to peers, sharing one connection pool. ``own_url`` is sent as ``from`` so peers can answer back."""

    def __init__(self, session: aiohttp.ClientSession, limits: Limits, own_url: str) -> None:
        self.session = session
        self.limits = limits
        self.own_url = own_url
        self.bytes_out = 0
        self.bytes_in = 0
        self.requests = 0

    async def _call(self, method: str, url: str, body: bytes | None = None,
                    content_type: str = wire.CONTENT_TYPE, *, limit: int | None = None) -> bytes:
        limit = self.limits.max_fed_body_bytes if limit is None else limit
        self.requests += 1
        self.bytes_out += len(body or b"")
        headers = {"Content-Type": content_type} if body is not None else {}
        try:
            async with self.session.request(method, url, data=body, headers=headers,
                                            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)) as resp:
                if resp.content_length is not None and resp.content_length > limit:
                    raise PeerUnavailable(f"{url}: reply of {resp.content_length} bytes is over the limit")
                data = await _read_bounded(resp, limit, url)
                if resp.status != 200:
                    raise PeerUnavailable(f"{url}: HTTP {resp.status} {data[:200]!r}")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise PeerUnavailable(f"{url}: {type(exc).__name__} {exc}") from None
        self.bytes_in += len(data)
        return data

    async def info(self, peer: str) -> wire.Info:
        return wire.decode_info(await self._call("GET", f"{peer}/fed/v1/info"))

    async def announce(self, peer: str, ids: list[bytes]) -> list[bytes]:
        """Offer ids; returns those the peer wants."""
        reply = await self._call("POST", f"{peer}/fed/v1/announce",
                                 wire.encode({"from": self.own_url, "ids": ids}))
        return wire.decode_ids(reply, self.limits, what="want")[1]

    async def push(self, peer: str, raws: list[bytes]) -> list[wire.PushResult]:
        reply = await self._call("POST", f"{peer}/fed/v1/push",
                                 wire.encode({"from": self.own_url, "records": raws}))
        return wire.decode_push_results(reply, self.limits)

    async def sync(self, peer: str, message: bytes) -> bytes:
        return await self._call("POST", f"{peer}/fed/v1/sync", message, wire.NEGENTROPY_CONTENT_TYPE)

    async def fetch(self, peer: str, ids: list[bytes]) -> list[bytes]:
        reply = await self._call("POST", f"{peer}/fed/v1/fetch", wire.encode({"from": self.own_url, "ids": ids}))
        return wire.decode_records(reply, self.limits)

    async def page(self, peer: str, after: tuple[int, bytes] | None,
                   limit: int) -> tuple[list[bytes], tuple[int, bytes] | None]:
        cursor = wire.format_cursor(after) if after else ""
        reply = await self._call("GET", f"{peer}/fed/v1/records?after={cursor}&limit={limit}")
        return wire.decode_page(reply, self.limits)

    async def blob(self, peer: str, digest: bytes) -> bytes:
        """A blob's bytes as the peer sends them (at most ``max_blob_bytes``); the caller checks the hash.

        Raises:
            PeerUnavailable: unreachable, an HTTP error (404: the peer lacks it), or a reply over the limit.
        """
        return await self._call("GET", f"{peer}/fed/v1/blobs/{digest.hex()}",
                                limit=self.limits.max_blob_bytes)


async def _read_bounded(resp: aiohttp.ClientResponse, limit: int, url: str) -> bytes:
    """The whole reply body, or PeerUnavailable once it passes ``limit`` bytes.

    ``resp.content.read(n)`` returns *at most* n bytes — whatever has arrived — so one call truncates any
    reply bigger than a TCP read (a fetch of 500 records, a catch-up page, a large Negentropy frame), and the
    truncated msgpack was refused as malformed. Read chunks until the end instead.
    """
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise PeerUnavailable(f"{url}: reply over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
