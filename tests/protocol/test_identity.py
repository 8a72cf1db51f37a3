"""Hub ids: text form, checksum and parsing (docs/protocol.md §1)."""

from __future__ import annotations

import base64

import pytest

from protocol import (
    HUB_ID_PREFIX,
    HubKey,
    ProtocolError,
    SignatureError,
    format_hub_id,
    parse_hub_id,
    verify_signature,
)

from .factories import A, B

ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"


def test_known_answer_for_seed_one() -> None:
    # RFC 8032 derivation from the fixed seed; the text form is pinned so a format change cannot slip in.
    assert A.public.hex() == "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
    assert A.hub_id == "hub_rkeohxlubhyzl7ks3mwtzos5olfgocn7dwkbeg7toseadnapn5obgwi"


def test_round_trip() -> None:
    for key in (A, B, HubKey.generate()):
        text = key.hub_id
        assert text.startswith(HUB_ID_PREFIX)
        assert len(text) == 4 + 55
        assert parse_hub_id(text) == key.public
        assert format_hub_id(parse_hub_id(text)) == text


def test_parse_accepts_upper_case_and_surrounding_space() -> None:
    assert parse_hub_id("  " + A.hub_id[:4] + A.hub_id[4:].upper() + "\n") == A.public


def test_seed_round_trip_and_length() -> None:
    assert HubKey.from_seed(A.seed()).public == A.public
    with pytest.raises(ProtocolError) as err:
        HubKey.from_seed(bytes(31))
    assert err.value.field == "key"


@pytest.mark.parametrize("position", [4, 10, 30, 57])
def test_a_typo_is_refused_by_the_checksum(position: int) -> None:
    text = A.hub_id
    wrong = ALPHABET[(ALPHABET.index(text[position]) + 1) % 32]
    typo = text[:position] + wrong + text[position + 1:]
    with pytest.raises(ProtocolError, match="checksum") as err:
        parse_hub_id(typo)
    assert err.value.field == "hub_id"


def test_swapped_characters_are_refused() -> None:
    text = A.hub_id
    i = next(i for i in range(4, 58) if text[i] != text[i + 1])
    swapped = text[:i] + text[i + 1] + text[i] + text[i + 2:]
    with pytest.raises(ProtocolError):
        parse_hub_id(swapped)


def test_unused_bits_in_the_last_character_must_be_zero() -> None:
    # 34 bytes are 272 bits; 55 base32 characters carry 275, so the last one has 3 spare bits.
    text = A.hub_id
    last = ALPHABET.index(text[-1])
    assert last & 7 == 0
    for spare in range(1, 8):
        with pytest.raises(ProtocolError, match="canonical"):
            parse_hub_id(text[:-1] + ALPHABET[last | spare])


@pytest.mark.parametrize("text", ["hb_" + "a" * 55, "HUB_" + "a" * 55, "npub1abc", "", "rkeohxlubhyzl7ks"])
def test_wrong_prefix_is_refused(text: str) -> None:
    with pytest.raises(ProtocolError, match="starts with") as err:
        parse_hub_id(text)
    assert err.value.field == "hub_id"


@pytest.mark.parametrize("body", ["1" * 55, "0" * 55, "8" * 55, "é" * 55, "a!" + "a" * 53])
def test_bad_base32_is_refused(body: str) -> None:
    with pytest.raises(ProtocolError, match="base32"):
        parse_hub_id("hub_" + body)


@pytest.mark.parametrize("n_bytes", [0, 32, 33, 35, 40])
def test_wrong_length_is_refused(n_bytes: int) -> None:
    body = base64.b32encode(bytes(n_bytes)).decode().rstrip("=").lower()
    with pytest.raises(ProtocolError, match="characters long"):
        parse_hub_id("hub_" + body)


def test_verify_signature() -> None:
    sig = A.sign(b"message")
    verify_signature(A.public, sig, b"message")
    with pytest.raises(SignatureError):
        verify_signature(A.public, sig, b"messagE")
    with pytest.raises(SignatureError):
        verify_signature(B.public, sig, b"message")
    with pytest.raises(SignatureError) as err:
        verify_signature(A.public, sig[:-1] + bytes([sig[-1] ^ 1]), b"message")
    assert err.value.field == "signature"
