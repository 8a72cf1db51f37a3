"""The canonical msgpack profile (docs/protocol.md §3).

A value is canonical when it is built only from: integers in [-2**63, 2**64) in their shortest msgpack form,
UTF-8 strings (str family), byte strings (bin family), booleans, arrays, and maps whose keys are strings, unique
and sorted by their UTF-8 bytes. No nil, no floats, no extension types. msgpack-python's packer already writes
the shortest form of every integer, string, array and map header, so ``pack`` only has to sort map keys; the
decoder checks canonicity by re-encoding and comparing bytes, which also refuses duplicate keys, unsorted keys,
over-long headers and trailing bytes.

The decoder's contract: :func:`unpack` returns a value or raises :class:`~protocol.errors.DecodeError`
(or :class:`~protocol.errors.TooLargeError`); any other exception is a bug. msgpack's own exceptions are
translated here and nowhere else.
"""

from __future__ import annotations

from typing import Any, cast

import msgpack

from .errors import DecodeError, TooLargeError

__all__ = ["pack", "unpack"]

_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1


def _canonical(value: Any, depth: int, max_depth: int) -> Any:
    """Check a value's types and return it with map keys sorted."""
    if depth > max_depth:
        raise TooLargeError(f"nested deeper than {max_depth} levels")
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            raise DecodeError(f"integer {value} is outside the 64-bit range")
        return value
    if isinstance(value, str | bytes):
        return value
    if isinstance(value, list | tuple):
        return [_canonical(v, depth + 1, max_depth) for v in value]
    if isinstance(value, dict):
        out = {}
        for key in sorted(value, key=_key_bytes):
            out[key] = _canonical(value[key], depth + 1, max_depth)
        return out
    raise DecodeError(f"type {type(value).__name__} is not allowed (no nil, floats or extension types)")


def _key_bytes(key: Any) -> bytes:
    if not isinstance(key, str):
        raise DecodeError(f"map keys are strings, got {type(key).__name__}")
    return key.encode("utf-8")


def pack(value: Any, *, max_depth: int = 8) -> bytes:
    """The canonical bytes of ``value``.

    Raises:
        DecodeError: a type outside the profile (nil, float, non-string map key, out-of-range integer).
        TooLargeError: nested deeper than ``max_depth``.
    """
    try:
        return cast(bytes, msgpack.packb(_canonical(value, 0, max_depth), use_bin_type=True))
    except UnicodeEncodeError:
        raise DecodeError("strings must be valid UTF-8 (lone surrogates are not)") from None


def unpack(data: bytes, *, max_bytes: int, max_depth: int = 8) -> Any:
    """Decode exactly one canonical value from ``data``.

    Raises:
        TooLargeError: ``data`` is longer than ``max_bytes`` or nested deeper than ``max_depth``.
        DecodeError: malformed msgpack, trailing bytes, a type outside the profile, or a non-canonical form.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > max_bytes:
        raise TooLargeError(f"{len(data)} bytes is over the limit of {max_bytes}")
    try:
        value = msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
        )
    except msgpack.ExtraData:
        raise DecodeError("trailing bytes after the record") from None
    except (ValueError, TypeError, msgpack.UnpackException, RecursionError) as exc:
        # msgpack raises ValueError (incomplete, bad UTF-8), FormatError/StackError (UnpackException subclasses)
        # and TypeError (unhashable map key); all mean the bytes are not one well-formed value.
        raise DecodeError(f"not well-formed msgpack ({type(exc).__name__})") from None
    if pack(value, max_depth=max_depth) != data:
        raise DecodeError("not in canonical form (re-encoding gives different bytes)")
    return value
