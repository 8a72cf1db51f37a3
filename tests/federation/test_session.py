"""The sans-IO peer-session handshake (federation/session.py): a good handshake, and each refusal with its close
reason — wrong association, wrong key, bad signature, replay, stale time, no common version, out of order."""

from __future__ import annotations

import pytest

from federation import session as sx
from protocol import DEFAULT_LIMITS, HubKey

NOW = 1_770_681_600_000
ASSOCIATION = bytes(range(32))


def pair(**initiator: object) -> tuple[HubKey, HubKey, sx.Initiator, sx.Responder]:
    a, b = HubKey.from_seed(b"\x01" * 32), HubKey.from_seed(b"\x02" * 32)
    kwargs = {"association": ASSOCIATION, "url": "http://127.0.0.1:8470", **initiator}
    init = sx.Initiator(a, kwargs.pop("association"), kwargs.pop("url"), DEFAULT_LIMITS, **kwargs)  # type: ignore[arg-type]
    resp = sx.Responder(b, ASSOCIATION, DEFAULT_LIMITS, sx.ReplayCache(2 * DEFAULT_LIMITS.max_future_skew_ms))
    return a, b, init, resp


def handshake(init: sx.Initiator, resp: sx.Responder, now: int = NOW) -> tuple[sx.Established, sx.Established]:
    challenge = resp.on_hello(init.hello(now), now)
    auth = init.on_challenge(challenge, now)
    proven = resp.on_auth(auth, now)
    return proven, init.on_ready(resp.ready("member"))


def refused(reason: str, fn: object, *args: object) -> sx.SessionRefused:
    with pytest.raises(sx.SessionRefused) as exc:
        fn(*args)  # type: ignore[operator]
    assert exc.value.close_reason == reason, exc.value
    assert exc.value.code == sx.CLOSE_CODES[reason]
    return exc.value


def test_a_handshake_proves_both_keys_and_agrees_on_the_version() -> None:
    a, b, init, resp = pair()
    proven, ready = handshake(init, resp)
    assert (proven.peer, proven.url, proven.version) == (a.public, "http://127.0.0.1:8470", 1)
    assert (ready.peer, ready.role, ready.version) == (b.public, "member", 1)


def test_another_association_is_refused() -> None:
    _, _, init, resp = pair(association=bytes(32))
    error = refused("wrong-association", resp.on_hello, init.hello(NOW), NOW)
    assert "association" in error.detail


def test_a_hub_with_no_association_refuses_every_session() -> None:
    _, _, init, _ = pair()
    resp = sx.Responder(HubKey.generate(), None, DEFAULT_LIMITS, sx.ReplayCache(1000))
    refused("wrong-association", resp.on_hello, init.hello(NOW), NOW)


def test_the_initiator_refuses_a_responder_that_is_not_the_hub_it_expected() -> None:
    _, _, init, resp = pair(expect=HubKey.generate().public)
    refused("wrong-key", init.on_challenge, resp.on_hello(init.hello(NOW), NOW), NOW)


def test_a_challenge_signed_by_another_key_is_refused() -> None:
    _, _, init, resp = pair()
    challenge = resp.on_hello(init.hello(NOW), NOW)
    frame = sx.decode_frame(challenge, 1 << 20)
    frame[1]["sig"] = HubKey.generate().sign(b"something else")
    refused("bad-signature", init.on_challenge, sx.encode_frame(*frame), NOW)


def test_an_initiator_claiming_a_key_it_does_not_hold_is_refused() -> None:
    """The hello names one hub key, the auth is signed by another (an impostor)."""
    a, _, init, resp = pair()
    impostor = sx.Initiator(HubKey.generate(), ASSOCIATION, "", DEFAULT_LIMITS, nonce=init.nonce)
    hello = sx.decode_frame(impostor.hello(NOW), 1 << 20)
    hello[1]["hub"] = a.public  # claims to be a
    challenge = resp.on_hello(sx.encode_frame(*hello), NOW)
    impostor_key_auth = sx.decode_frame(challenge, 1 << 20)
    assert impostor_key_auth[0] == "challenge"
    # The impostor cannot sign as a: whatever it signs with its own key does not verify.
    fake = sx.encode_frame("auth", {"sig": impostor.key.sign(b"transcript it cannot reproduce as a")})
    refused("bad-signature", resp.on_auth, fake, NOW)


