"""Generate coophub's protocol test vectors and the generated parts of docs/protocol.md.

Run from the repository root: ``python docs/vectors/generate.py``; ``--check`` exits 1 if a file would
change.

Deterministic: keys come from fixed seeds (``bytes([i]) * 32`` for hubs 1–4), times are fixed, and Ed25519
signatures are deterministic (RFC 8032), so running it twice gives identical files. It rewrites:

- docs/vectors/protocol-vectors.json — every record and refusal, with hex bytes;
- the blocks of docs/protocol.md between ``<!-- NAME:begin -->`` and ``<!-- NAME:end -->`` for ``kinds``
  (§5 field tables, from ``protocol.kinds.KINDS``), ``limits`` (§7, from ``protocol.limits``) and
  ``vectors`` (§9).

tests/protocol/test_vectors.py checks that both files are what this script would write.
"""

from __future__ import annotations

import ast
import dataclasses
import datetime
import json
import re
import sys
from pathlib import Path
from typing import Any

import msgpack

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from protocol import (  # noqa: E402
    DEFAULT_LIMITS,
    KINDS,
    SIGNING_DOMAIN,
    HubKey,
    Record,
    adopted_amendments,
    build_record,
    format_hub_id,
    membership,
    pack,
    proposal_result,
    review_state,
    terms_at,
)
from protocol.jsonview import HUB_FIELDS  # noqa: E402
from protocol.schema import Field  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import aid_vectors  # noqa: E402  (mutual-aid records and derived-state scenarios, §6.6–§6.7)

JSON_PATH = ROOT / "docs" / "vectors" / "protocol-vectors.json"
DOC_PATH = ROOT / "docs" / "protocol.md"
LIMITS_SOURCE = ROOT / "protocol" / "limits.py"

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DAY = 86_400_000
NOW_MS = T0 + 40 * DAY  # the "now" at which every record below decodes
HEX_WIDTH = 96


def seed(i: int) -> bytes:
    return bytes([i]) * 32


KEYS = {i: HubKey.from_seed(seed(i)) for i in range(1, 5)}


# --- JSON form of bodies --------------------------------------------------------------------------------

def to_json(value: Any) -> Any:
    """Bodies as JSON: byte strings become ``{"$hex": "..."}``; nothing else in a body needs escaping."""
    if isinstance(value, bytes):
        return {"$hex": value.hex()}
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    return value


