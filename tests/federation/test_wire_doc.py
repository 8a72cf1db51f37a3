"""docs/protocol.md §8 is what the code sends: every session example is rebuilt here with the real handshake and
frame code from fixed keys, nonces and clocks and compared with the doc's hex; the doc's hex is decoded with the
real decoders and re-encoded byte for byte; the handshake signatures in the doc are checked with the real
verifier (and by feeding the doc's frames to fresh state machines); the close codes, the requests an applicant
may make and the session bounds in the doc's tables are the code's. Change either side and this fails."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path
from typing import Any

import pytest

from federation import routes, transport, wire
from federation import session as sx
from federation.negentropy import Negentropy, Storage
from federation.sync import DEFAULT_MAX_ROUNDS, Offer, SyncSession
from protocol import DEFAULT_LIMITS, HubKey, SignatureError, build_record, verify_signature

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
SECTION = DOC.read_text(encoding="utf-8").split("## §8 Peer protocol (/fed/v1)", 1)[1].split("## §9", 1)[0]


def _h(label: str) -> bytes:
    return hashlib.sha256(f"coophub-session-example:{label}".encode()).digest()


INITIATOR = HubKey.from_seed(_h("initiator"))  # the Ed25519 private keys (RFC 8032 seeds) of the example
RESPONDER = HubKey.from_seed(_h("responder"))
ASSOCIATION = _h("association")
INITIATOR_NONCE, RESPONDER_NONCE = _h("initiator-nonce"), _h("responder-nonce")
URL = "https://hub-a.example.org"
T_HELLO = 1_770_681_600_000  # 2026-02-10T00:00:00Z, the initiator's clock when it says hello
T_CHALLENGE = T_HELLO + 40  # the responder's clock when it answers
IDS = [hashlib.sha256(b"coophub-wire-example:%d" % i).digest() for i in range(2)]
BLOB = b"Rota template\n"
APPLICANT_DETAIL = "announce: an applicant's session may only push its own profile and read"


def record() -> bytes:
    """The record the examples push and fetch: the initiator's endorsement of the responder."""
    return build_record(INITIATOR, ASSOCIATION, "endorsement", {"subject": RESPONDER.public}, T_HELLO - 5000).raw


def handshake() -> tuple[dict[str, bytes], sx.Established, sx.Established]:
    """The four handshake frames, as the real state machines make them from the fixed inputs."""
    init = sx.Initiator(INITIATOR, ASSOCIATION, URL, DEFAULT_LIMITS, nonce=INITIATOR_NONCE)
    resp = sx.Responder(RESPONDER, ASSOCIATION, DEFAULT_LIMITS, sx.ReplayCache(600_000), nonce=RESPONDER_NONCE)
    hello = init.hello(T_HELLO)
    challenge = resp.on_hello(hello, T_CHALLENGE)
    auth = init.on_challenge(challenge, T_CHALLENGE + 30)
    proven = resp.on_auth(auth, T_CHALLENGE + 60)
    ready = resp.ready("member")
    return {"hello": hello, "challenge": challenge, "auth": auth, "ready": ready}, proven, init.on_ready(ready)


def transcript_args() -> tuple[Any, ...]:
    return (1, ASSOCIATION, INITIATOR.public, RESPONDER.public, INITIATOR_NONCE, RESPONDER_NONCE, T_HELLO,
            T_CHALLENGE, URL)


def sync_messages() -> tuple[bytes, bytes, bytes, SyncSession]:
    """The initiator holds both example ids, the responder the first: its opening message, the responder's
    answer, and the answer of a responder that holds the same two (the sets are equal)."""
    mine = Storage([(T_HELLO - 2000, IDS[0]), (T_HELLO - 1000, IDS[1])])
    session = SyncSession(mine, DEFAULT_LIMITS)
    opening = session.start()[0].msg  # type: ignore[union-attr]
    frame = DEFAULT_LIMITS.negentropy_frame_bytes
    answer = Negentropy(Storage([(T_HELLO - 2000, IDS[0])]), frame).reconcile(opening)
    equal = Negentropy(Storage([(T_HELLO - 2000, IDS[0]), (T_HELLO - 1000, IDS[1])]), frame).reconcile(opening)
    return opening, answer, equal, session


