"""Negentropy v1 (docs/negentropy.md): conformance against the reference C++ transcripts, the harness, and
property tests of termination, correctness and decoder robustness."""

from __future__ import annotations

import hashlib
import json
import lzma
import os
import random
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from federation.negentropy import Negentropy, NegentropyError, Storage
from federation.negentropy_wire import MAX_U64, Bound, Reader, encode_varint

#: The reference C++ transcripts, vendored (xz-compressed) with their provenance in data/README.md, so a fresh
#: clone with nothing beside it runs the conformance tests.
VECTORS_PATH = Path(__file__).resolve().parent / "data" / "negentropy-vectors.json.xz"
REPO_ROOT = Path(__file__).resolve().parents[2]
BASE_MS = 1767225600000

Item = tuple[int, bytes]


# -- vectors -------------------------------------------------------------------------------------------------


@cache
def load_vectors() -> list[dict[str, Any]]:
    """The reference transcripts; a missing file is a failure, never a skip."""
    if not VECTORS_PATH.is_file():
        pytest.fail(f"conformance vectors missing: {VECTORS_PATH}")
    data = json.loads(lzma.decompress(VECTORS_PATH.read_bytes()))
    assert data["protocol"] == "negentropy v1"
    vectors: list[dict[str, Any]] = data["vectors"]
    assert vectors
    return vectors


def vector_names() -> list[str]:
    try:
        return [v["name"] for v in load_vectors()]
    except BaseException:  # pytest.fail at collection time: let test_vectors_present report it
        return ["<vectors missing>"]


def vector(name: str) -> dict[str, Any]:
    for v in load_vectors():
        if v["name"] == name:
            return v
    pytest.fail(f"no vector {name!r}")


