"""Negentropy protocol v1 wire primitives: varints, bounds and a bounded message reader (docs/negentropy.md).

Everything here follows "Negentropy Protocol V1" (docs/negentropy-protocol-v1.md in hoytech/negentropy,
cited below as *spec*) and the reference C++ implementation (``cpp/negentropy/encoding.h``,
``cpp/negentropy/types.h``, cited as *ref*). The reader is deliberately stricter than the reference where
the reference would read garbage (over-long varints, id prefixes over 32 bytes, id lists longer than the
message) and raises :class:`NegentropyError` for every malformed input; no other exception escapes it.
"""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

__all__ = [
    "FINGERPRINT_SIZE",
    "ID_SIZE",
    "INFINITY",
    "MAX_U64",
    "MAX_VARINT_BYTES",
    "MIN_FRAME_SIZE_LIMIT",
    "PROTOCOL_VERSION",
    "Bound",
    "Mode",
    "NegentropyError",
    "Reader",
    "encode_varint",
    "item_key",
]

#: spec "Message": protocol version 1 is the byte 0x61 (0x62 would be version 2, and so on).
PROTOCOL_VERSION = 0x61
#: spec "Id": IDs are byte strings of length 32.
ID_SIZE = 32
#: spec "Fingerprint Algorithm": the first 16 bytes of a SHA-256 digest.
FINGERPRINT_SIZE = 16
#: spec "Preparation": 2**64 - 1 is reserved as the "infinity" timestamp.
MAX_U64 = (1 << 64) - 1
#: A 64-bit value needs at most ceil(64 / 7) = 10 base-128 digits.
MAX_VARINT_BYTES = 10
#: ref ``Negentropy::Negentropy``: a non-zero frame size limit below 4096 is refused.
MIN_FRAME_SIZE_LIMIT = 4096

_ID_BITS = ID_SIZE * 8


class NegentropyError(Exception):
    """A Negentropy message is malformed or hostile, or the reconciler was used out of order."""


class Mode(IntEnum):
    """spec "Range": the mode Varint selecting a Range's payload."""

    SKIP = 0
    FINGERPRINT = 1
    ID_LIST = 2


def item_key(timestamp: int, id_: bytes) -> int:
    """Return one integer that orders (timestamp, id) pairs as the spec sorts items.

    spec "Preparation": items sort by timestamp, then lexically by ID. Packing the timestamp above the 256 ID
    bits (read big-endian) gives the same order with one fast integer comparison. A bound's id prefix shorter
    than 32 bytes is padded with zero bytes first (spec "Bound": omitted trailing bytes are implicitly 0).
    """
    return (timestamp << _ID_BITS) | int.from_bytes(id_, "big") << (8 * (ID_SIZE - len(id_)))


class Bound(NamedTuple):
    """spec "Bound": an exclusive upper bound, a timestamp plus an id prefix of 0 to 32 bytes."""

    timestamp: int
    prefix: bytes = b""

    @property
    def key(self) -> int:
        """The bound's position in item order (see :func:`item_key`)."""
        return item_key(self.timestamp, self.prefix)


#: The bound that closes the whole timestamp/ID space.
INFINITY = Bound(MAX_U64)


def encode_varint(n: int) -> bytes:
    """Encode ``n`` as a spec "Varint": base-128 digits, most significant first, high bit on all but the last.

    Raises:
        ValueError: ``n`` is negative or does not fit in 64 bits (a caller's bug, never peer input).
    """
    if n < 0 or n > MAX_U64:
        raise ValueError(f"varint out of range: {n}")
    if n < 0x80:
        return bytes((n,))
    digits = [n & 0x7F]
    n >>= 7
    while n:
        digits.append(0x80 | (n & 0x7F))
        n >>= 7
    digits.reverse()
    return bytes(digits)


class Reader:
    """A cursor over one incoming message that refuses to read past its end.

    Every method raises :class:`NegentropyError` (and nothing else) on malformed input.
    """

    __slots__ = ("_data", "_pos", "_end")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0
        self._end = len(data)

    @property
    def remaining(self) -> int:
        """How many bytes are left unread."""
        return self._end - self._pos

    def byte(self) -> int:
        """Read one byte.

        Raises:
            NegentropyError: the message has ended.
        """
        if self._pos >= self._end:
            raise NegentropyError("message ends prematurely")
        b = self._data[self._pos]
        self._pos += 1
        return b

    def take(self, n: int) -> bytes:
        """Read exactly ``n`` bytes.

        Raises:
            NegentropyError: fewer than ``n`` bytes are left.
        """
        if n > self._end - self._pos:
            raise NegentropyError(f"message ends prematurely: wanted {n} bytes, {self._end - self._pos} left")
        start = self._pos
        self._pos += n
        return self._data[start : self._pos]

    def varint(self) -> int:
        """Read a spec "Varint" of at most 10 bytes whose value fits in 64 bits.

        The reference (ref ``decodeVarInt``) accepts any length and silently drops high bits; we refuse.
        Non-minimal encodings (leading 0x80 digits) are accepted as the reference accepts them.

        Raises:
            NegentropyError: the varint is truncated, longer than 10 bytes or above 2**64 - 1.
        """
        data, pos, end = self._data, self._pos, self._end
        result = 0
        for i in range(MAX_VARINT_BYTES):
            if pos + i >= end:
                raise NegentropyError("message ends inside a varint")
            b = data[pos + i]
            result = (result << 7) | (b & 0x7F)
            if not b & 0x80:
                self._pos = pos + i + 1
                if result > MAX_U64:
                    raise NegentropyError("varint does not fit in 64 bits")
                return result
        raise NegentropyError(f"varint longer than {MAX_VARINT_BYTES} bytes")
