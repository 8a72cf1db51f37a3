"""Whether ``HOME/serve.json`` names the hub that really serves this home, before the CLI sends it the token.

serve.json tells CLI commands where the running ``coophub serve`` listens, so they publish through it (and it
gossips at once). Anyone who can write that file, or who binds a port after the hub stopped, could name their
own server and collect the bearer token from the next ``coophub publish``. So the CLI trusts the file only when

1. it sits in a safe home (hub.home.check_home_files ran when the home was opened) and is itself writable by
   nobody else, names a live pid and an ``http://`` URL whose host is an IP address or ``localhost`` (no DNS);
2. the server at that URL answers a challenge only the real hub can: the CLI sends a fresh 32-byte nonce to
   ``GET /api/v1/serve-proof?nonce=HEX`` (no token), and the server returns
   ``HMAC-SHA256(token, "coophub-serve-proof/1\\n" nonce "\\n" home "\\n" url)`` where ``home`` is the resolved
   home path and ``url`` the URL it wrote to serve.json. The CLI computes the same with the token it read from
   the home and compares in constant time.

The token is the HMAC key, so a server without it cannot answer; the URL is inside the MAC, so a server that
relays the challenge to the real hub gets a proof for the real hub's URL, not its own; the nonce makes every
proof fresh. Only after the proof does the CLI send ``Authorization: Bearer``. The request goes to the URL
directly (no proxy from the environment) and a redirect is refused, not followed.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import os
import secrets
import stat
import urllib.error
import urllib.parse
import urllib.request
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from .home import Home

__all__ = ["PROOF_PATH", "PROOF_TIMEOUT_S", "add_route", "proof", "verified_url"]

PROOF_PATH = "/api/v1/serve-proof"
#: How long the CLI waits for the running hub's proof; a hub that cannot answer in this time is treated as not
#: running (the CLI then writes to the database itself, which is always safe).
PROOF_TIMEOUT_S = 5.0
_NONCE_BYTES = 32
_MAX_SERVE_JSON = 4096  # the file holds a URL and a pid


def proof(token: str, nonce: bytes, home_path: str, url: str) -> str:
    """The hex HMAC-SHA256 a hub serving ``home_path`` at ``url`` returns for ``nonce``."""
    message = b"coophub-serve-proof/1\n" + nonce + b"\n" + home_path.encode() + b"\n" + url.encode()
    return hmac.new(token.encode(), message, hashlib.sha256).hexdigest()


def add_route(app: web.Application, home: Home, serving: dict[str, str]) -> None:
    """Answer the challenge on ``app``; ``serving["url"]`` is set once the hub has bound its port (before
    serve.json is written), and until then the route answers 503."""
    home_path = str(home.path.resolve())

    async def handler(request: web.Request) -> web.Response:
        text = request.query.get("nonce", "")
        try:
            nonce = bytes.fromhex(text) if len(text) == 2 * _NONCE_BYTES else b""
        except ValueError:
            nonce = b""
        if not nonce:
            return web.json_response({"error": "invalid", "detail": f"nonce must be {2 * _NONCE_BYTES} hex "
                                      "characters"}, status=400)
        url = serving.get("url")
        if url is None:
            return web.json_response({"error": "unavailable", "detail": "the hub is still starting"}, status=503)
        return web.json_response({"hub_id": home.hub_id, "url": url,
                                  "proof": proof(home.token, nonce, home_path, url)})

    app.router.add_get(PROOF_PATH, handler)


def _serve_info(home: Home) -> tuple[str, int] | None:
    """(url, pid) from a serve.json nobody else can write, or None."""
    from .home import unsafe_reason

    if unsafe_reason(home.serve_path, (stat.S_IWGRP | stat.S_IWOTH, "go-w")) is not None:
        return None
    try:
        with open(home.serve_path, "rb") as f:
            info = json.loads(f.read(_MAX_SERVE_JSON + 1)[:_MAX_SERVE_JSON])
        return str(info["url"]), int(info["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _local_url(url: str) -> bool:
    """An http URL whose host is an IP literal or localhost: nothing to resolve, nothing to redirect."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        if parts.scheme != "http" or parts.path not in ("", "/") or parts.query or parts.username:
            return False
        _ = parts.port  # raises ValueError on a malformed port
        if host == "localhost":
            return True
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises HTTPError for the 3xx


def _answer(url: str, nonce: bytes) -> dict[str, Any] | None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())
    try:
        with opener.open(f"{url}{PROOF_PATH}?nonce={nonce.hex()}", timeout=PROOF_TIMEOUT_S) as response:
            data = json.loads(response.read(4096))
    except (OSError, ValueError):  # urllib.error.URLError and HTTPError are OSErrors; a timeout too
        return None
    return data if isinstance(data, dict) else None


def verified_url(home: Home) -> str | None:
    """The URL of the running hub serving ``home``, proven as the module docstring says; None otherwise."""
    found = _serve_info(home)
    if found is None:
        return None
    url, pid = found
    try:
        os.kill(pid, 0)
    except (OSError, OverflowError):
        return None
    url = url.rstrip("/")
    if not _local_url(url):
        return None
    nonce = secrets.token_bytes(_NONCE_BYTES)
    answer = _answer(url, nonce)
    if answer is None:
        return None
    expected = proof(home.token, nonce, str(home.path.resolve()), url)
    if not hmac.compare_digest(str(answer.get("proof", "")), expected):
        return None
    return url