def info_body() -> dict[str, Any]:
    """``info``'s reply, with ``limits`` cut to two entries (a hub sends every field of §7)."""
    return {"version": wire.WIRE_VERSION, "hub": RESPONDER.public, "association": ASSOCIATION,
            "url": "https://hub-b.example.org", "records": 1234,
            "limits": {"max_record_bytes": 65536, "fetch_batch": 500}, "session": "/fed/v1/session"}


def build() -> dict[str, bytes]:
    """Every example of the doc's session-examples block, made by the real code."""
    frames, _, _ = handshake()
    args = transcript_args()
    opening, answer, equal, _ = sync_messages()
    raw = record()
    return {
        **frames,
        "transcript-responder": sx.transcript("responder", *args),
        "transcript-initiator": sx.transcript("initiator", *args),
        "req-info": sx.request_frame(1, "info", {}),
        "rep-info": sx.reply_frame(1, info_body()),
        "req-announce": sx.request_frame(2, "announce", {"ids": IDS}),
        "rep-announce": sx.reply_frame(2, {"ids": IDS[1:]}),
        "req-push": sx.request_frame(3, "push", {"records": [raw, b"\x93not a record"]}),
        "rep-push": sx.reply_frame(3, {"results": [[hashlib.sha256(raw).digest(), "accepted", ""],
                                                   [b"", "refused", "invalid"]]}),
        "req-sync": sx.request_frame(4, "sync", opening),
        "rep-sync": sx.reply_frame(4, answer),
        "rep-sync-equal": sx.reply_frame(4, equal),
        "req-fetch": sx.request_frame(5, "fetch", {"ids": [hashlib.sha256(raw).digest()]}),
        "rep-fetch": sx.reply_frame(5, {"records": [raw]}),
        "req-page": sx.request_frame(6, "page", {"after": [], "limit": 1}),
        "rep-page": sx.reply_frame(6, {"records": [raw], "last": [T_HELLO - 5000, hashlib.sha256(raw).digest()]}),
        "req-page-next": sx.request_frame(7, "page", {"after": [T_HELLO - 5000, hashlib.sha256(raw).digest()],
                                                      "limit": 1}),
        "rep-page-end": sx.reply_frame(7, {"records": [], "last": []}),
        "req-blob": sx.request_frame(8, "blob", {"hash": hashlib.sha256(BLOB).digest()}),
        "rep-blob": sx.reply_frame(8, {"data": BLOB}),
        "err": sx.error_frame(9, "blocked", APPLICANT_DETAIL),
    }


def examples() -> dict[str, bytes]:
    block = SECTION.split("<!-- session-examples -->", 1)[1].split("```text", 1)[1].split("```", 1)[0]
    return {name: bytes.fromhex(hex_) for name, hex_ in re.findall(r"^(\S+)\s+([0-9a-f]+)$", block, re.M)}


def test_every_example_is_in_the_doc_and_is_what_the_code_sends() -> None:
    doc, built = examples(), build()
    assert set(doc) == set(built)
    assert INITIATOR.public.hex() in SECTION and RESPONDER.public.hex() in SECTION  # the keys the text names
    for name, data in built.items():
        assert doc[name] == data, f"{name}: the doc says\n{doc[name].hex()}\nthe code sends\n{data.hex()}"


def test_the_docs_frames_decode_and_encode_back_byte_for_byte() -> None:
    for name, data in examples().items():
        if name.startswith("transcript-"):
            continue
        frame = sx.decode_frame(data, transport.frame_limit(DEFAULT_LIMITS))
        assert sx.encode_frame(*frame) == data, name