@cache
def generate(name: str) -> tuple[tuple[Item, ...], tuple[Item, ...]]:
    """Re-run the README's item-set rule for one vector: (client items, server items)."""
    v = vector(name)
    a, b = v["shares"]
    client: list[Item] = []
    server: list[Item] = []
    for i in range(v["items"]):
        id_ = hashlib.sha256(f"coophub-negentropy-vector:{name}:{i}".encode()).digest()
        ts = BASE_MS + (i // v["timestamps_per_value"]) * 1000
        if a == "one" or b == "one":
            side = ("client" if a == "one" else "server") if i == 0 else "both"
        else:
            f = int(id_.hex()[0:4], 16) / 65536
            side = "client" if f < a else "server" if f < a + b else "both"
        if side != "server":
            client.append((ts, id_))
        if side != "client":
            server.append((ts, id_))
    return tuple(client), tuple(server)


def digest(items: tuple[Item, ...]) -> str:
    lines = sorted((ts, id_.hex()) for ts, id_ in items)
    return hashlib.sha256("".join(f"{ts},{h}\n" for ts, h in lines).encode()).hexdigest()


def messages(name: str) -> list[bytes]:
    return [bytes.fromhex(m) for m in vector(name)["messages"]]


def test_vectors_present() -> None:
    assert len(load_vectors()) >= 10
    assert any(v["frame_size_limit"] for v in load_vectors())


@pytest.mark.parametrize("name", vector_names())
def test_vector_item_sets_regenerate(name: str) -> None:
    v = vector(name)
    client, server = generate(name)
    assert len(client) == v["client_items"]
    assert digest(client) == v["client_digest"]
    assert len(server) == v["server_items"]
    assert digest(server) == v["server_digest"]
    assert any(ts > 2**32 for ts, _ in client + server) or v["items"] == 0


@pytest.mark.parametrize("name", vector_names())
def test_responder_matches_reference(name: str) -> None:
    v = vector(name)
    msgs = messages(name)
    responder = Negentropy(Storage(generate(name)[1]), v["frame_size_limit"])
    for i in range(0, len(msgs), 2):
        reply = responder.reconcile(msgs[i])
        assert reply.hex() == msgs[i + 1].hex(), f"server message {i + 1} differs"


@pytest.mark.parametrize("name", vector_names())
def test_initiator_matches_reference(name: str) -> None:
    v = vector(name)
    msgs = messages(name)
    initiator = Negentropy(Storage(generate(name)[0]), v["frame_size_limit"])
    assert initiator.initiate().hex() == msgs[0].hex()
    have: list[bytes] = []
    need: list[bytes] = []
    for i in range(1, len(msgs), 2):
        out, h, n = initiator.reconcile_initiator(msgs[i])
        have += h
        need += n
        if i + 1 < len(msgs):
            assert out is not None and out.hex() == msgs[i + 1].hex(), f"client message {i + 1} differs"
        else:
            assert out is None
    assert sorted(x.hex() for x in have) == sorted(v["client_have"])
    assert sorted(x.hex() for x in need) == sorted(v["client_need"])
    assert len(have) == len(set(have)) and len(need) == len(set(need))


def run_pair(
    client_items: Any, server_items: Any, *, whole_range: bool, limit_c: int = 0, limit_s: int = 0
) -> tuple[set[bytes], set[bytes], int, int, int, int]:
    """Reconcile in-process; return (have, need, rounds, bytes up, bytes down, largest message)."""
    client = Negentropy(Storage(client_items), limit_c)
    server = Negentropy(Storage(server_items), limit_s)
    msg: bytes | None = client.initiate(whole_range_fingerprint=whole_range)
    have: list[bytes] = []
    need: list[bytes] = []
    rounds = up = down = largest = 0
    while msg is not None:
        assert rounds < 200, "reconciliation does not terminate"
        up += len(msg)
        reply = server.reconcile(msg)
        down += len(reply)
        largest = max(largest, len(msg), len(reply))
        rounds += 1
        msg, h, n = client.reconcile_initiator(reply)
        have += h
        need += n
    assert len(have) == len(set(have)) and len(need) == len(set(need)), "an id was reported twice"
    return set(have), set(need), rounds, up, down, largest


@pytest.mark.parametrize("name", vector_names())
def test_reference_opening_totals_match_vector(name: str) -> None:
    v = vector(name)
    client, server = generate(name)
    limit = v["frame_size_limit"]
    _, _, rounds, up, down, _ = run_pair(client, server, whole_range=False, limit_c=limit, limit_s=limit)
    assert (rounds, up + down) == (v["round_trips"], v["bytes"])


@pytest.mark.parametrize("name", vector_names())
def test_whole_range_opening_against_own_responder(name: str) -> None:
    v = vector(name)
    client, server = generate(name)
    limit = v["frame_size_limit"]
    have, need, _, up, down, largest = run_pair(
        client, server, whole_range=True, limit_c=limit, limit_s=limit
    )
    client_ids = {id_ for _, id_ in client}
    server_ids = {id_ for _, id_ in server}
    assert have == client_ids - server_ids
    assert need == server_ids - client_ids
    assert {x.hex() for x in have} == set(v["client_have"])
    assert {x.hex() for x in need} == set(v["client_need"])
    if limit:
        assert largest <= limit
    if client_ids == server_ids:
        assert up <= 30 and down <= 30, (up, down)


def test_whole_range_opening_is_twenty_bytes() -> None:
    client, server = generate("identical-3000")
    msg = Negentropy(Storage(client)).initiate(whole_range_fingerprint=True)
    assert len(msg) == 20
    assert msg[:4] == bytes([0x61, 0x00, 0x00, 0x01])  # version, infinity, empty prefix, Fingerprint
    assert Negentropy(Storage(server)).reconcile(msg) == b"\x61"


# -- harness -------------------------------------------------------------------------------------------------


def run_harness(stdin: str, limit: int = 0, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "FRAMESIZELIMIT": str(limit), **env}
    return subprocess.run(
        [sys.executable, "-m", "federation.negentropy_harness"],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=environ,
        timeout=60,
    )


def item_lines(items: tuple[Item, ...]) -> list[str]:
    return [f"item,{ts},{id_.hex()}" for ts, id_ in items]


@pytest.mark.parametrize("name", ["five-percent-each-way-5000", "frame-limit-4096-8000-ten-percent"])
def test_harness_as_initiator(name: str) -> None:
    v = vector(name)
    msgs = v["messages"]
    lines = [*item_lines(generate(name)[0]), "seal", "initiate", *(f"msg,{m}" for m in msgs[1::2])]
    result = run_harness("\n".join(lines) + "\n", v["frame_size_limit"])
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    assert [line[4:] for line in out if line.startswith("msg,")] == msgs[0::2]
    assert out[-1] == "done" and out.count("done") == 1
    assert sorted(line[5:] for line in out if line.startswith("have,")) == sorted(v["client_have"])
    assert sorted(line[5:] for line in out if line.startswith("need,")) == sorted(v["client_need"])


@pytest.mark.parametrize("name", ["frame-limit-4096-client-empty-3000", "same-timestamp-ties-2000"])
def test_harness_as_responder(name: str) -> None:
    v = vector(name)
    msgs = v["messages"]
    lines = ["", *item_lines(generate(name)[1]), "seal", *(f"msg,{m}" for m in msgs[0::2])]
    result = run_harness("\n".join(lines) + "\n", v["frame_size_limit"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"msg,{m}" for m in msgs[1::2]]


def test_harness_pair_whole_range_opening() -> None:
    """Two harness processes, ours against ours, driven like the reference fuzz.pl."""
    client, server = generate("same-timestamp-ties-2000")
    env = {"NEGENTROPY_OPENING": "whole-range"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "federation.negentropy_harness"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO_ROOT,
            env={**os.environ, **env},
        )
        for _ in range(2)
    ]
    c, s = procs
    assert c.stdin and c.stdout and s.stdin and s.stdout
    try:
        c.stdin.write("\n".join([*item_lines(client), "seal", "initiate"]) + "\n")
        c.stdin.flush()
        s.stdin.write("\n".join([*item_lines(server), "seal"]) + "\n")
        s.stdin.flush()
        have: set[str] = set()
        need: set[str] = set()
        for _ in range(50):
            line = c.stdout.readline().strip()
            while line.startswith(("have,", "need,")):
                (have if line.startswith("have,") else need).add(line[5:])
                line = c.stdout.readline().strip()
            if line == "done":
                break
            assert line.startswith("msg,"), line
            s.stdin.write(line + "\n")
            s.stdin.flush()
            reply = s.stdout.readline().strip()
            assert reply.startswith("msg,"), reply
            c.stdin.write(reply + "\n")
            c.stdin.flush()
        else:
            pytest.fail("harness pair did not finish")
    finally:
        for p in procs:
            p.kill()
            p.wait()
            for f in (p.stdin, p.stdout):
                if f:
                    f.close()
    v = vector("same-timestamp-ties-2000")
    assert have == set(v["client_have"]) and need == set(v["client_need"])


@pytest.mark.parametrize(
    ("stdin", "limit"),
    [
        ("bogus\n", 0),
        ("item,1\n", 0),
        ("item,x," + "00" * 32 + "\n", 0),
        ("item,1,zz\n", 0),
        ("item,1,00\n", 0),
        ("initiate\n", 0),
        ("seal\nmsg,6\n", 0),
        ("seal\nmsg,6100\n", 0),
        ("seal\nmsg,61" + "ff" * 11 + "\n", 0),
        (f"item,{MAX_U64}," + "00" * 32 + "\nseal\n", 0),
        ("seal\n", 100),
    ],
)
def test_harness_rejects_bad_input(stdin: str, limit: int) -> None:
    result = run_harness(stdin, limit)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("error: ")


# -- wire format ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "encoded"),
    [(0, "00"), (1, "01"), (127, "7f"), (128, "8100"), (300, "822c"), (MAX_U64, "81" + "ff" * 8 + "7f")],
)
def test_varint(n: int, encoded: str) -> None:
    assert encode_varint(n).hex() == encoded
    assert Reader(bytes.fromhex(encoded)).varint() == n


