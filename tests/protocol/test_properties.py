"""Property tests: round-trips over whole value ranges, tamper refusal, and the decoder's fuzz contract.

The contract (docs/protocol.md §3, h11's ``next_event`` rule): :func:`decode_record` returns a valid record or
raises a :class:`ProtocolError` subclass; any other exception is a bug. Hypothesis prints the failing example,
and ``derandomize`` keeps runs reproducible.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import DEFAULT_LIMITS, ProtocolError, Record, build_record, decode_record, pack, unpack

from .factories import ID_Y, T0, A, B, C, body

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])
NOW = T0 + 10**9
MAX = 1 << 20

ints = st.integers(min_value=-(2**63), max_value=2**64 - 1)
texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
scalars = ints | texts | st.binary(max_size=40) | st.booleans()
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(texts, inner, max_size=5),
    max_leaves=30,
)


@SETTINGS
@given(values)
def test_encode_decode_round_trip(value: Any) -> None:
    data = pack(value, max_depth=64)
    assert unpack(data, max_bytes=MAX, max_depth=64) == value
    assert pack(unpack(data, max_bytes=MAX, max_depth=64), max_depth=64) == data


@SETTINGS
@given(ints)
def test_every_64_bit_integer_round_trips(n: int) -> None:
    assert unpack(pack(n), max_bytes=16) == n


@SETTINGS
@given(st.dictionaries(texts, ints, max_size=8))
def test_map_keys_come_out_in_utf8_order(value: dict[str, int]) -> None:
    import msgpack

    keys = list(msgpack.unpackb(pack(value), raw=True, strict_map_key=False))
    assert keys == sorted(keys)


# --- records --------------------------------------------------------------------------------------------

short = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=60)
ids = st.binary(min_size=32, max_size=32)
times = st.integers(min_value=DEFAULT_LIMITS.min_created_ms, max_value=NOW)
slugs = st.from_regex(r"[a-z0-9][a-z0-9-]{0,20}", fullmatch=True)


def _guide(title: str, summary: str, text: str, tags: list[str]) -> dict[str, Any]:
    return body("guide", title=title, summary=summary, body=text, tags=tags)


bodies = st.one_of(
    st.tuples(st.just("pledge"), st.builds(lambda o, q: {"offer": o, "quantity": q}, ids,
                                           st.integers(0, 10**12))),
    st.tuples(st.just("endorsement"), st.builds(lambda s, t: {"subject": s, "statement": t}, ids, short)),
    st.tuples(st.just("revocation"), st.builds(lambda t, r: {"target": t, "reason": r}, ids, short)),
    st.tuples(st.just("guide"), st.builds(_guide, short, short, st.text(min_size=1, max_size=2000),
                                          st.lists(slugs, max_size=5, unique=True))),
    st.tuples(st.just("offer-close"), st.builds(
        lambda o, out, ps: {"offer": o, "outcome": out, "pledges": ps},
        ids, st.sampled_from(["awarded", "cancelled"]), st.lists(ids, max_size=20, unique=True))),
    st.tuples(st.just("profile"), st.builds(lambda n, regions: body("profile", name=n, regions=regions),
                                            short, st.lists(short, max_size=5, unique=True))),
    st.tuples(st.just("charter"), st.builds(
        lambda n, k: body("charter", name=n, endorsements_needed=k), short, st.integers(1, 100))),
)
keys = st.sampled_from([A, B, C])


@SETTINGS
@given(keys, bodies, times, ids.filter(lambda b: b != bytes(32)))
def test_built_records_round_trip(key: Any, kind_body: tuple[str, dict[str, Any]], created_ms: int,
                                  association: bytes) -> None:
    kind, b = kind_body
    rec = build_record(key, association, kind, b, created_ms)
    out = decode_record(rec.raw, now_ms=NOW)
    assert out == rec
    assert out.body == b


GUIDE = build_record(A, ID_Y, "guide", body("guide", body="Check in before and after each visit. " * 25), T0)
PLEDGE = build_record(B, ID_Y, "pledge", body("pledge"), T0)
CHARTER = build_record(C, bytes(32), "charter", body("charter"), T0)
SIGNED: list[Record] = [GUIDE, PLEDGE, CHARTER]


def _refused(raw: bytes) -> ProtocolError:
    try:
        decode_record(raw, now_ms=NOW)
    except ProtocolError as exc:
        return exc
    raise AssertionError(f"accepted: {raw.hex()}")


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.sampled_from(SIGNED), st.data())
def test_any_single_byte_change_is_refused(rec: Record, data: st.DataObject) -> None:
    position = data.draw(st.integers(0, len(rec.raw) - 1), label="position")
    new = data.draw(st.integers(0, 255).filter(lambda v: v != rec.raw[position]), label="new byte")
    tampered = rec.raw[:position] + bytes([new]) + rec.raw[position + 1:]
    _refused(tampered)


def test_every_single_bit_flip_of_a_pledge_is_refused() -> None:
    # Exhaustive over bit flips of one small record (~150 bytes × 8): complements the sampled test above.
    raw = PLEDGE.raw
    for i in range(len(raw)):
        for bit in range(8):
            _refused(raw[:i] + bytes([raw[i] ^ (1 << bit)]) + raw[i + 1:])


def _decode_contract(raw: bytes) -> None:
    """Decoding returns a record or raises ProtocolError; anything else propagates and fails the test."""
    try:
        rec = decode_record(raw, now_ms=NOW)
    except ProtocolError:
        return
    assert rec.raw == raw  # whatever is accepted is exactly the input, re-checked


@settings(max_examples=500, deadline=None, derandomize=True)
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_protocol_errors(raw: bytes) -> None:
    _decode_contract(raw)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.binary(max_size=40))
def test_random_bytes_behind_a_record_header_raise_only_protocol_errors(tail: bytes) -> None:
    # Start like a record so the fuzzer gets past the first byte more often.
    _decode_contract(b"\x97\x01" + tail)
    _decode_contract(GUIDE.raw[:40] + tail)


mutations = st.lists(
    st.tuples(st.sampled_from(["set", "insert", "delete"]), st.integers(0, 10**6), st.integers(0, 255)),
    min_size=1, max_size=6)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.sampled_from(SIGNED), mutations, st.integers(0, 10**6))
def test_mutated_and_truncated_records_raise_only_protocol_errors(
        rec: Record, edits: list[tuple[str, int, int]], cut: int) -> None:
    raw = bytearray(rec.raw)
    for op, pos, value in edits:
        i = pos % (len(raw) + 1)
        if op == "insert":
            raw.insert(i, value)
        elif raw and op == "set":
            raw[min(i, len(raw) - 1)] = value
        elif raw:
            del raw[min(i, len(raw) - 1)]
    _decode_contract(bytes(raw))
    _decode_contract(bytes(raw)[: cut % (len(raw) + 1)])


@settings(max_examples=200, deadline=None, derandomize=True)
@given(values)
def test_any_canonical_value_as_a_record_raises_only_protocol_errors(value: Any) -> None:
    _decode_contract(pack(value, max_depth=64))


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.sampled_from(sorted(["charter", "profile", "endorsement", "guide", "offer", "pledge", "offer-close",
                               "attestation", "revocation", "nope"])), values)
def test_any_signed_body_raises_only_protocol_errors(kind: str, b: Any) -> None:
    # A correctly signed envelope around an arbitrary body reaches the schema check and the body's extras.
    from protocol import SIGNING_DOMAIN

    fields = [1, ID_Y if kind != "charter" else bytes(32), A.public, T0, kind, b]
    try:
        six = pack(fields, max_depth=DEFAULT_LIMITS.max_depth + 1)
    except ProtocolError:
        return
    raw = pack([*fields, A.sign(SIGNING_DOMAIN + six)], max_depth=DEFAULT_LIMITS.max_depth + 1)
    _decode_contract(raw)
