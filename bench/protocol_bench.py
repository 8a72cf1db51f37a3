"""Records per second for building and for decoding a typical ~1 KB guide, next to raw Ed25519 (docs/perf).

Four operations are timed in each round, in turn, for the same wall-clock budget: build+sign a record;
decode+verify+validate it (``decode_record``, the one check every incoming record passes); and raw
Ed25519 sign and verify (``cryptography``, the same library) of a message as long as the record's signing
input.
Rounds alternate so that machine noise (other processes, CPU frequency) falls on all four alike; the report
gives the median of the rounds and the ratio of each record operation to the raw operation it wraps.

Done-when (issue): decode+verify+validate ≥ 0.5 × raw verify.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocol import SIGNING_DOMAIN, HubKey, Record, build_record, decode_record

__all__ = ["run", "measure"]

T0 = 1_767_225_600_000
SEED = bytes([1]) * 32
ASSOCIATION = bytes(range(32))
TARGET_RATIO = 0.5


def typical_guide_body() -> dict[str, object]:
    text = ("## Before the visit\n\nCheck the rota, tell the office where you are going, and carry a charged "
            "phone. "
            "If the visit is to a new client, read the risk assessment first.\n\n## After the visit\n\n"
            "Check out with the office within 15 minutes; if you do not, the office calls you, then the "
            "client. ")
    return {
        "title": "Safe lone working for home carers",
        "summary": "How our carers stay safe on solo visits: check-in, check-out and escalation.",
        "body": (text * 2)[:700],
        "license": "CC-BY-SA-4.0",
        "tags": ["safety", "lone-working", "home-care"],
        "language": "en",
    }


def sample() -> tuple[HubKey, dict[str, object], Record]:
    key = HubKey.from_seed(SEED)
    body = typical_guide_body()
    return key, body, build_record(key, ASSOCIATION, "guide", body, T0)


def _rate(op: Callable[[], object], budget_s: float) -> float:
    """Operations per second of ``op`` over about ``budget_s`` seconds, 50 calls per clock read."""
    n, start = 0, time.perf_counter()
    while True:
        for _ in range(50):
            op()
        n += 50
        elapsed = time.perf_counter() - start
        if elapsed >= budget_s:
            return n / elapsed


def operations() -> tuple[dict[str, Callable[[], object]], int]:
    key, body, rec = sample()
    message = SIGNING_DOMAIN + b"\x96" + rec.raw[1:-66]  # the record's own signing input, same length
    private = Ed25519PrivateKey.from_private_bytes(SEED)
    public = private.public_key()  # parsed once, as decode_record's key cache does
    signature = private.sign(message)
    now = T0 + 1
    ops: dict[str, Callable[[], object]] = {
        "build + sign record": lambda: build_record(key, ASSOCIATION, "guide", body, T0),
        "raw Ed25519 sign": lambda: private.sign(message),
        "decode + verify + validate record": lambda: decode_record(rec.raw, now_ms=now),
        "raw Ed25519 verify": lambda: public.verify(signature, message),
    }
    return ops, len(rec.raw)


def measure(rounds: int, budget_s: float) -> dict[str, list[float]]:
    """Rates of each operation per round, rounds interleaved."""
    ops, _ = operations()
    for op in ops.values():  # warm up: imports, caches, CPU frequency
        _rate(op, budget_s / 4)
    rates: dict[str, list[float]] = {name: [] for name in ops}
    for _ in range(rounds):
        for name, op in ops.items():
            rates[name].append(_rate(op, budget_s))
    return rates


def run(quick: bool) -> str:
    rounds, budget = (3, 0.2) if quick else (5, 1.0)
    rates = measure(rounds, budget)
    _, size = operations()
    med = {name: statistics.median(r) for name, r in rates.items()}
    pairs = {"build + sign record": "raw Ed25519 sign",
             "decode + verify + validate record": "raw Ed25519 verify"}
    decoded, verified = rates["decode + verify + validate record"], rates["raw Ed25519 verify"]
    decode_ratios = [d / v for d, v in zip(decoded, verified, strict=True)]
    lines = [
        "## Protocol: records per second",
        "",
        f"A {size}-byte guide record; {rounds} interleaved rounds of {budget:g} s per operation; medians.",
        "",
        "| operation | median records/s | ratio to raw | per-round rates |",
        "|---|---:|---:|---|",
    ]
    for name, rate in med.items():
        raw = pairs.get(name)
        ratio = f"{rate / med[raw]:.2f} × {raw.removeprefix('raw ')}" if raw else "1.00"
        per_round = ", ".join(f"{r:,.0f}" for r in rates[name])
        lines.append(f"| {name} | {rate:,.0f} | {ratio} | {per_round} |")
    ratio = med["decode + verify + validate record"] / med["raw Ed25519 verify"]
    verdict = "meets" if ratio >= TARGET_RATIO else "MISSES"
    lines += ["", f"decode+verify+validate / raw verify = **{ratio:.2f}** (per round "
              f"{min(decode_ratios):.2f}–{max(decode_ratios):.2f}); {verdict} the target of "
              f"≥ {TARGET_RATIO}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys

    print(run("--quick" in sys.argv))