def test_reader_refuses_overlong_and_oversized_varints() -> None:
    with pytest.raises(NegentropyError):
        Reader(b"\x80" * 10 + b"\x01").varint()  # 11 bytes
    with pytest.raises(NegentropyError):
        Reader(b"\x82" + b"\xff" * 8 + b"\x7f").varint()  # 2**64
    # Non-minimal but only 10 bytes: accepted, as the reference accepts it.
    assert Reader(b"\x80" * 9 + b"\x05").varint() == 5


def test_fingerprint_definition() -> None:
    ids = [hashlib.sha256(bytes([i])).digest() for i in range(3)]
    storage = Storage((1000 + i, id_) for i, id_ in enumerate(ids))
    total = sum(int.from_bytes(x, "little") for x in ids) % 2**256
    expected = hashlib.sha256(total.to_bytes(32, "little") + b"\x03").digest()[:16]
    assert storage.fingerprint(0, 3) == expected
    assert storage.fingerprint(1, 1) == hashlib.sha256(bytes(32) + b"\x00").digest()[:16]


def test_storage_sorts_dedupes_and_validates() -> None:
    a, b = b"\x02" * 32, b"\x01" * 32
    storage = Storage([(5, a), (5, b), (3, a), (5, a)])
    assert [storage.item(i) for i in range(len(storage))] == [(3, a), (5, b), (5, a)]
    for bad in [(-1, a), (MAX_U64, a), (1, b"\x00" * 31), ("1", a)]:
        with pytest.raises(ValueError):
            Storage([bad])  # type: ignore[list-item]
    with pytest.raises(ValueError):
        Negentropy(storage, 4095)