def test_the_docs_handshake_signatures_verify_over_the_docs_transcripts() -> None:
    ex = examples()
    hello = sx.decode_frame(ex["hello"], 1 << 20)[1]
    challenge = sx.decode_frame(ex["challenge"], 1 << 20)[1]
    auth = sx.decode_frame(ex["auth"], 1 << 20)[1]
    # The transcript each side signs is rebuilt from what the two frames carry, nothing else.
    args = (challenge["version"], hello["association"], hello["hub"], challenge["hub"], hello["nonce"],
            challenge["nonce"], hello["time"], challenge["time"], hello["url"])
    assert sx.transcript("responder", *args) == ex["transcript-responder"]
    assert sx.transcript("initiator", *args) == ex["transcript-initiator"]
    verify_signature(challenge["hub"], challenge["sig"], ex["transcript-responder"])
    verify_signature(hello["hub"], auth["sig"], ex["transcript-initiator"])
    # The domain separation: neither side's signature verifies as the other's, nor as a record's.
    with pytest.raises(SignatureError):
        verify_signature(challenge["hub"], challenge["sig"], ex["transcript-initiator"])
    assert ex["transcript-initiator"][:1] == b"\x9b" and ex["transcript-initiator"][1:17] == b"\xafcoophub-session"
    assert (hello["hub"], challenge["hub"]) == (INITIATOR.public, RESPONDER.public)


def test_fresh_state_machines_accept_the_docs_frames() -> None:
    """The responder takes the doc's hello and auth, the initiator the doc's challenge and ready: the real
    verifiers check the doc's signatures and clocks, and both sides learn who the other is."""
    ex = examples()
    resp = sx.Responder(RESPONDER, ASSOCIATION, DEFAULT_LIMITS, sx.ReplayCache(600_000), nonce=RESPONDER_NONCE)
    assert resp.on_hello(ex["hello"], T_CHALLENGE) == ex["challenge"]
    proven = resp.on_auth(ex["auth"], T_CHALLENGE + 60)
    assert (proven.peer, proven.url, proven.version) == (INITIATOR.public, URL, 1)
    init = sx.Initiator(INITIATOR, ASSOCIATION, URL, DEFAULT_LIMITS, nonce=INITIATOR_NONCE)
    assert init.hello(T_HELLO) == ex["hello"]
    assert init.on_challenge(ex["challenge"], T_CHALLENGE + 30) == ex["auth"]
    assert init.on_ready(ex["ready"]) == sx.Established(RESPONDER.public, 1, URL, "member")
    # The same hello again is a replay; an hour later it is stale.
    again = sx.Responder(RESPONDER, ASSOCIATION, DEFAULT_LIMITS, resp.replay)
    with pytest.raises(sx.SessionRefused, match="replay"):
        again.on_hello(ex["hello"], T_CHALLENGE + 1000)
    late = sx.Responder(RESPONDER, ASSOCIATION, DEFAULT_LIMITS, sx.ReplayCache(600_000))
    with pytest.raises(sx.SessionRefused, match="stale"):
        late.on_hello(ex["hello"], T_HELLO + 3_600_000)
    # A tampered challenge (one bit of the responder's nonce) does not verify.
    tampered = bytearray(ex["challenge"])
    tampered[ex["challenge"].index(RESPONDER_NONCE)] ^= 1
    init = sx.Initiator(INITIATOR, ASSOCIATION, URL, DEFAULT_LIMITS, nonce=INITIATOR_NONCE)
    init.hello(T_HELLO)
    with pytest.raises(sx.SessionRefused, match="bad-signature"):
        init.on_challenge(bytes(tampered), T_CHALLENGE + 30)