def test_a_replayed_hello_is_refused() -> None:
    _, b, init, resp = pair()
    hello = init.hello(NOW)
    challenge = resp.on_hello(hello, NOW)
    resp.on_auth(init.on_challenge(challenge, NOW), NOW)
    # The same hello again (recorded off the wire) to a fresh responder sharing the hub's replay cache.
    again = sx.Responder(b, ASSOCIATION, DEFAULT_LIMITS, resp.replay)
    refused("replay", again.on_hello, hello, NOW + 1000)


def test_a_replayed_auth_does_not_verify_against_a_fresh_challenge() -> None:
    """Even past the nonce check (a cache that forgot it), an old auth signs the old responder nonce."""
    _, b, init, resp = pair()
    hello = init.hello(NOW)
    auth = init.on_challenge(resp.on_hello(hello, NOW), NOW)
    fresh = sx.Responder(b, ASSOCIATION, DEFAULT_LIMITS, sx.ReplayCache(1000))
    fresh.on_hello(hello, NOW)
    refused("bad-signature", fresh.on_auth, auth, NOW)


@pytest.mark.parametrize("offset", [DEFAULT_LIMITS.max_future_skew_ms + 1, -DEFAULT_LIMITS.max_future_skew_ms - 1])
def test_a_hello_beyond_the_skew_is_stale(offset: int) -> None:
    _, _, init, resp = pair()
    refused("stale", resp.on_hello, init.hello(NOW + offset), NOW)


def test_a_challenge_beyond_the_skew_is_stale() -> None:
    _, _, init, resp = pair()
    late = NOW + DEFAULT_LIMITS.max_future_skew_ms
    challenge = resp.on_hello(init.hello(NOW), late)  # exactly the skew: the responder accepts the hello
    refused("stale", init.on_challenge, challenge, NOW - 1)  # one ms more, by the initiator's clock


def test_clocks_four_minutes_apart_still_shake_hands() -> None:
    _, _, init, resp = pair()
    handshake(init, resp, NOW)
    _, _, init, resp = pair()
    challenge = resp.on_hello(init.hello(NOW + 240_000), NOW)
    resp.on_auth(init.on_challenge(challenge, NOW + 240_000), NOW)


def test_no_common_version_is_refused() -> None:
    _, _, init, resp = pair(versions=(7,))
    refused("version", resp.on_hello, init.hello(NOW), NOW)


def test_frames_out_of_order_or_malformed_are_refused() -> None:
    _, _, init, resp = pair()
    refused("invalid", resp.on_auth, sx.encode_frame("auth", {"sig": bytes(64)}), NOW)
    refused("invalid", resp.on_hello, b"\xc1", NOW)
    refused("invalid", resp.on_hello, sx.encode_frame("hello", {"versions": [1]}), NOW)
    refused("too-large", sx.decode_frame, bytes(100), 10)
    refused("invalid", init.on_ready, sx.encode_frame("ready", {"role": "member"}))


def test_requests_and_replies_round_trip() -> None:
    assert sx.decode_message(sx.request_frame(3, "announce", {"ids": []}), DEFAULT_LIMITS) == sx.Request(
        3, "announce", {"ids": []})
    assert sx.decode_message(sx.reply_frame(3, {"ids": []}), DEFAULT_LIMITS) == sx.Reply(3, {"ids": []})
    assert sx.decode_message(sx.error_frame(4, "blocked", "no"), DEFAULT_LIMITS) == sx.Reply(4, None, "blocked", "no")
    refused("invalid", sx.decode_message, sx.encode_frame("req", -1, "x", {}), DEFAULT_LIMITS)


def test_a_token_bucket_spreads_a_burst_at_its_rate() -> None:
    """The per-peer quotas peer_bytes_per_s and peer_records_per_s are token buckets: the reader waits
    ``delay_ms`` before the next frame of a peer over its bytes quota (back-pressure)."""
    assert DEFAULT_LIMITS.peer_bytes_per_s > 0 and DEFAULT_LIMITS.peer_records_per_s > 0
    bucket = sx.TokenBucket(1000, 1000, NOW)
    assert bucket.delay_ms(1000, NOW) == 0
    assert bucket.delay_ms(500, NOW) == 501  # 500 units at 1000/s
    assert bucket.take(10, NOW) == 0
    assert bucket.take(2000, NOW + 2000) == 1000  # refilled to the burst, no more