def responder() -> Negentropy:
    return Negentropy(Storage((BASE_MS + i, hashlib.sha256(b"%d" % i).digest()) for i in range(100)), 4096)


@pytest.mark.parametrize(
    "msg",
    [
        b"",
        b"\x5f",  # below the v1 family
        b"\x61\x01\x21" + b"\x00" * 33,  # id prefix of 33 bytes
        b"\x61\x00\x00\x03",  # mode 3
        b"\x61\x00\x00\x01" + b"\x00" * 15,  # truncated fingerprint
        b"\x61\x00\x00\x02\x02" + b"\x00" * 63,  # id list longer than the message
        b"\x61\x00\x00\x02\xff\xff\xff\xff\x0f",  # huge id list count
        b"\x61\x03\x01\x05\x00\x01\x00\x00",  # (2, 05) then (2, empty): descending
        b"\x61\x00\x01\x05\x00\x00\x00\x00",  # (inf, 05) then saturated (inf, empty): descending
        b"\x61" + b"\x02\x00\x00" * 2000,  # over the 4096-byte frame limit
    ],
)
def test_responder_refuses_malformed(msg: bytes) -> None:
    with pytest.raises(NegentropyError):
        responder().reconcile(msg)


def test_version_negotiation_and_roles() -> None:
    # spec "Message": an unsupported version gets a reply holding only the versions we support.
    assert responder().reconcile(b"\x62\x00\x00") == b"\x61"
    initiator = responder()
    initiator.initiate()
    with pytest.raises(NegentropyError):
        initiator.reconcile_initiator(b"\x62")
    with pytest.raises(NegentropyError):
        initiator.initiate()
    with pytest.raises(NegentropyError):
        initiator.reconcile(b"\x61")
    with pytest.raises(NegentropyError):
        responder().reconcile_initiator(b"\x61")


def test_equal_bounds_are_an_empty_range() -> None:
    # The reference can close a frame-limited reply with two infinity bounds; both sides must accept that.
    r = responder()
    reply = r.reconcile(b"\x61\x00\x00\x00\x00\x00\x00")
    assert reply == b"\x61"


def test_bound_ordering_with_prefixes() -> None:
    assert Bound(5, b"\x01").key < Bound(5, b"\x01\x01").key < Bound(5, b"\x02").key < Bound(6).key
    assert Bound(5, b"\x01\x00").key == Bound(5, b"\x01").key


# -- properties ----------------------------------------------------------------------------------------------


