"""The canonical msgpack profile (docs/protocol.md §3): what is produced, what is refused and why."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from protocol import DecodeError, TooLargeError, pack, unpack

BIG = 1 << 20


def u(data: bytes, **kw: Any) -> Any:
    return unpack(data, max_bytes=kw.pop("max_bytes", BIG), **kw)


@pytest.mark.parametrize(("value", "hex_"), [
    (0, "00"), (127, "7f"), (128, "cc80"), (255, "ccff"), (256, "cd0100"), (65535, "cdffff"),
    (65536, "ce00010000"), (2**32, "cf0000000100000000"), (2**64 - 1, "cfffffffffffffffff"),
    (-1, "ff"), (-32, "e0"), (-33, "d0df"), (-128, "d080"), (-129, "d1ff7f"),
    (-(2**31), "d280000000"), (-(2**63), "d38000000000000000"),
    ("", "a0"), ("a" * 31, "bf" + "61" * 31), ("a" * 32, "d920" + "61" * 32), ("é", "a2c3a9"),
    (b"", "c400"), (b"\x01", "c40101"), (True, "c3"), (False, "c2"),
    ([], "90"), ({}, "80"), ([1, [2]], "920191" + "02"),
])
def test_pack_writes_the_shortest_form(value: Any, hex_: str) -> None:
    assert pack(value).hex() == hex_
    assert u(bytes.fromhex(hex_)) == value


def test_pack_sorts_keys_by_utf8_bytes() -> None:
    # "Z" (0x5a) < "a" (0x61) < "é" (0xc3 0xa9); Python's str order agrees here, the bytes decide.
    value = {"é": 1, "a": 2, "Z": 3, "ab": 4}
    data = pack(value)
    assert list(msgpack.unpackb(data)) == ["Z", "a", "ab", "é"]
    assert u(data) == value


def test_utf8_order_differs_from_code_point_order_above_the_bmp() -> None:
    # U+FFFF sorts after U+10000 in UTF-16 but before it in UTF-8 and in code points; UTF-8 bytes decide.
    value = {"\U00010000": 1, "\uffff": 2}
    assert list(msgpack.unpackb(pack(value))) == ["\uffff", "\U00010000"]


def test_tuples_pack_as_arrays() -> None:
    assert pack((1, 2)) == pack([1, 2])


@pytest.mark.parametrize("value", [None, 1.5, 0.0, {1: "a"}, {b"k": 1}, [None], 2**64, -(2**63) - 1, object(),
                                   "\ud800", {"\ud800": 1}])
def test_pack_refuses_values_outside_the_profile(value: Any) -> None:
    with pytest.raises(DecodeError):
        pack(value)


def test_pack_never_emits_an_extension_type() -> None:
    # ExtType is a namedtuple, so it packs as the array it is; the output stays inside the profile.
    assert pack(msgpack.ExtType(1, b"x")) == pack([1, b"x"])


def test_pack_refuses_nesting_beyond_max_depth() -> None:
    deep: Any = 1
    for _ in range(4):
        deep = [deep]
    assert pack(deep, max_depth=4)
    with pytest.raises(TooLargeError):
        pack([deep], max_depth=4)


@pytest.mark.parametrize(("hex_", "why"), [
    ("c0", "nil"),
    ("ca3fc00000", "float32"),
    ("cb3ff8000000000000", "float64"),
    ("d40100", "fixext1"),
    ("c70101ff", "ext8"),
    ("d6ff00000000", "timestamp ext"),
    ("810101", "int map key"),
    ("81c4016101", "bin map key"),
    ("82a16101a16102", "duplicate keys"),
    ("82a16201a16101", "unsorted keys"),
    ("cc05", "uint8 for a fixint"),
    ("cd0005", "uint16 for a fixint"),
    ("ce00000005", "uint32 for a fixint"),
    ("cf0000000000000005", "uint64 for a fixint"),
    ("d005", "int8 for a positive fixint"),
    ("d0ff", "int8 for a negative fixint"),
    ("d1ff80", "int16 where int8 fits"),
    ("d90161", "str8 for a fixstr"),
    ("da000161", "str16 for a fixstr"),
    ("c5000101", "bin16 where bin8 fits"),
    ("dc000101", "array16 for a fixarray"),
    ("de0001a16101", "map16 for a fixmap"),
    ("0000", "trailing byte"),
    ("9201", "truncated array"),
    ("a3616263ff", "trailing byte after str"),
    ("a26162"[:4], "truncated str"),
    ("", "empty input"),
    ("c1", "reserved byte 0xc1"),
    ("a1ff", "invalid UTF-8"),
    ("a2eda080", "UTF-8 of a lone surrogate"),
])
def test_unpack_refuses_non_canonical_input(hex_: str, why: str) -> None:
    with pytest.raises(DecodeError):
        u(bytes.fromhex(hex_))


def test_unpack_refuses_oversize_input_before_parsing() -> None:
    data = pack("x" * 100)
    assert u(data, max_bytes=len(data)) == "x" * 100
    with pytest.raises(TooLargeError):
        u(data, max_bytes=len(data) - 1)


def test_unpack_refuses_deep_nesting() -> None:
    assert u(b"\x91" * 4 + b"\x01", max_depth=4) == [[[[1]]]]
    with pytest.raises(TooLargeError):
        u(b"\x91" * 5 + b"\x01", max_depth=4)


def test_unpack_refuses_msgpack_stack_overflow_as_decode_or_too_large() -> None:
    with pytest.raises((DecodeError, TooLargeError)):
        u(b"\x91" * 5000 + b"\x01")


def test_unpack_refuses_non_bytes() -> None:
    with pytest.raises(DecodeError):
        u("\x01")  # type: ignore[arg-type]


def test_unpack_accepts_bytearray_and_memoryview() -> None:
    data = pack({"a": [1, b"x"]})
    assert u(bytearray(data)) == {"a": [1, b"x"]}
    assert u(memoryview(data)) == {"a": [1, b"x"]}


def test_unpack_refuses_huge_declared_lengths() -> None:
    with pytest.raises(DecodeError):
        u(bytes.fromhex("ddffffffff"))
    with pytest.raises(DecodeError):
        u(bytes.fromhex("c6ffffffff00"))
