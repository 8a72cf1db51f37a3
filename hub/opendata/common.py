"""What the open-data formats share: stable ids, times, did:key identifiers, and the checks that decide which
e-mail addresses and URLs a document may carry.

The same checks serve two purposes (docs/opendata.md):

* at publish time (:mod:`hub.opendata.validate`) they *refuse* a record this hub's own user asks to publish;
* in the exporters they *omit* a value from a record that came from a peer: peers' records are stored by the
  protocol's rules (docs/protocol.md §2.1), which are looser and must stay so for every hub to converge, so an
  exporter may meet any schema-valid value and must still write a document that validates. What it leaves out
  is counted in :class:`Omitted`.

E-mail addresses are checked with ``email-validator`` (syntax only, never DNS: a hub may be offline and the
answer must not depend on the network); URLs with ``yarl`` (an absolute http or https URL with a host).
"""

from __future__ import annotations

import datetime as _dt
import uuid
from collections import Counter
from typing import Any

import email_validator
import yarl

__all__ = [
    "Omitted",
    "did_key",
    "email_problem",
    "export_email",
    "export_url",
    "iso_seconds",
    "stable_uuid",
    "url_problem",
]

_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://coophub.org/hsds/v1")
_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_ED25519_MULTICODEC = b"\xed\x01"  # multicodec "ed25519-pub", as did:key prescribes


class Omitted(Counter[str]):
    """Values an exporter left out because they would not validate, counted by what they were (``email``…)."""

    def line(self) -> str:
        """One line for people, e.g. ``omitted 2 invalid email, 1 invalid url``; empty if nothing was."""
        if not self:
            return ""
        return "omitted " + ", ".join(f"{n} invalid {what}" for what, n in sorted(self.items()))


def stable_uuid(*parts: str) -> str:
    """A UUID 5 naming one exported row, the same on every export and on every hub."""
    return str(uuid.uuid5(_NAMESPACE, "/".join(parts)))


def iso_seconds(ms: int) -> str:
    """UTC milliseconds as RFC 3339 text to the second, e.g. ``2026-01-01T00:00:00Z`` (what JWT dates carry)."""
    return _dt.datetime.fromtimestamp(ms // 1000, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _base58(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    out = ""
    while number:
        number, digit = divmod(number, 58)
        out = _BASE58[digit] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def did_key(public_key: bytes) -> str:
    """The ``did:key`` DID of an Ed25519 public key (a hub id): multibase base58btc of multicodec 0xed01 + key.

    Every hub id is already an Ed25519 key, so a verifier resolves the DID without any network request.
    """
    return "did:key:z" + _base58(_ED25519_MULTICODEC + public_key)


def email_problem(text: Any) -> str | None:
    """Why ``text`` is not an e-mail address a document may carry (None if it is one)."""
    if not isinstance(text, str) or not text:
        return "an e-mail address is text such as name@example.org"
    try:
        email_validator.validate_email(text, check_deliverability=False)
    except email_validator.EmailNotValidError as exc:
        return str(exc)
    return None


def url_problem(text: Any) -> str | None:
    """Why ``text`` is not an absolute http(s) URL with a host (None if it is one)."""
    if not isinstance(text, str) or not text or text != text.strip() or any(c.isspace() for c in text):
        return "a URL is http:// or https:// and a host, without spaces"
    try:
        url = yarl.URL(text)
    except (ValueError, TypeError) as exc:
        return f"not a URL ({exc})"
    if url.scheme not in ("http", "https"):
        return "a URL starts with http:// or https://"
    if not url.host or not url.is_absolute():
        return "a URL names a host, e.g. https://example.org/"
    try:
        url.port  # noqa: B018 — a port out of range raises here
    except ValueError as exc:
        return f"not a URL ({exc})"
    return None


def export_url(text: Any, omitted: Omitted) -> str | None:
    """``text`` as an RFC 3986 URL (non-ASCII percent-encoded, host in punycode), or None — counted — if it is
    not an http(s) URL at all."""
    if text is None or text == "":
        return None
    if url_problem(text) is not None:
        omitted["url"] += 1
        return None
    return str(yarl.URL(text))


def export_email(text: Any, omitted: Omitted) -> str | None:
    """``text`` if it is an e-mail address, else None — counted."""
    if text is None or text == "":
        return None
    if email_problem(text) is not None:
        omitted["email"] += 1
        return None
    return str(text)
