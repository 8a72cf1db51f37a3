"""Hub identities: Ed25519 key pairs whose public key is the hub id.

Text form: ``hub_`` followed by the lowercase, unpadded RFC 4648 base32 of the 32-byte public key and a
2-byte checksum (the first two bytes of its SHA-256), so that a mistyped id is refused rather than naming some
other hub. The underscore keeps the whole id selectable with one double-click.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .errors import ProtocolError, SignatureError

__all__ = ["HUB_ID_PREFIX", "HubKey", "format_hub_id", "parse_hub_id", "verify_signature"]

HUB_ID_PREFIX = "hub_"
_CHECKSUM_BYTES = 2


class HubKey:
    """A hub's private key. ``seed`` is the 32-byte Ed25519 private key (RFC 8032 §5.1.5)."""

    __slots__ = ("_private", "public")

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public: bytes = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @classmethod
    def generate(cls) -> HubKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> HubKey:
        """Raises:
        ProtocolError: the seed is not 32 bytes.
        """
        if len(seed) != 32:
            raise ProtocolError(f"a private key seed is 32 bytes, got {len(seed)}", field="key")
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    def seed(self) -> bytes:
        from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

        return self._private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())

    @property
    def hub_id(self) -> str:
        return format_hub_id(self.public)

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)


def _checksum(public: bytes) -> bytes:
    return hashlib.sha256(b"coophub-hub-id" + public).digest()[:_CHECKSUM_BYTES]


@lru_cache(maxsize=8192)  # pages and views name the same hubs again and again; base32 in Python is ~30 µs
def format_hub_id(public: bytes) -> str:
    """The text form of a 32-byte public key."""
    text = base64.b32encode(public + _checksum(public)).decode("ascii").rstrip("=").lower()
    return HUB_ID_PREFIX + text


def parse_hub_id(text: str) -> bytes:
    """The 32-byte public key named by a hub id.

    Raises:
        ProtocolError: not of the form ``hub_…``, bad base32, wrong length or checksum.
    """
    text = text.strip()
    if not text.startswith(HUB_ID_PREFIX):
        raise ProtocolError(f"a hub id starts with {HUB_ID_PREFIX!r}, got {text[:12]!r}", field="hub_id")
    body = text[len(HUB_ID_PREFIX) :].upper()
    try:
        raw = base64.b32decode(body + "=" * (-len(body) % 8))
    except ValueError:
        raise ProtocolError("a hub id is base32 (letters a-z and digits 2-7)", field="hub_id") from None
    if len(raw) != 32 + _CHECKSUM_BYTES:
        raise ProtocolError(f"a hub id is {len(format_hub_id(bytes(32)))} characters long", field="hub_id")
    public, check = raw[:32], raw[32:]
    if _checksum(public) != check:
        raise ProtocolError("hub id checksum does not match: check for a typo", field="hub_id")
    if format_hub_id(public) != HUB_ID_PREFIX + body.lower():
        # The last base32 character carries 3 unused bits; b32decode ignores them, so without this check
        # eight spellings would name one hub and text comparisons of hub ids would disagree.
        raise ProtocolError("hub id's last character is not the canonical one: check for a typo",
                            field="hub_id")
    return public


@lru_cache(maxsize=4096)
def _public_key(public: bytes) -> Ed25519PublicKey:
    # Parsing a public key costs about a fifth of a verification; associations have few authors.
    return Ed25519PublicKey.from_public_bytes(public)


def verify_signature(public: bytes, signature: bytes, message: bytes) -> None:
    """Raises:
    SignatureError: the signature does not verify, or the key is not a valid Ed25519 point.
    """
    try:
        _public_key(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        raise SignatureError("signature does not verify against the author's key", field="signature") from None