def test_the_docs_requests_and_replies_decode_to_what_the_text_says() -> None:
    ex, limits = examples(), DEFAULT_LIMITS
    raw, rid = record(), hashlib.sha256(record()).digest()

    def req(name: str, seq: int, op: str) -> Any:
        message = sx.decode_message(ex[name], limits)
        assert isinstance(message, sx.Request) and (message.seq, message.op) == (seq, op), message
        return message.body

    def rep(name: str, seq: int) -> Any:
        message = sx.decode_message(ex[name], limits)
        assert isinstance(message, sx.Reply) and message.seq == seq and not message.reason, message
        return message.body

    assert req("req-info", 1, "info") == {}
    info = wire.info_from(rep("rep-info", 1))
    assert (info.hub, info.association, info.records) == (RESPONDER.public, ASSOCIATION, 1234)
    assert wire.ids_from(req("req-announce", 2, "announce"), limits) == IDS
    assert wire.ids_from(rep("rep-announce", 2), limits, what="want") == IDS[1:]
    assert wire.records_from(req("req-push", 3, "push"), limits) == [raw, b"\x93not a record"]
    assert wire.push_results_from(rep("rep-push", 3), limits) == [
        wire.PushResult(rid, "accepted", ""), wire.PushResult(b"", "refused", "invalid")]
    opening, answer, equal, session = sync_messages()
    assert req("req-sync", 4, "sync") == opening and len(opening) == 20
    assert rep("rep-sync", 4) == answer
    assert [a for a in session.on_reply(answer) if isinstance(a, Offer)] == [Offer((IDS[1],))]
    assert rep("rep-sync-equal", 4) == equal and len(equal) == 1
    assert (len(ex["req-sync"]), len(ex["rep-sync-equal"])) == (33, 9)  # two hubs in sync: 33 + 9 bytes
    assert wire.ids_from(req("req-fetch", 5, "fetch"), limits, what="fetch") == [rid]
    assert wire.records_from(rep("rep-fetch", 5), limits) == [raw]
    assert wire.page_request_from(req("req-page", 6, "page"), limits) == (None, 1)
    assert wire.page_from(rep("rep-page", 6), limits) == ([raw], (T_HELLO - 5000, rid))
    assert wire.page_request_from(req("req-page-next", 7, "page"), limits) == ((T_HELLO - 5000, rid), 1)
    assert wire.page_from(rep("rep-page-end", 7), limits) == ([], None)
    assert req("req-blob", 8, "blob") == {"hash": hashlib.sha256(BLOB).digest()}
    assert rep("rep-blob", 8) == {"data": BLOB}
    assert sx.decode_message(ex["err"], limits) == sx.Reply(9, None, "blocked", APPLICANT_DETAIL)


def _table(marker: str) -> list[list[str]]:
    """The body rows of the first table after ``marker`` in §8, as stripped cells (backticks removed)."""
    lines = SECTION.split(marker, 1)[1].strip().splitlines()
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        rows.append([cell.strip().strip("`") for cell in line.strip().strip("|").split("|")])
    return rows[2:]  # after the header and the --- row


def test_the_close_codes_table_is_the_codes() -> None:
    rows = _table("<!-- close-codes -->")
    assert {r[1]: int(r[0]) for r in rows} == sx.CLOSE_CODES


def test_the_requests_table_says_what_an_applicant_may_do() -> None:
    rows = _table("<!-- requests -->")
    assert {r[0]: r[1] == "yes" for r in rows} == sx.OPS


def test_the_session_bounds_table_is_the_code() -> None:
    values: dict[str, int] = {}
    for row in _table("<!-- session-bounds -->"):
        values[row[0]] = int(row[1].replace(",", ""))
    limits = dataclasses.asdict(DEFAULT_LIMITS)
    for name, value in values.items():
        if name in limits:
            assert limits[name] == value, name
    constants = {"frame limit": transport.frame_limit(DEFAULT_LIMITS),
                 "transport.HEARTBEAT_S": int(transport.HEARTBEAT_S),
                 "transport.REQUEST_TIMEOUT_S": int(transport.REQUEST_TIMEOUT_S),
                 "session.NONCE_BYTES": sx.NONCE_BYTES,
                 "replay cache": sx.ReplayCache(1)._capacity,
                 "sync.DEFAULT_MAX_ROUNDS": DEFAULT_MAX_ROUNDS}
    assert {k: values[k] for k in constants} == constants
    assert {n for n in values if n not in constants} <= set(limits)
    assert {"session_batch_ms", "session_inflight_bytes", "session_concurrency", "peer_records_per_s",
            "peer_bytes_per_s", "max_sessions", "max_applicant_sessions", "session_handshake_ms", "max_future_skew_ms",
            "fetch_batch",
            "push_batch", "max_record_bytes", "negentropy_frame_bytes", "max_fed_body_bytes",
            "max_blob_bytes"} <= set(values)


def test_the_removed_routes_are_the_ones_that_answer_gone() -> None:
    for name in routes.GONE:
        assert f"/fed/v1/{name.replace('{digest}', '<hash>')}" in SECTION, name
