"""Publish-time checks on the values open data carries (hub.publishing's ``CHECKS``, docs/opendata.md).

The protocol's schemas (protocol/kinds.py) accept what every hub must store for the federation to converge —
a currency is three capital letters, a language tag letters and hyphens. A record this hub's own user asks to
publish is held to the stricter rules the open-data formats need, so that what this hub signs always exports:

    e-mail     email-validator, syntax only (no DNS lookup: the answer must not depend on the network)
    URL        yarl: an absolute http:// or https:// URL with a host and a valid port
    currency   ISO 4217 codes in use now: Babel's copy of the CLDR currency data, legal tender in some
               territory with no end date (so DEM and other withdrawn codes are refused)
    language   BCP 47: langcodes checks every subtag against the IANA Language Subtag Registry it ships

Each check raises :class:`hub.publishing.PublishRefused` (reason ``invalid``) with one line that names the
field, says what is wrong and how to fix it; nothing is signed or stored. Records from peers are never checked
here: the exporters omit what does not validate instead (hub.opendata.common).
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Mapping
from typing import Any

import langcodes
from babel.core import get_global

from protocol import Record

from .common import email_problem, url_problem

__all__ = ["CHECKS", "currency_problem", "current_currencies", "language_problem"]


@functools.cache
def current_currencies() -> frozenset[str]:
    """ISO 4217 codes that are legal tender somewhere today, by CLDR (via Babel)."""
    territories: Mapping[str, list[tuple[str, Any, Any, bool]]] = get_global("territory_currencies")
    return frozenset(code for spans in territories.values() for code, _start, end, tender in spans
                     if end is None and tender)


def currency_problem(code: Any) -> str | None:
    """Why ``code`` is not an ISO 4217 currency in use (None if it is one)."""
    if isinstance(code, str) and code in current_currencies():
        return None
    return f"{str(code)[:10]!r} is not an ISO 4217 currency in use; write a code such as GBP or EUR"


def language_problem(tag: Any) -> str | None:
    """Why ``tag`` is not a valid BCP 47 language tag (None if it is one)."""
    if isinstance(tag, str) and langcodes.tag_is_valid(tag):
        return None
    return f"{str(tag)[:40]!r} is not a BCP 47 language tag; write e.g. en, cy or cy-GB"


def _refuse(message: str | None, field: str) -> None:
    if message is not None:
        from hub.publishing import PublishRefused  # imported here: hub.publishing imports this module

        raise PublishRefused(message, field=field)


def _bad(what: str, value: str, kind: str, problem: str | None, fix: str) -> str | None:
    return None if problem is None else f"{what} {value[:80]!r} is not {kind} ({problem}); {fix}"


def _url(what: str, value: str) -> str | None:
    return _bad(what, value, "a URL", url_problem(value), "write an http:// or https:// URL")


def _profile(conn: sqlite3.Connection, record: Record, now_ms: int) -> None:
    body = record.body
    email = (body.get("contact") or {}).get("email")
    if email is not None:
        _refuse(_bad("contact email", email, "an e-mail address", email_problem(email),
                     "write e.g. name@example.org"), "contact.email")
    if "website" in body:
        _refuse(_url("website", body["website"]), "website")
    for i, url in enumerate(body.get("peer_urls", [])):
        _refuse(_url("peer URL", url), f"peer_urls[{i}]")


def _guide(conn: sqlite3.Connection, record: Record, now_ms: int) -> None:
    problem = language_problem(record.body["language"])
    _refuse(problem and f"language {problem}", "language")


def _offer(conn: sqlite3.Connection, record: Record, now_ms: int) -> None:
    problem = currency_problem(record.body["currency"])
    _refuse(problem and f"currency {problem}", "currency")


def _attestation(conn: sqlite3.Connection, record: Record, now_ms: int) -> None:
    if "evidence_url" in record.body:
        _refuse(_url("evidence URL", record.body["evidence_url"]), "evidence_url")
    if "credential" in record.body:
        from .badges import verify_credential_jwt

        if verify_credential_jwt(record.body["credential"], record) is None:
            _refuse("credential is not this hub's signed Open Badges credential for this attestation; leave it "
                    "out and the hub issues one", "credential")


#: kind -> the open-data checks of a locally published record (hub.publishing adds them to its CHECKS).
CHECKS = {
    "profile": _profile,
    "guide": _guide,
    "offer": _offer,
    "attestation": _attestation,
}
