"""Authenticated peer sessions, sans-IO: the handshake and the frames of ``/fed/v1/session`` (PRODUCT.md §3.1).

Nothing here does I/O or reads the clock: every method takes the bytes that arrived and ``now_ms`` and returns
what to send, or raises :class:`SessionRefused` with the close code and reason to send before closing. The
aiohttp driver (``federation/transport.py``) only moves the bytes. docs/protocol.md §8 is the wire format.

Handshake (each line one WebSocket binary message, a msgpack array ``[type, map]``)::

    initiator                                               responder
    ["hello", {versions, hub, association, nonce, time, url}] ──▶  checks version, association, time, replay
          ◀── ["challenge", {version, hub, nonce, time, sig}]       sig = responder's signature of the transcript
    checks the responder's key and signature, its time
    ["auth", {sig}] ──▶                                             checks the initiator's signature
          ◀── ["ready", {role}]                                     role "member" (full) or "applicant" (narrow)

The transcript both sides sign binds everything either side said: the protocol version, the association id,
both hub keys, both nonces, both clocks and the initiator's URL, prefixed with the signer's role so that one
side's signature can never be reflected as the other's (the idea of Secure Scuttlebutt's secret handshake,
with the association id in the part of its network key, and of Nostr's NIP-42 AUTH challenge).

After ``ready`` both sides may send requests: ``["req", seq, op, body]`` answered by ``["rep", seq, body]`` or
``["err", seq, reason, detail]``; ``seq`` is chosen by the requester and unique among its open requests.

Errors::

    ProtocolError (protocol.errors)
    └── SessionRefused     code (a WebSocket close code 4000–4999) and ``close_reason`` (a word of CLOSE_CODES)
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, cast

import msgpack

from protocol.errors import ProtocolError, SignatureError
from protocol.identity import HubKey, verify_signature
from protocol.limits import Limits

__all__ = [
    "CLOSE_CODES", "OPS", "SESSION_VERSIONS", "Established", "Initiator", "ReplayCache", "Reply", "Request",
    "Responder", "SessionRefused", "TokenBucket", "decode_frame", "encode_frame", "transcript",
]

#: Versions of the session protocol this hub speaks; the initiator offers its list, the responder picks one.
SESSION_VERSIONS = (1,)
TRANSCRIPT_LABEL = "coophub-session"
#: close reason -> WebSocket close code (4000–4999 are the application's, RFC 6455 §7.4.2).
CLOSE_CODES: dict[str, int] = {
    "invalid": 4000,            # a malformed frame, or one out of order
    "version": 4001,            # no session version in common
    "wrong-association": 4002,  # the peer belongs to another association (or this hub knows none yet)
    "wrong-key": 4003,          # the responder is not the hub the initiator expected at that URL
    "bad-signature": 4004,      # a transcript signature does not verify
    "replay": 4005,             # a hello nonce seen before
    "stale": 4006,              # a handshake time beyond max_future_skew_ms from our clock
    "dropped": 4007,            # this hub dropped the peer (its score ran out)
    "duplicate": 4008,          # another session with the same peer is kept instead
    "busy": 4009,               # too many sessions, or a handshake that took too long
    "too-large": 4010,          # a frame over max_fed_body_bytes
    "self": 4011,               # a hub connected to itself
    "going-away": 4012,         # the hub is shutting down, or the operator removed the peer
}
#: Requests a session carries, and whether an applicant (a hub that is not eligible) may make them.
OPS: dict[str, bool] = {
    "info": True, "push": True, "page": True, "fetch": True, "blob": True, "sync": True,
    "announce": False,
}
NONCE_BYTES = 32
_SIG_BYTES = 64


class SessionRefused(ProtocolError):
    """The session must be closed with ``code`` and the reason ``close_reason`` (a key of CLOSE_CODES)."""

    def __init__(self, close_reason: str, detail: str) -> None:
        super().__init__(f"{close_reason}: {detail}", reason="invalid" if close_reason != "too-large" else None)
        self.close_reason = close_reason
        self.code = CLOSE_CODES[close_reason]
        self.detail = detail


# -- frames ------------------------------------------------------------------------------------------------


def encode_frame(*items: Any) -> bytes:
    """One frame: a msgpack array (binary values as ``bin``)."""
    return cast(bytes, msgpack.packb(list(items), use_bin_type=True))


def decode_frame(data: bytes, max_bytes: int) -> list[Any]:
    """A frame as a list whose first item is its type (a string).

    Raises:
        SessionRefused: over ``max_bytes`` ("too-large") or not a msgpack array starting with a string.
    """
    if len(data) > max_bytes:
        raise SessionRefused("too-large", f"a frame of {len(data)} bytes is over the limit of {max_bytes}")
    try:
        value = msgpack.unpackb(data, raw=False, strict_map_key=True, use_list=True)
    except (ValueError, TypeError, msgpack.UnpackException, RecursionError):
        raise SessionRefused("invalid", "a frame is not well-formed msgpack") from None
    if not isinstance(value, list) or not value or not isinstance(value[0], str):
        raise SessionRefused("invalid", "a frame is an array whose first item is its type")
    return value


def _map(frame: list[Any], kind: str) -> dict[str, Any]:
    if frame[0] != kind or len(frame) != 2 or not isinstance(frame[1], dict):
        raise SessionRefused("invalid", f"expected a {kind} frame, got {str(frame[0])[:20]!r}")
    return cast(dict[str, Any], frame[1])


def _bin(message: dict[str, Any], name: str, size: int) -> bytes:
    value = message.get(name)
    if not isinstance(value, bytes) or len(value) != size:
        raise SessionRefused("invalid", f"{name} must be {size} bytes")
    return value


def _int(message: dict[str, Any], name: str) -> int:
    value = message.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise SessionRefused("invalid", f"{name} must be an integer")
    return value


def transcript(role: str, version: int, association: bytes, initiator: bytes, responder: bytes,
               initiator_nonce: bytes, responder_nonce: bytes, initiator_time: int, responder_time: int,
               initiator_url: str) -> bytes:
    """The bytes ``role`` ("initiator" or "responder") signs: a msgpack array of everything both sides said."""
    return cast(bytes, msgpack.packb([TRANSCRIPT_LABEL, role, version, association, initiator, responder,
                                      initiator_nonce, responder_nonce, initiator_time, responder_time,
                                      initiator_url], use_bin_type=True))


def _check_time(their_ms: int, now_ms: int, limits: Limits, who: str) -> None:
    if abs(their_ms - now_ms) > limits.max_future_skew_ms:
        raise SessionRefused("stale", f"{who}'s handshake time is {(their_ms - now_ms) / 1000:+.0f} s from our clock,"
                                      f" beyond the allowed skew of {limits.max_future_skew_ms // 1000} s")


def _verify(public: bytes, sig: bytes, message: bytes, who: str) -> None:
    try:
        verify_signature(public, sig, message)
    except SignatureError:
        raise SessionRefused("bad-signature", f"the {who}'s transcript signature does not verify") from None


@dataclass(frozen=True, slots=True)
class Established:
    """The handshake completed: frames from now on come from ``peer`` (its hub key), proven by signature."""

    peer: bytes
    version: int
    url: str          # the initiator's public URL (the responder's side learns it; signed in the transcript)
    role: str         # "member" or "applicant": what the responder lets the initiator do


class ReplayCache:
    """Hello nonces of completed handshakes, each kept for twice the allowed skew (older hellos are refused as
    stale anyway) and at most ``capacity`` of them (oldest forgotten first)."""

    def __init__(self, window_ms: int, capacity: int = 16_384) -> None:
        self._window = window_ms
        self._capacity = capacity
        self._seen: OrderedDict[bytes, int] = OrderedDict()

    def __contains__(self, nonce: object) -> bool:
        return nonce in self._seen

    def add(self, nonce: bytes, now_ms: int) -> None:
        self._seen[nonce] = now_ms
        self._seen.move_to_end(nonce)
        while self._seen and (len(self._seen) > self._capacity
                              or next(iter(self._seen.values())) < now_ms - self._window):
            self._seen.popitem(last=False)


class Initiator:
    """The dialing side's handshake: :meth:`hello` first, then :meth:`on_challenge`, then :meth:`on_ready`."""

    def __init__(self, key: HubKey, association: bytes, url: str, limits: Limits, *,
                 expect: bytes | None = None, nonce: bytes | None = None,
                 versions: tuple[int, ...] = SESSION_VERSIONS) -> None:
        self.key = key
        self.association = association
        self.url = url
        self.limits = limits
        self.expect = expect
        self.nonce = nonce if nonce is not None else os.urandom(NONCE_BYTES)
        self.versions = versions
        self._time = 0
        self._peer = b""
        self._version = 0
        self._state = "start"

    def hello(self, now_ms: int) -> bytes:
        self._time = now_ms
        self._state = "hello"
        return encode_frame("hello", {"versions": list(self.versions), "hub": self.key.public,
                                      "association": self.association, "nonce": self.nonce, "time": now_ms,
                                      "url": self.url})

    def on_challenge(self, data: bytes, now_ms: int) -> bytes:
        """Check the responder's challenge; return the ``auth`` frame.

        Raises:
            SessionRefused: malformed, a version not offered, not the expected hub, a bad signature, stale.
        """
        if self._state != "hello":
            raise SessionRefused("invalid", "a challenge out of order")
        message = _map(decode_frame(data, self.limits.max_fed_body_bytes), "challenge")
        version = _int(message, "version")
        hub, nonce = _bin(message, "hub", 32), _bin(message, "nonce", NONCE_BYTES)
        their_time, sig = _int(message, "time"), _bin(message, "sig", _SIG_BYTES)
        if version not in self.versions:
            raise SessionRefused("version", f"the responder chose version {version}, we offered {list(self.versions)}")
        if self.expect is not None and hub != self.expect:
            raise SessionRefused("wrong-key", f"expected hub {self.expect.hex()[:16]}…, the peer proved "
                                              f"{hub.hex()[:16]}…")
        if hub == self.key.public:
            raise SessionRefused("self", "this is our own hub")
        args = (version, self.association, self.key.public, hub, self.nonce, nonce, self._time, their_time,
                self.url)
        _verify(hub, sig, transcript("responder", *args), "responder")
        _check_time(their_time, now_ms, self.limits, "the responder")
        self._peer, self._version, self._state = hub, version, "auth"
        return encode_frame("auth", {"sig": self.key.sign(transcript("initiator", *args))})

    def on_ready(self, data: bytes) -> Established:
        """Raises:
        SessionRefused: not a ready frame, or an unknown role.
        """
        if self._state != "auth":
            raise SessionRefused("invalid", "a ready frame out of order")
        role = _map(decode_frame(data, self.limits.max_fed_body_bytes), "ready").get("role")
        if role not in ("member", "applicant"):
            raise SessionRefused("invalid", "ready: role is member or applicant")
        self._state = "ready"
        return Established(self._peer, self._version, self.url, str(role))


