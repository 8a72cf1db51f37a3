"""docs/protocol.md §8's wire examples decode with federation.wire to the values the text describes, and
encode back to the same bytes (spec and code cannot drift apart)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from federation import wire
from protocol import DEFAULT_LIMITS

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
IDS = [hashlib.sha256(b"coophub-wire-example:%d" % i).digest() for i in range(2)]


def examples() -> dict[str, bytes]:
    text = DOC.read_text(encoding="utf-8")
    block = text.split("<!-- wire-examples -->", 1)[1].split("```text", 1)[1].split("```", 1)[0]
    return {name: bytes.fromhex(hex_) for name, hex_ in re.findall(r"^(\S+)\s+([0-9a-f]+)$", block, re.M)}


def test_every_example_is_there() -> None:
    assert set(examples()) == {"announce", "want", "push-results", "page-end"}


def test_examples_decode_to_what_the_spec_says() -> None:
    ex = examples()
    assert wire.decode_ids(ex["announce"], DEFAULT_LIMITS, what="announce") == ("http://127.0.0.1:8470", IDS)
    assert wire.decode_ids(ex["want"], DEFAULT_LIMITS, what="want") == ("", IDS[1:])
    assert wire.decode_push_results(ex["push-results"], DEFAULT_LIMITS) == [
        wire.PushResult(IDS[1], "accepted", ""), wire.PushResult(b"", "refused", "invalid")]
    assert wire.decode_page(ex["page-end"], DEFAULT_LIMITS) == ([], None)


def test_examples_are_what_a_hub_sends() -> None:
    ex = examples()
    assert wire.encode({"from": "http://127.0.0.1:8470", "ids": IDS}) == ex["announce"]
    assert wire.encode({"ids": IDS[1:]}) == ex["want"]
    assert wire.encode({"results": [[IDS[1], "accepted", ""], [b"", "refused", "invalid"]]}) == ex["push-results"]
    assert wire.encode({"records": [], "last": []}) == ex["page-end"]