def item_sets(
    seed: int, n: int, n_ts: int, shares: tuple[float, float], shared_prefix: int
) -> tuple[list[Item], list[Item]]:
    """Two overlapping random sets of ``n`` items over ``n_ts`` timestamps (so many collide), a third of the
    ids starting with ``shared_prefix`` zero bytes so bounds need long id prefixes; ``shares`` as in the
    README."""
    rng = random.Random(seed)
    p_client, p_server = shares
    client: list[Item] = []
    server: list[Item] = []
    seen: set[bytes] = set()
    for _ in range(n):
        prefix_len = rng.choice([0, 0, shared_prefix])
        id_ = bytes(prefix_len) + rng.randbytes(32 - prefix_len)
        if id_ in seen:  # ids are unique: the same id under two timestamps would be two items
            continue
        seen.add(id_)
        item = (BASE_MS + rng.randrange(n_ts) * 1000, id_)
        f = rng.random()
        if f < p_client:
            client.append(item)
        elif f < p_client + p_server:
            server.append(item)
        else:
            client.append(item)
            server.append(item)
    return client, server


@settings(max_examples=80, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    n=st.one_of(st.integers(0, 40), st.integers(150, 300), st.integers(250, 300)),
    n_ts=st.integers(1, 40),
    shares=st.sampled_from(
        [(0.0, 0.0), (0.02, 0.02), (0.2, 0.1), (0.5, 0.5), (0.3, 0.3), (1.0, 0.0), (0.0, 1.0)]
    ),
    shared_prefix=st.integers(0, 30),
    whole_range=st.booleans(),
    limit=st.sampled_from([0, 4096]),
)
def test_reconcile_finds_exact_differences(
    seed: int,
    n: int,
    n_ts: int,
    shares: tuple[float, float],
    shared_prefix: int,
    whole_range: bool,
    limit: int,
) -> None:
    client, server = item_sets(seed, n, n_ts, shares, shared_prefix)
    have, need, rounds, _, _, largest = run_pair(
        client, server, whole_range=whole_range, limit_c=limit, limit_s=limit
    )
    client_ids = {id_ for _, id_ in client}
    server_ids = {id_ for _, id_ in server}
    assert have == client_ids - server_ids
    assert need == server_ids - client_ids
    assert rounds <= 40
    if limit:
        assert largest <= limit


def test_frame_limit_is_enforced_on_incoming_messages() -> None:
    """A peer without a limit may send more than a limited side accepts: the limit must be agreed."""
    client, server = item_sets(7, 300, 5, (0.0, 1.0), 0)
    unlimited = Negentropy(Storage(server))
    reply = unlimited.reconcile(Negentropy(Storage(client), 4096).initiate())
    assert len(reply) > 4096
    limited = Negentropy(Storage(client), 4096)
    limited.initiate()
    with pytest.raises(NegentropyError, match="frame size limit"):
        limited.reconcile_initiator(reply)
    have, need, rounds, _, _, largest = run_pair(
        client, server, whole_range=False, limit_c=4096, limit_s=4096
    )
    assert need == {id_ for _, id_ in server} and rounds > 1 and largest <= 4096


def test_frame_limit_refolding_reports_each_id_once() -> None:
    """Under a frame limit the reference closes a truncated reply with one fingerprint over everything after
    its last written range, already-settled ranges included; the peer then lists those ids again. Found by a
    random search; each id must still be reported once."""
    client, server = item_sets(2637939244, 300, 1, (0.1, 0.1), 4)
    tail = set(sorted(server)[int(0.04821909886726039 * len(server)) :])
    client = [x for x in client if x not in tail]
    initiator = Negentropy(Storage(client), 4096)
    responder = Negentropy(Storage(server), 4096)
    msg: bytes | None = initiator.initiate()
    listed: list[bytes] = []  # every id the responder put in an IdList, repeats included
    have: list[bytes] = []
    need: list[bytes] = []
    while msg is not None:
        reply = responder.reconcile(msg)
        listed += [id_ for _, id_ in server if id_ in reply]
        msg, h, n = initiator.reconcile_initiator(reply)
        have += h
        need += n
    assert len(listed) > len(set(listed))  # the responder did repeat itself
    assert len(need) == len(set(need)) and len(have) == len(set(have))
    assert set(need) == {i for _, i in server} - {i for _, i in client}
    assert set(have) == {i for _, i in client} - {i for _, i in server}