class Responder:
    """The accepting side's handshake: :meth:`on_hello` → challenge, :meth:`on_auth` → the proven peer, then
    the driver decides the role (membership, dropped) and sends :meth:`ready`."""

    def __init__(self, key: HubKey, association: bytes | None, limits: Limits, replay: ReplayCache, *,
                 nonce: bytes | None = None, versions: tuple[int, ...] = SESSION_VERSIONS) -> None:
        self.key = key
        self.association = association
        self.limits = limits
        self.replay = replay
        self.nonce = nonce if nonce is not None else os.urandom(NONCE_BYTES)
        self.versions = versions
        self._args: tuple[Any, ...] = ()
        self._peer = b""
        self._url = ""
        self._their_nonce = b""
        self._version = 0
        self._state = "start"

    def on_hello(self, data: bytes, now_ms: int) -> bytes:
        """Check the initiator's hello; return the ``challenge`` frame.

        Raises:
            SessionRefused: malformed, no version in common, another association, stale, a replayed nonce.
        """
        if self._state != "start":
            raise SessionRefused("invalid", "a hello out of order")
        message = _map(decode_frame(data, self.limits.max_fed_body_bytes), "hello")
        versions = message.get("versions")
        if not isinstance(versions, list) or not versions or len(versions) > 16:
            raise SessionRefused("invalid", "versions: a list of 1–16 integers")
        hub, association = _bin(message, "hub", 32), _bin(message, "association", 32)
        nonce, their_time = _bin(message, "nonce", NONCE_BYTES), _int(message, "time")
        url = message.get("url", "")
        if not isinstance(url, str) or len(url) > 500:
            raise SessionRefused("invalid", "url: the initiator's public URL, at most 500 characters")
        common = [v for v in self.versions if v in versions]
        if not common:
            raise SessionRefused("version", f"we speak versions {list(self.versions)}, the peer offered "
                                            f"{[v for v in versions if isinstance(v, int)][:16]}")
        if self.association is None:
            raise SessionRefused("wrong-association", "this hub has no association yet")
        if association != self.association:
            raise SessionRefused("wrong-association", f"this hub belongs to association "
                                                      f"{self.association.hex()[:16]}…, the peer to "
                                                      f"{association.hex()[:16]}…")
        if hub == self.key.public:
            raise SessionRefused("self", "this is our own hub")
        _check_time(their_time, now_ms, self.limits, "the initiator")
        if nonce in self.replay:
            raise SessionRefused("replay", "this hello's nonce was used before: a replayed handshake")
        version = max(common)
        self._args = (version, association, hub, self.key.public, nonce, self.nonce, their_time, now_ms, url)
        self._peer, self._url, self._their_nonce, self._version = hub, url, nonce, version
        self._state = "challenge"
        return encode_frame("challenge", {"version": version, "hub": self.key.public, "nonce": self.nonce,
                                          "time": now_ms,
                                          "sig": self.key.sign(transcript("responder", *self._args))})

    def on_auth(self, data: bytes, now_ms: int) -> Established:
        """Check the initiator's signature; return who it is (role still to be decided: :meth:`ready`).

        Raises:
            SessionRefused: malformed, a bad signature, or the nonce completed a handshake meanwhile.
        """
        if self._state != "challenge":
            raise SessionRefused("invalid", "an auth frame out of order")
        message = _map(decode_frame(data, self.limits.max_fed_body_bytes), "auth")
        _verify(self._peer, _bin(message, "sig", _SIG_BYTES), transcript("initiator", *self._args), "initiator")
        if self._their_nonce in self.replay:  # two sessions racing with one recorded hello
            raise SessionRefused("replay", "this hello's nonce was used before: a replayed handshake")
        self.replay.add(self._their_nonce, now_ms)
        self._state = "auth"
        return Established(self._peer, self._version, self._url, "")

    def ready(self, role: str) -> bytes:
        if self._state != "auth" or role not in ("member", "applicant"):
            raise ValueError("ready() follows on_auth(), with role member or applicant")
        self._state = "ready"
        return encode_frame("ready", {"role": role})


