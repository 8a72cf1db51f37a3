"""Known-answer tests from docs/vectors/protocol-vectors.json and the spec's copy (docs/protocol.md §9).

Records are rebuilt here with :func:`build_record` from the seed and fields in the JSON — not by calling the
generator — so a change to encoding, signing or ids fails against the committed bytes.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import protocol
from protocol import KINDS, SIGNING_DOMAIN, HubKey, ProtocolError, build_record, decode_record, format_hub_id

ROOT = Path(__file__).resolve().parents[2]
JSON_PATH = ROOT / "docs" / "vectors" / "protocol-vectors.json"
DOC_PATH = ROOT / "docs" / "protocol.md"
DATA: dict[str, Any] = json.loads(JSON_PATH.read_text(encoding="utf-8"))
RECORDS = {v["name"]: v for v in DATA["records"]}
REFUSALS = {v["name"]: v for v in DATA["refusals"]}


def from_json(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$hex"}:
            return bytes.fromhex(value["$hex"])
        return {k: from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value


def test_every_kind_has_a_vector() -> None:
    assert {v["kind"] for v in DATA["records"]} == set(KINDS)


def test_refusals_cover_the_required_cases() -> None:
    required = {"non-canonical-int", "unsorted-keys", "trailing-byte", "float-in-body", "bad-signature",
                "unknown-version", "future-dated", "far-future", "created-in-1970", "charter-with-association"}
    assert required <= set(REFUSALS)


def test_keys() -> None:
    assert DATA["signing_domain"] == SIGNING_DOMAIN.hex()
    for i, k in enumerate(DATA["keys"], 1):
        key = HubKey.from_seed(bytes.fromhex(k["seed"]))
        assert k["seed"] == bytes([i]).hex() * 32
        assert key.public.hex() == k["public"]
        assert key.hub_id == k["hub_id"] == format_hub_id(key.public)


@pytest.mark.parametrize("name", list(RECORDS))
def test_rebuild_gives_identical_bytes(name: str) -> None:
    v = RECORDS[name]
    key = HubKey.from_seed(bytes.fromhex(v["author_seed"]))
    rec = build_record(key, bytes.fromhex(v["association"]), v["kind"], from_json(v["body"]), v["created_ms"])
    assert rec.raw.hex() == v["hex"]
    assert rec.id.hex() == v["id"]
    assert rec.signature.hex() == v["signature"]
    assert rec.author_id == v["author"]


@pytest.mark.parametrize("name", list(RECORDS))
def test_decode_vector(name: str) -> None:
    v = RECORDS[name]
    raw = bytes.fromhex(v["hex"])
    rec = decode_record(raw, now_ms=DATA["now_ms"])
    assert rec.id.hex() == v["id"] == hashlib.sha256(raw).hexdigest()
    assert rec.kind == v["kind"]
    assert rec.created_ms == v["created_ms"]
    assert rec.association.hex() == v["association"]
    assert rec.body == from_json(v["body"])
    assert rec.signature.hex() == v["signature"]
    assert v["signing_input"] == (SIGNING_DOMAIN + b"\x96" + raw[1:-66]).hex()


def test_references_between_vectors() -> None:
    charter_id = RECORDS["charter"]["id"]
    assert all(v["association"] == charter_id for n, v in RECORDS.items() if n != "charter")
    assert RECORDS["pledge"]["body"]["offer"] == {"$hex": RECORDS["offer"]["id"]}
    assert RECORDS["offer-close"]["body"]["pledges"] == [{"$hex": RECORDS["pledge"]["id"]}]
    assert RECORDS["revocation"]["body"]["target"] == {"$hex": RECORDS["endorsement"]["id"]}


@pytest.mark.parametrize("name", list(REFUSALS))
def test_refusal_vector(name: str) -> None:
    v = REFUSALS[name]
    error = getattr(protocol, v["error"])
    assert issubclass(error, ProtocolError)
    with pytest.raises(ProtocolError) as err:
        decode_record(bytes.fromhex(v["hex"]), now_ms=v["now_ms"])
    assert type(err.value) is error, f"{name}: {err.value!r}"


def test_future_dated_vector_is_accepted_once_its_time_comes() -> None:
    v = REFUSALS["future-dated"]
    raw = bytes.fromhex(v["hex"])
    with pytest.raises(protocol.FutureError) as err:  # deferred, not refused: it carries the verified record
        decode_record(raw, now_ms=v["now_ms"])
    assert err.value.record.raw == raw
    decode_record(raw, now_ms=v["now_ms"] + 1)  # one ms later it is exactly at the allowed skew


# --- the spec and the code cannot drift -----------------------------------------------------------------

DOC = DOC_PATH.read_text(encoding="utf-8")


def doc_block(name: str) -> str:
    match = re.search(rf"<!-- {name}:begin -->\n(.*?)<!-- {name}:end -->", DOC, re.S)
    assert match, f"docs/protocol.md lacks the {name} block"
    return match.group(1)


def doc_hex() -> dict[str, str]:
    blocks = re.findall(r"```hex ([\w:-]+)\n(.*?)```", doc_block("vectors"), re.S)
    return {name: "".join(body.split()) for name, body in blocks}


def test_doc_hex_equals_the_json() -> None:
    expected = {v["name"]: v["hex"] for v in DATA["records"]}
    expected |= {f"refusal:{v['name']}": v["hex"] for v in DATA["refusals"]}
    assert doc_hex() == expected


def test_doc_ids_and_signatures_equal_the_json() -> None:
    block = doc_block("vectors")
    for v in DATA["records"]:
        assert f"id: `{v['id']}`" in block
        assert f"signature: `{v['signature']}`" in block


def load_generator() -> ModuleType:
    path = ROOT / "docs" / "vectors" / "generate.py"
    spec = importlib.util.spec_from_file_location("coophub_vectors_generate", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_files_are_up_to_date() -> None:
    gen = load_generator()
    data = gen.vectors()
    assert gen.render_json(data) == JSON_PATH.read_text(encoding="utf-8"), "run docs/vectors/generate.py"
    assert gen.render_doc(DOC, data) == DOC, "run docs/vectors/generate.py"


def test_every_kind_field_is_in_the_doc() -> None:
    block = doc_block("kinds")
    for kind, spec in KINDS.items():
        assert f"#### `{kind}`" in block
        for name in spec.fields:
            assert f"| `{name}` |" in block, f"{kind}.{name} missing from docs/protocol.md §5"


def test_every_limit_is_in_the_doc() -> None:
    import dataclasses

    block = doc_block("limits")
    for f in dataclasses.fields(protocol.Limits):
        assert f"| `{f.name}` |" in block


def test_peer_protocol_section_names_every_endpoint() -> None:
    """§8 is the wire format (its examples are checked in tests/federation/test_wire_doc.py)."""
    section = DOC.split("## §8 Peer protocol (/fed/v1)", 1)[1].split("## §9", 1)[0]
    for endpoint in ("info", "announce", "push", "sync", "fetch", "records", "blobs"):
        assert f"/fed/v1/{endpoint}" in section, endpoint