_FUZZ_STORAGE = Storage((BASE_MS + (i // 3) * 1000, hashlib.sha256(b"f%d" % i).digest()) for i in range(200))


@settings(max_examples=300, deadline=None)
@given(
    data=st.one_of(
        st.binary(max_size=300),
        st.binary(max_size=300).map(lambda b: b"\x61" + b),
        st.lists(
            st.sampled_from([b"\x00", b"\x01", b"\x02", b"\x20", b"\x80", b"\xff", b"\x61"]), max_size=80
        ).map(lambda parts: b"\x61" + b"".join(parts)),
    ),
    limit=st.sampled_from([0, 4096]),
)
def test_random_bytes_raise_only_negentropy_error(data: bytes, limit: int) -> None:
    server = Negentropy(_FUZZ_STORAGE, limit)
    client = Negentropy(_FUZZ_STORAGE, limit)
    client.initiate()
    for call in (server.reconcile, client.reconcile_initiator):
        try:
            call(data)
        except NegentropyError:
            pass


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32), cuts=st.integers(1, 4))
def test_mutated_valid_messages_raise_only_negentropy_error(seed: int, cuts: int) -> None:
    rng = random.Random(seed)
    msg = bytearray(Negentropy(Storage(generate("disjoint-40")[0])).initiate())
    for _ in range(cuts):
        op = rng.randrange(3)
        if op == 0 and msg:
            msg[rng.randrange(len(msg))] = rng.randrange(256)
        elif op == 1 and msg:
            del msg[rng.randrange(len(msg)) :]
        else:
            at = rng.randrange(len(msg) + 1)
            msg[at:at] = rng.randbytes(rng.randrange(1, 8))
    try:
        Negentropy(_FUZZ_STORAGE, 4096).reconcile(bytes(msg))
    except NegentropyError:
        pass


def _items(rng: random.Random, n: int, t0: int, spread: int = 50) -> list[tuple[int, bytes]]:
    return [(t0 + rng.randrange(spread), rng.randbytes(32)) for _ in range(n)]


def _same(a: Storage, b: Storage) -> None:
    assert [a.item(i) for i in range(len(a))] == [b.item(i) for i in range(len(b))]
    n = len(b)
    for lower, upper in [(0, n), (0, n // 2), (n // 3, n), (n // 4, min(n, n // 4 + 3))]:
        assert a.fingerprint(lower, upper) == b.fingerprint(lower, upper)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32), st.integers(0, 60), st.integers(0, 60), st.booleans())
def test_adding_items_equals_building_afresh(seed: int, n: int, m: int, older: bool) -> None:
    """Newer items are appended, older ones merged in; either way the storage equals one built from scratch,
    and answers every message the same."""
    rng = random.Random(seed)
    old = _items(rng, n, 1_000)
    new = _items(rng, m, 900 if older else 2_000, spread=200 if older else 50)
    new += old[: m // 4]  # some already stored: not added twice
    grown = Storage(old)
    added = grown.add(new)
    fresh = Storage(old + new)
    assert added == len(fresh) - len(Storage(old))
    _same(grown, fresh)
    other = Storage(_items(rng, 40, 1_000, spread=300))
    msg = Negentropy(other, 0).initiate()
    assert Negentropy(grown, 0).reconcile(msg) == Negentropy(fresh, 0).reconcile(msg)


def test_add_refuses_a_malformed_item_and_changes_nothing() -> None:
    rng = random.Random(7)
    storage = Storage(_items(rng, 20, 1_000))
    before = Storage(_items(random.Random(7), 20, 1_000))
    with pytest.raises(ValueError):
        storage.add([(5_000, bytes(32)), (5_001, b"short")])
    _same(storage, before)
    assert storage.add([]) == 0