# -- requests after the handshake --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Request:
    seq: int
    op: str
    body: Any


@dataclass(frozen=True, slots=True)
class Reply:
    """The answer to request ``seq``: ``body``, or an error ``reason`` (protocol.errors.REASONS) and detail."""

    seq: int
    body: Any
    reason: str = ""
    detail: str = ""


def decode_message(data: bytes, limits: Limits) -> Request | Reply:
    """A frame after the handshake.

    Raises:
        SessionRefused: malformed, over the frame limit, or an unknown type.
    """
    frame = decode_frame(data, limits.max_fed_body_bytes)
    kind = frame[0]
    if len(frame) < 3 or not isinstance(frame[1], int) or isinstance(frame[1], bool) or frame[1] < 0:
        raise SessionRefused("invalid", f"{kind[:20]!r}: expected [type, seq, ...]")
    if kind == "req" and len(frame) == 4 and isinstance(frame[2], str):
        return Request(frame[1], frame[2], frame[3])
    if kind == "rep" and len(frame) == 3:
        return Reply(frame[1], frame[2])
    if kind == "err" and len(frame) == 4 and isinstance(frame[2], str) and isinstance(frame[3], str):
        return Reply(frame[1], None, frame[2] or "error", frame[3][:500])
    raise SessionRefused("invalid", f"unknown frame type {kind[:20]!r} or wrong arity")