def from_json(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$hex"}:
            return bytes.fromhex(value["$hex"])
        return {k: from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value


# --- the records ----------------------------------------------------------------------------------------

def _records() -> list[tuple[str, int, str, dict[str, Any], int, str]]:
    """(name, author hub, kind, body, created_ms, association: "none" or the name of the record it is)."""
    h = {i: k.public for i, k in KEYS.items()}
    return [
        ("charter", 1, "charter", {
            "name": "North Wales Care Co-operatives",
            "description": "Social care co-operatives sharing guides, purchasing and quality marks.",
            "founders": [h[1], h[2]],
            "endorsements_needed": 2,
            "schemes": [{"id": "care-quality", "name": "Care Quality Mark", "assessors": [h[3]]}],
        }, T0, "none"),
        ("profile", 4, "profile", {
            "name": "Cwmni Gofal Môn",
            "legal_form": "co-operative society",
            "description": "Home care on Anglesey, owned by its carers and the people they support.",
            "regions": ["anglesey"],
            "services": [{"name": "Home care", "category": "care",
                          "description": "Visits at home, day and night."}],
            "stakeholders": ["workers", "service-users"],
            "contact": {"email": "post@gofal.example"},
            "website": "https://gofal.example",
            "peer_urls": ["https://hub.gofal.example"],
        }, T0 + 1 * DAY, "charter"),
        ("endorsement", 1, "endorsement", {
            "subject": h[4], "statement": "We have worked alongside them since 2019.",
        }, T0 + 2 * DAY, "charter"),
        ("guide", 2, "guide", {
            "title": "Safe lone working",
            "summary": "How our carers stay safe on solo visits.",
            "body": "# Safe lone working\n\n1. Check in before each visit.\n2. Check out after it.\n",
            "license": "CC-BY-SA-4.0",
            "tags": ["lone-working", "safety"],
            "language": "en",
            "attachments": [{"name": "checklist.pdf", "media_type": "application/pdf", "size": 20480,
                             "hash": bytes(range(32))}],
        }, T0 + 3 * DAY, "charter"),
        ("offer", 1, "offer", {
            "title": "Nitrile gloves, medium",
            "description": "Boxes of 100 powder-free nitrile gloves, delivered monthly.",
            "category": "health",
            "unit": "box",
            "tiers": [[1, 900], [100, 800], [500, 700]],
            "currency": "GBP",
            "min_total": 100,
            "deadline": T0 + 30 * DAY,
            "regions": ["anglesey", "gwynedd"],
        }, T0 + 4 * DAY, "charter"),
        ("pledge", 2, "pledge", {"offer": "@offer", "quantity": 120}, T0 + 5 * DAY, "charter"),
        ("offer-close", 1, "offer-close", {
            "offer": "@offer", "outcome": "awarded", "pledges": ["@pledge"],
        }, T0 + 31 * DAY, "charter"),
        ("attestation", 3, "attestation", {
            "subject": h[2],
            "scheme": "care-quality",
            "level": "gold",
            "valid_from": T0 + 6 * DAY,
            "valid_until": T0 + 371 * DAY,
            "evidence_hash": bytes(range(32, 64)),
            "evidence_url": "https://assessor.example/reports/2026-001",
            "summary": "Inspected in January 2026.",
        }, T0 + 6 * DAY, "charter"),
        ("revocation", 1, "revocation", {"target": "@endorsement", "reason": "Endorsed the wrong hub."},
         T0 + 7 * DAY, "charter"),
        *aid_vectors.record_specs(h),
        # Governance (docs/protocol.md §6.9–§6.11): hub 1 proposes to adopt a second quality scheme, votes,
        # hub 2 gives hub 1 its vote for this proposal, hub 1 closes it; hub 1 reviews hub 2's guide.
        ("endorsement-with-class", 2, "endorsement", {
            "subject": h[4], "class": "member", "statement": "A co-op of care workers and the people they support.",
        }, T0 + 8 * DAY, "charter"),
        ("proposal", 1, "proposal", {
            "title": "Adopt the User-Led Support Standard",
            "body": "A second quality scheme, assessed by a user-led organisation.",
            "options": ["adopt", "reject"],
            "rule": "two-thirds",
            "quorum": 50,
            "quorum_of": "members",
            "closes": T0 + 20 * DAY,
            "amendment": {
                "schemes": [{"id": "care-quality", "name": "Care Quality Mark", "assessors": [h[3]]},
                            {"id": "user-led-standard", "name": "User-Led Support Standard", "assessors": [h[4]]}],
                "reviews_needed": 1,
            },
        }, T0 + 9 * DAY, "charter"),
        ("ballot", 1, "ballot", {"proposal": "@proposal", "option": "adopt"}, T0 + 10 * DAY, "charter"),
        ("delegation", 2, "delegation", {"to": h[1], "proposal": "@proposal"}, T0 + 11 * DAY, "charter"),
        ("proposal-close", 1, "proposal-close", {
            "proposal": "@proposal", "ballots": ["@ballot"], "delegations": ["@delegation"],
        }, T0 + 20 * DAY, "charter"),
        ("review", 1, "review", {"guide": "@guide", "comment": "Clear, and it matches our own practice."},
         T0 + 12 * DAY, "charter"),
    ]


def _resolve(value: Any, built: dict[str, Record]) -> Any:
    """Replace ``"@name"`` references by the id of the record built under that name."""
    if isinstance(value, str) and value.startswith("@"):
        return built[value[1:]].id
    if isinstance(value, list):
        return [_resolve(v, built) for v in value]
    if isinstance(value, dict):
        return {k: _resolve(v, built) for k, v in value.items()}
    return value


def build_all() -> dict[str, Record]:
    built: dict[str, Record] = {}
    for name, author, kind, body, created_ms, assoc in _records():
        association = bytes(32) if assoc == "none" else built[assoc].id
        built[name] = build_record(KEYS[author], association, kind, _resolve(body, built), created_ms)
    return built


def record_vector(name: str, author: int, rec: Record) -> dict[str, Any]:
    return {
        "name": name,
        "author_seed": seed(author).hex(),
        "author": rec.author_id,
        "association": rec.association.hex(),
        "created_ms": rec.created_ms,
        "kind": rec.kind,
        "body": to_json(rec.body),
        "signing_input": (SIGNING_DOMAIN + b"\x96" + rec.raw[1:-66]).hex(),
        "signature": rec.signature.hex(),
        "hex": rec.raw.hex(),
        "id": rec.id.hex(),
    }


# --- refusals -------------------------------------------------------------------------------------------

def _raw_signed(fields: list[Any], key: HubKey) -> bytes:
    """Encode six fields with plain msgpack (insertion order, any format it picks) and sign those bytes."""
    six = msgpack.packb(fields, use_bin_type=True)
    sig = key.sign(SIGNING_DOMAIN + six)
    return b"\x97" + six[1:] + msgpack.packb(sig, use_bin_type=True)


def refusals(built: dict[str, Record]) -> list[dict[str, Any]]:
    pledge, charter, offer = built["pledge"], built["charter"], built["offer"]
    assoc, k2 = charter.id, KEYS[2]
    skew = DEFAULT_LIMITS.max_future_skew_ms
    p = pledge.raw
    future_at = NOW_MS + skew + 1
    cases: list[tuple[str, bytes, int, str, str]] = [
        ("non-canonical-int", p[:1] + b"\xcc\x01" + p[2:], NOW_MS, "DecodeError",
         "version 1 written as uint8 (0xcc 0x01) instead of positive fixint 0x01"),
        ("unsorted-keys", _raw_signed([1, assoc, k2.public, pledge.created_ms, "pledge",
                                       {"quantity": 120, "offer": offer.id}], k2), NOW_MS, "DecodeError",
         "body keys in the order quantity, offer; the signature is over these very bytes"),
        ("duplicate-key", _dup_key(pledge), NOW_MS, "DecodeError",
         "the body map repeats the key quantity (a fixmap of 3 entries)"),
        ("trailing-byte", p + b"\x00", NOW_MS, "DecodeError", "a valid pledge followed by one 0x00 byte"),
        ("truncated", p[:-1], NOW_MS, "DecodeError", "a valid pledge without its last byte"),
        ("float-in-body", _raw_signed([1, assoc, k2.public, pledge.created_ms, "pledge",
                                       {"offer": offer.id, "quantity": 120.0}], k2), NOW_MS, "DecodeError",
         "quantity as float64 120.0 (0xcb …); the profile has no floats"),
        ("nil-in-body", _raw_signed([1, assoc, k2.public, pledge.created_ms, "pledge",
                                     {"offer": offer.id, "quantity": None}], k2), NOW_MS, "DecodeError",
         "quantity as nil (0xc0); the profile has no nil"),
        ("bad-signature", p[:-1] + bytes([p[-1] ^ 0x01]), NOW_MS, "SignatureError",
         "the pledge with the last bit of its signature flipped"),
        ("signature-of-another-record", p[:-64] + offer.signature, NOW_MS, "SignatureError",
         "the pledge carrying the offer's signature"),
        ("unknown-version", _raw_signed([2, assoc, k2.public, pledge.created_ms, "pledge",
                                         {"offer": offer.id, "quantity": 120}], k2), NOW_MS, "DecodeError",
         "protocol version 2, correctly signed"),
        ("future-dated", _raw_signed([1, assoc, k2.public, future_at, "pledge",
                                      {"offer": offer.id, "quantity": 120}], k2), NOW_MS, "FutureError",
         f"created_ms is now_ms + {skew} + 1 (one ms beyond the allowed skew), correctly signed: not a fault, "
         f"deferred until now_ms reaches created_ms − {skew} (§2.3)"),
        ("far-future", _raw_signed([1, assoc, k2.public, NOW_MS + 2 * skew + 1, "pledge",
                                    {"offer": offer.id, "quantity": 120}], k2), NOW_MS, "TimeError",
         f"created_ms is now_ms + 2 × {skew} + 1 (beyond twice the allowed skew), correctly signed"),
        ("created-in-1970", _raw_signed([1, assoc, k2.public, 0, "pledge",
                                         {"offer": offer.id, "quantity": 120}], k2), NOW_MS, "TimeError",
         f"created_ms 0, before min_created_ms ({DEFAULT_LIMITS.min_created_ms}, 2025-01-01T00:00:00Z), "
         "correctly signed"),
        ("charter-with-association", _raw_signed([1, bytes(range(32)), KEYS[1].public, T0, "charter",
                                                  charter.body], KEYS[1]), NOW_MS, "DecodeError",
         "a charter whose association is not 32 zero bytes, correctly signed"),
        ("missing-association", _raw_signed([1, bytes(32), k2.public, pledge.created_ms, "pledge",
                                             {"offer": offer.id, "quantity": 120}], k2),
         NOW_MS, "DecodeError",
         "a pledge whose association is 32 zero bytes, correctly signed"),
        ("unknown-kind", _raw_signed([1, assoc, k2.public, pledge.created_ms, "poll",
                                      {"question": "Tea or coffee?"}], k2), NOW_MS, "SchemaError",
         "kind poll is not a kind of protocol version 1"),
        ("schema-violation", _raw_signed([1, assoc, k2.public, pledge.created_ms, "pledge",
                                          {"offer": offer.id, "quantity": -5}], k2), NOW_MS, "SchemaError",
         "a pledge with a negative quantity, correctly signed"),
    ]
    return [{"name": n, "hex": raw.hex(), "now_ms": now, "error": err, "why": why}
            for n, raw, now, err, why in cases]


def _dup_key(pledge: Record) -> bytes:
    """The pledge's bytes with its 2-entry body map grown to 3 entries by repeating ``quantity``."""
    body = pack(pledge.body)
    dup = b"\x83" + body[1:] + pack("quantity") + pack(pledge.body["quantity"])
    return pledge.raw.replace(body, dup, 1)


def derived(built: dict[str, Record]) -> dict[str, Any]:
    """Known answers of the governance rules over the vector records at NOW_MS (docs/protocol.md §6.9–§6.11)."""
    records = list(built.values())
    charter = built["charter"]
    amendments = adopted_amendments(charter, records)
    result = proposal_result(
        built["proposal"], charter, amendments=amendments,
        ballots=[r for r in records if r.kind == "ballot"], delegations=[r for r in records if r.kind == "delegation"],
        closes=[r for r in records if r.kind == "proposal-close"],
        endorsements=[r for r in records if r.kind == "endorsement"],
        revocations=[r for r in records if r.kind == "revocation"], now_ms=NOW_MS)
    terms = terms_at(charter, amendments, NOW_MS)
    members = membership(charter, records, records, terms=terms)
    review = review_state(built["guide"], records, records, members.members, terms.reviews_needed)
    return {
        "proposal": {
            "status": result.status, "outcome": result.outcome, "quorum_met": result.quorum_met,
            "options": [{"option": t.option, "votes": t.votes, "weight": t.weight} for t in result.options],
            "roll_call": [{"hub": format_hub_id(v.hub), "class": v.cls, "weight": v.weight, "option": v.option,
                           "ballot": v.ballot_id.hex(),
                           "proxy": format_hub_id(v.proxy) if v.proxy else None} for v in result.votes],
        },
        "amendments": [{"proposal": a.record_id.hex(), "effective_ms": a.effective_ms} for a in amendments],
        "terms_at_now": {"schemes": {s: sorted(format_hub_id(x) for x in hubs) for s, hubs in terms.schemes.items()},
                         "reviews_needed": terms.reviews_needed},
        "members_at_now": {format_hub_id(h): members.classes[h] for h in sorted(members.members)},
        "guide_reviewed": {"approvals": [format_hub_id(h) for h in review.approvals], "reviewed": review.reviewed},
    }


def vectors() -> dict[str, Any]:
    built = build_all()
    authors = {name: author for name, author, *_ in _records()}
    return {
        "description": "coophub protocol v1 test vectors; see docs/protocol.md §9.",
        "signing_domain": SIGNING_DOMAIN.hex(),
        "keys": [{"seed": seed(i).hex(), "public": k.public.hex(), "hub_id": k.hub_id}
                 for i, k in KEYS.items()],
        "now_ms": NOW_MS,
        "max_future_skew_ms": DEFAULT_LIMITS.max_future_skew_ms,
        "records": [record_vector(name, authors[name], rec) for name, rec in built.items()],
        "refusals": refusals(built),
        "derived": aid_vectors.scenarios(KEYS, built["charter"].id),
        "governance": derived(built),
    }


# --- rendering ------------------------------------------------------------------------------------------

def _wrap(hex_: str) -> str:
    return "\n".join(hex_[i:i + HEX_WIDTH] for i in range(0, len(hex_), HEX_WIDTH))


def _body_json(body: Any) -> str:
    """Pretty JSON with each ``{"$hex": …}`` kept on one line."""
    text = json.dumps(body, indent=2, ensure_ascii=False)
    return re.sub(r'\{\n\s*("\$hex": "[0-9a-f]*")\n\s*\}', r"{\1}", text)


def render_vectors(data: dict[str, Any]) -> str:
    out = ["Keys (seed → public key → hub id):", "",
           "| hub | seed | public key | hub id |", "|---|---|---|---|"]
    for i, k in enumerate(data["keys"], 1):
        out.append(f"| {i} | `{k['seed'][:2]}` × 32 | `{k['public']}` | `{k['hub_id']}` |")
    out += ["", f"All records below decode at `now_ms` = {data['now_ms']}. Byte strings in bodies are "
            "written `{\"$hex\": …}`; `@name` in prose means the id of the record of that name.", ""]
    for v in data["records"]:
        out += [f"#### {v['name']}", "",
                f"author hub {int(v['author_seed'][:2], 16)} (`{v['author']}`), "
                f"created_ms {v['created_ms']}, association `{v['association']}`", "",
                "```json", _body_json(v["body"]), "```", "",
                f"record bytes ({len(v['hex']) // 2} bytes):", "",
                f"```hex {v['name']}", _wrap(v["hex"]), "```", "",
                f"- id: `{v['id']}`", f"- signature: `{v['signature']}`", ""]
    out += ["#### Refusals", "", "Each must be refused with the stated error class (§2.2), except that "
            "`FutureError` is not a refusal: a hub defers that record and stores it once its time comes (§2.3).",
            ""]
    for r in data["refusals"]:
        out += [f"**{r['name']}** → `{r['error']}` at now_ms {r['now_ms']}: {r['why']}.", "",
                f"```hex refusal:{r['name']}", _wrap(r["hex"]), "```", ""]
    out += ["#### Derived state", "",
            "What §6.1, §6.5 and §6.9–§6.11 give over all the records above at `now_ms`: the proposal passed under two "
            "thirds with hub 2 voting by proxy through hub 1 (the close names both), its amendment is in force from "
            "its closing time, so the second scheme exists and one review makes a guide association-reviewed; hub 4 "
            "has one live endorsement of the two needed and is not a member.", "",
            "```json", json.dumps(data["governance"], indent=2, ensure_ascii=False), "```", ""]
    return "\n".join(out).rstrip() + "\n"


def _type(spec: Field, kind: str, path: str) -> str:
    if spec.kind == "bytes":
        if (kind, path) in HUB_FIELDS:
            return "hub id (32 bytes)"
        return "SHA-256 (32 bytes)" if path.endswith("hash") else "record id (32 bytes)"
    if spec.kind == "list":
        assert spec.item is not None
        return f"array of {_type(spec.item, kind, path + '[]')}"
    return {"str": "string", "int": "integer", "bool": "boolean", "map": "map"}[spec.kind]


_EXTRAS = {
    "_charter_classes": "class names do not repeat",
    "_amendment": "at least one field; class names do not repeat",
    "_proposal": "`abstain` and `objection` are options other than the first, and not the same; `objection` "
                 "only with rule `consent`",
    "_validity": "valid_until > valid_from",
    "_tiers": "strictly increasing minimum quantity",
    "_tier_pair": "[minimum quantity ≥ 1, unit price ≥ 0]",
}


def _limits_text(spec: Field) -> str:
    parts = []
    unit = {"str": "characters", "list": "items", "bytes": "bytes"}.get(spec.kind, "")
    if spec.kind in ("str", "list") and spec.max_len is not None:
        span = f"exactly {spec.min_len}" if spec.min_len == spec.max_len else f"{spec.min_len}–{spec.max_len}"
        parts.append(f"{span} {unit}")
    if spec.kind == "int":
        parts.append(f"{spec.minimum}–{spec.maximum}")
    if spec.choices is not None:
        parts.append("one of " + ", ".join(f"`{c}`" for c in sorted(spec.choices)))
    if spec.pattern is not None:
        parts.append(f"{spec.pattern_help} (`{spec.pattern.pattern}`)")
    if spec.unique:
        parts.append("no repeats")
    if spec.extra is not None:
        parts.append(_EXTRAS[spec.extra.__name__])  # a KeyError here means: describe the new rule above
    if spec.kind == "list" and spec.item is not None and spec.item.kind != "map":
        inner = _limits_text(spec.item)
        if inner:
            parts.append(f"each item: {inner}")
    return "; ".join(parts).replace("|", "\\|")


def _rows(spec: Field, kind: str, prefix: str) -> list[str]:
    rows = []
    for name, sub in spec.fields.items():
        path = f"{prefix}{name}"
        rows.append(f"| `{path}` | {_type(sub, kind, path)} | {'yes' if sub.required else 'no'} | "
                    f"{_limits_text(sub)} |")
        item = sub.item
        while item is not None and item.kind == "list":
            item = item.item
        if sub.kind == "map":
            rows += _rows(sub, kind, path + ".")
        elif item is not None and item.kind == "map":
            rows += _rows(item, kind, path + "[].")
    return rows


def render_kinds() -> str:
    out = []
    for kind, spec in KINDS.items():
        out += [f"#### `{kind}`", "", "| field | type | required | limits |", "|---|---|---|---|",
                *_rows(spec, kind, "")]
        if spec.extra is not None:
            out += ["", f"Whole body: {_EXTRAS[spec.extra.__name__]}."]
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _limit_comments() -> dict[str, str]:
    """The comment lines above each field of ``Limits`` in protocol/limits.py: its reason and precedent."""
    lines = LIMITS_SOURCE.read_text(encoding="utf-8").splitlines()
    tree = ast.parse("\n".join(lines))
    out: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == "Limits":
            for stmt in node.body:
                if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                    comment: list[str] = []
                    i = stmt.lineno - 2
                    while i >= 0 and lines[i].strip().startswith("#"):
                        comment.insert(0, lines[i].strip().lstrip("# "))
                        i -= 1
                    out[stmt.target.id] = " ".join(comment)
    return out


_COUNT_UNITS = {
    "max_depth": "levels", "ingest_batch": "records", "push_batch": "records",
    "fetch_batch": "records or ids",
    "push_fanout": "peers", "peer_score_start": "points", "peer_score_invalid_cost": "points",
    "peer_score_drop_at": "points", "max_deferred_records": "records", "max_deferred_per_source": "records",
    "max_quarantine_profiles": "profiles", "refused_sources": "sources", "refused_examples": "refusals",
    "http_max_connections": "connections", "http_max_connections_per_address": "connections",
    "http_max_headers": "header lines", "http_max_requests_in_flight": "requests", "http_rate_burst": "requests",
    "max_json_depth": "levels", "session_concurrency": "requests", "max_sessions": "sessions",
    "max_applicant_sessions": "sessions",
}


def _unit(name: str, value: int) -> str:
    if name.endswith("_bytes"):
        for size, label in ((1 << 20, "MiB"), (1 << 10, "KiB")):
            if value >= size and value % size == 0:
                return f"{value:,} bytes ({value // size} {label})"
        return f"{value:,} bytes"
    if name == "min_created_ms":
        when = datetime.datetime.fromtimestamp(value / 1000, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return f"{value:,} ms ({when})"
    if name.endswith("_ms"):
        return f"{value:,} ms" + (f" ({value / 1000:g} s)" if value >= 1000 else "")
    if name.endswith("_per_hour"):
        return f"{value} per hour"
    if name.endswith("_bytes_per_s"):
        return f"{value:,} bytes per second"
    if name.endswith("_records_per_s"):
        return f"{value:,} records per second"
    if name.endswith("_per_s"):
        return f"{value:,} requests per second"
    return f"{value:,} {_COUNT_UNITS.get(name, '')}".rstrip()


def render_limits() -> str:
    comments = _limit_comments()
    out = ["| limit | default | why, and precedent |", "|---|---|---|"]
    group = ""  # a comment covers the fields below it up to the next comment
    for f in dataclasses.fields(DEFAULT_LIMITS):
        value = getattr(DEFAULT_LIMITS, f.name)
        why = comments.get(f.name, "")
        if why:
            group = f.name
        else:
            why = f"see `{group}`"
        out.append(f"| `{f.name}` | {_unit(f.name, value)} | {why} |")
    return "\n".join(out) + "\n"


def replace_block(text: str, name: str, content: str) -> str:
    pattern = re.compile(rf"(<!-- {name}:begin -->\n).*?(<!-- {name}:end -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"docs/protocol.md has no <!-- {name}:begin --> … <!-- {name}:end --> block")
    return pattern.sub(lambda m: m.group(1) + "\n" + content + "\n" + m.group(2), text, count=1)


def render_doc(text: str, data: dict[str, Any]) -> str:
    aid = aid_vectors.render(data["derived"], [k["hub_id"] for k in data["keys"]])
    for name, content in (("kinds", render_kinds()), ("limits", render_limits()),
                          ("vectors", render_vectors(data)), ("aid-vectors", aid)):
        text = replace_block(text, name, content)
    return text


def render_json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    data = vectors()
    outputs = {JSON_PATH: render_json(data), DOC_PATH: render_doc(DOC_PATH.read_text(encoding="utf-8"), data)}
    stale = [p for p, text in outputs.items() if not p.exists() or p.read_text(encoding="utf-8") != text]
    if "--check" in argv:
        for p in stale:
            print(f"out of date: {p.relative_to(ROOT)}")
        return 1 if stale else 0
    for p in stale:
        p.write_text(outputs[p], encoding="utf-8")
        print(f"wrote {p.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