def request_frame(seq: int, op: str, body: Any) -> bytes:
    return encode_frame("req", seq, op, body)


def reply_frame(seq: int, body: Any) -> bytes:
    return encode_frame("rep", seq, body)


def error_frame(seq: int, reason: str, detail: str) -> bytes:
    return encode_frame("err", seq, reason, detail[:500])


class TokenBucket:
    """A per-peer quota: ``rate`` units per second, bursts up to ``burst`` (sans-IO: time is passed in).

    :meth:`delay_ms` charges ``n`` units and says how long to wait so the average stays at ``rate``; the
    driver waits that long before reading the peer's next frame, which is back-pressure all the way to the
    peer's socket (its sends block) rather than a refusal. :meth:`take` admits at most what is available now.
    """

    def __init__(self, rate: int, burst: int, now_ms: int) -> None:
        self.rate = max(rate, 1)
        self.burst = max(burst, 1)
        self._tokens = float(self.burst)
        self._at = now_ms

    def _refill(self, now_ms: int) -> None:
        if now_ms > self._at:
            self._tokens = min(float(self.burst), self._tokens + (now_ms - self._at) * self.rate / 1000)
            self._at = now_ms

    def delay_ms(self, n: int, now_ms: int) -> int:
        self._refill(now_ms)
        self._tokens -= n
        return 0 if self._tokens >= 0 else int(-self._tokens * 1000 / self.rate) + 1

    def take(self, n: int, now_ms: int) -> int:
        """Admit up to ``n`` units now; return how many."""
        self._refill(now_ms)
        admitted = max(0, min(n, int(self._tokens)))
        self._tokens -= admitted
        return admitted
