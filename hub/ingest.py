"""The one way in (STYLE.md): every record — published locally, pushed by a peer, pulled in sync, imported —
passes :func:`run`, and nothing else writes to ``records``.

    _presort      hash, skip duplicates (stored, or repeated in the call), order by (created_ms, id)
    _decode       protocol.decode_record (canonical form, schema, time, signature), in the caller's thread
    apply_batch   in the writer's transaction: association, membership at the edge, references
                  (docs/dev/hub-contract.md rules 1–3), then insert + derived update (rule 4)

Decoding and writing overlap: while the writer thread stores one batch (SQLite releases the GIL while it
works), the caller decodes the next. A refused record is never stored; its refusal is counted per
(source, reason) in ``refused``, in the same transaction as its batch. ``missing-reference`` is returned
without being counted until the last retry, since a later batch of the same call may hold the referenced
record (hub-contract.md: "so a charter+records dump imports").

Decoding runs on one thread. Measured on the 2-core target (docs/perf/hub.md): cryptography's Ed25519 verify
holds the GIL (two threads verify no faster than one) and the rest of decode_record is pure Python, so a
thread pool does not pay; overlapping decode with SQLite's own work does.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import msgpack

from protocol import REVOCABLE_KINDS, Limits, ProtocolError, Record, authorised_assessors, decode_record
from protocol.errors import DecodeError, TooLargeError
from protocol.kinds import AID_REFERENCES

from . import derive, governance

__all__ = ["HOUR_MS", "Batch", "IngestResult", "NeedsIsolation", "apply_batch", "record_refusals", "run"]

log = logging.getLogger(__name__)
HOUR_MS = 3_600_000


class IngestResult(NamedTuple):
    id: str | None  # hex record id; None if the bytes did not decode
    status: str  # "accepted" | "duplicate" | "refused"
    reason: str | None  # protocol.REASONS when refused
    detail: str | None  # one human line


class Refusal(Exception):
    """A record that fails a hub check (rules 1–3). Internal: it becomes an IngestResult."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _refused(reason: str, detail: str, record_id: str | None) -> IngestResult:
    return IngestResult(record_id, "refused", reason, detail)


# -- before the lock: order and decode ---------------------------------------------------------------------

Item = tuple[int, int, bytes, "bytes | None"]  # (created_ms for ordering, input index, raw, sha256)


def _created_ms(raw: bytes) -> int:
    """Creation time for ordering only, from a plain msgpack parse; -1 for bytes decode_record will refuse."""
    try:
        value = msgpack.unpackb(raw, raw=False)
    except Exception:  # any malformed input: decode_record reports it properly
        return -1
    if isinstance(value, list) and len(value) > 3 and isinstance(value[3], int):
        return value[3]
    return -1


def _presort(raws: Sequence[bytes], have: Callable[[Iterable[bytes]], set[bytes]],
             results: list[IngestResult | None]) -> list[Item]:
    """Items that are not duplicates, in (created_ms, id) order (the record id is the raw's SHA-256)."""
    digests = [hashlib.sha256(raw).digest() if isinstance(raw, bytes | bytearray) else None for raw in raws]
    stored = have([d for d in digests if d is not None])
    seen: set[bytes] = set()
    order: list[Item] = []
    for i, (raw, digest) in enumerate(zip(raws, digests, strict=True)):
        if digest is not None and (digest in stored or digest in seen):
            results[i] = IngestResult(digest.hex(), "duplicate", None, None)
            continue
        if digest is not None:
            seen.add(digest)
        order.append((_created_ms(raw) if digest is not None else -1, i, raw, digest))
    order.sort(key=lambda item: (item[0], item[3] or b""))
    return order


def _decode(items: list[Item], now_ms: int, limits: Limits,
            results: list[IngestResult | None]) -> tuple[list[tuple[int, Record]], list[tuple[str, str]]]:
    pending: list[tuple[int, Record]] = []
    refusals: list[tuple[str, str]] = []
    for _, i, raw, digest in items:
        try:
            pending.append((i, decode_record(raw, now_ms=now_ms, limits=limits)))
        except ProtocolError as exc:
            # Bytes that are not one well-formed record have no id; a signature, schema or time failure does.
            undecoded = digest is None or isinstance(exc, DecodeError | TooLargeError)
            results[i] = _refused(exc.reason, str(exc), None if undecoded or digest is None else digest.hex())
            refusals.append((exc.reason, str(exc)))
    return pending, refusals


# -- checks (hub-contract.md rules 1–3) --------------------------------------------------------------------


def _check_association(record: Record, charter: Record | None, expected: bytes | None) -> None:
    if record.kind == "charter":
        if charter is not None:
            raise Refusal("blocked", f"another association: this hub holds charter {charter.id.hex()}")
        if expected is not None and record.id != expected:
            raise Refusal("blocked", f"another association: this hub joined {expected.hex()}")
        return
    if expected is not None and record.association != expected:
        raise Refusal("blocked", f"another association: the record names {record.association.hex()}")
    if charter is None:
        raise Refusal("missing-reference", f"the charter {record.association.hex()} is not stored yet")
    if record.association != charter.id:
        raise Refusal("blocked", f"another association: the record names {record.association.hex()}")


def _check_membership(conn: sqlite3.Connection, record: Record, charter: Record, now_ms: int,
                      limits: Limits) -> None:
    if record.kind == "charter" or _is_member(conn, record.author):
        return
    if record.kind == "profile":
        (recent,) = conn.execute("SELECT count(*) FROM records WHERE kind = 'profile' AND author = ? AND "
                                 "received_ms > ?", (record.author, now_ms - HOUR_MS)).fetchone()
        if recent >= limits.applicant_profiles_per_hour:
            raise Refusal("rate-limited", f"an applicant may publish {limits.applicant_profiles_per_hour} "
                                          "profiles an hour; try again later")
        return
    # Assessors may publish marks (and revoke them) without being members: those the charter names, and those
    # named by stored amendment proposals (hub.governance), whether or not the amendment passed — so storing a
    # mark never depends on the outcome of a vote, only on records every hub holds.
    if record.kind == "attestation" and (record.author in authorised_assessors(charter, record.body["scheme"])
                                         or governance.is_named_assessor(conn, record.author,
                                                                         record.body["scheme"])):
        return
    if record.kind == "revocation" and (any(record.author in s["assessors"] for s in charter.body["schemes"])
                                        or governance.is_named_assessor(conn, record.author)):
        return
    raise Refusal("blocked", f"not a member: {record.author_id} may publish only its profile until admitted")


def _is_member(conn: sqlite3.Connection, hub: bytes) -> bool:
    return conn.execute("SELECT 1 FROM members WHERE hub = ?", (hub,)).fetchone() is not None


def _referenced(conn: sqlite3.Connection, record_id: bytes,
                field_name: str) -> tuple[str, bytes, bytes | None]:
    """(kind, author, ref) of a stored record, or Refusal("missing-reference")."""
    row = conn.execute("SELECT kind, author, ref FROM records WHERE id = ?", (record_id,)).fetchone()
    if row is None:
        raise Refusal("missing-reference", f"{field_name}: record {record_id.hex()} is not stored yet")
    return row[0], row[1], row[2]


def _expect(kind: str, want: str, field_name: str) -> None:
    if kind != want:
        raise Refusal("invalid", f"{field_name}: names a {kind} record, not a {want}")


def _check_references(conn: sqlite3.Connection, record: Record) -> None:
    body = record.body
    if record.kind == "pledge":
        _expect(_referenced(conn, body["offer"], "body.offer")[0], "offer", "body.offer")
    elif record.kind == "offer-close":
        kind, author, _ = _referenced(conn, body["offer"], "body.offer")
        _expect(kind, "offer", "body.offer")
        if author != record.author:
            raise Refusal("invalid", "body.offer: only the offer's author can close it")
        for pledge in body["pledges"]:
            kind, _, ref = _referenced(conn, pledge, "body.pledges")
            _expect(kind, "pledge", "body.pledges")
            if ref != body["offer"]:
                raise Refusal("invalid", f"body.pledges: {pledge.hex()} is a pledge to another offer")
    elif record.kind == "guide" and "supersedes" in body:
        kind, author, _ = _referenced(conn, body["supersedes"], "body.supersedes")
        _expect(kind, "guide", "body.supersedes")
        if author != record.author:
            raise Refusal("invalid", "body.supersedes: a guide can only supersede its author's own guide")
    elif record.kind in AID_REFERENCES:
        _check_aid_reference(conn, record)
    elif record.kind == "credit-payment" and body["payee"] == record.author:
        raise Refusal("invalid", "body.payee: a co-op cannot pay itself")
    elif record.kind in _GOVERNANCE_REFERENCES:
        for name, want in _GOVERNANCE_REFERENCES[record.kind]:
            value = body.get(name)
            for ref in value if isinstance(value, list) else [] if value is None else [value]:
                _expect(_referenced(conn, ref, f"body.{name}")[0], want, f"body.{name}")
    elif record.kind == "revocation":
        kind, author, _ = _referenced(conn, body["target"], "body.target")
        if author != record.author:
            raise Refusal("invalid", "body.target: a hub can only revoke its own records")
        if kind not in REVOCABLE_KINDS:
            raise Refusal("invalid", f"body.target: a {kind} cannot be revoked; revocable kinds: "
                                     f"{', '.join(sorted(REVOCABLE_KINDS))}")


def _check_aid_reference(conn: sqlite3.Connection, record: Record) -> None:
    """Mutual-aid kinds name a record of one kind (protocol.kinds.AID_REFERENCES). Who may book, approve or pay
    is derived state's business (protocol.credit, protocol.fund): those records are stored and ignored."""
    name, want = AID_REFERENCES[record.kind]
    _expect(_referenced(conn, record.body[name], f"body.{name}")[0], want, f"body.{name}")


#: kind -> (body field, kind of the record it names) for the governance kinds (docs/protocol.md §6.9): the
#: referenced records must be held (else missing-reference) and be of that kind (else invalid). Who wrote them
#: and what they say is for derived state: a close by someone else, a ballot for another proposal named in a
#: close, a review of one's own guide are stored and have no effect.
_GOVERNANCE_REFERENCES: dict[str, tuple[tuple[str, str], ...]] = {
    "ballot": (("proposal", "proposal"),),
    "delegation": (("proposal", "proposal"),),
    "proposal-close": (("proposal", "proposal"), ("ballots", "ballot"), ("delegations", "delegation")),
    "review": (("guide", "guide"),),
}


# -- storing -----------------------------------------------------------------------------------------------


def _ref_column(record: Record) -> bytes | None:
    body = record.body
    for name in ("offer", "target", "subject", "supersedes", "payee", "payment", "fund", "claim", "proposal",
                 "guide", "to"):
        if name in body:
            return body[name]  # type: ignore[no-any-return]
    return None


def _store(conn: sqlite3.Connection, record: Record, now_ms: int) -> None:
    cursor = conn.execute("INSERT INTO records (id, kind, author, created_ms, ref, received_ms, raw) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?)",
                          (record.id, record.kind, record.author, record.created_ms, _ref_column(record),
                           now_ms, record.raw))
    assert cursor.lastrowid is not None
    derive.apply(conn, record, cursor.lastrowid)


@dataclass
class Batch:
    """One writer transaction's work: records to check and store, refusals to count."""

    pending: list[tuple[int, Record]]
    now_ms: int
    source: str
    limits: Limits
    expected: bytes | None
    refusals: list[tuple[str, str]] = field(default_factory=list)
    isolate: bool = False  # a savepoint per record (the slow path, after a failure in this batch)


class NeedsIsolation(Exception):
    """Storing a record failed in the fast path: roll the batch back and rerun it with savepoints."""


def _one(conn: sqlite3.Connection, record: Record, charter: Record | None, batch: Batch) -> IngestResult:
    if conn.execute("SELECT 1 FROM records WHERE id = ?", (record.id,)).fetchone():
        return IngestResult(record.id_hex, "duplicate", None, None)  # another process stored it meanwhile
    try:
        _check_association(record, charter, batch.expected)
        if charter is not None:
            _check_membership(conn, record, charter, batch.now_ms, batch.limits)
        _check_references(conn, record)
    except Refusal as refusal:
        return _refused(refusal.reason, refusal.detail, record.id_hex)
    if not batch.isolate:
        try:
            _store(conn, record, batch.now_ms)
        except Exception as exc:
            raise NeedsIsolation(record.id_hex) from exc
        return IngestResult(record.id_hex, "accepted", None, None)
    # The slow path: a failure while storing one record (a bug, a constraint, a full disk) must not take the
    # rest of the batch down with it, and must leave nothing of that record behind. Savepoints cost ~40 µs a
    # record (RELEASE), a seventh of the write path, so they are used only once a batch has failed.
    conn.execute("SAVEPOINT one")
    try:
        _store(conn, record, batch.now_ms)
    except Exception as exc:
        conn.execute("ROLLBACK TO one")
        conn.execute("RELEASE one")
        log.exception("storing record %s failed", record.id_hex)
        return _refused("error", f"could not store the record ({type(exc).__name__})", record.id_hex)
    conn.execute("RELEASE one")
    return IngestResult(record.id_hex, "accepted", None, None)


def apply_batch(conn: sqlite3.Connection, batch: Batch) -> dict[int, IngestResult]:
    """Check and store ``batch`` inside the caller's write transaction; return results by input index.

    Raises:
        NeedsIsolation: storing a record failed in the fast path; the caller rolls back and reruns the batch
            with ``isolate=True``.
        sqlite3.Error: the database failed; the caller's transaction rolls everything back.
    """
    charter = derive.load_charter(conn)
    results: dict[int, IngestResult] = {}
    added: Counter[str] = Counter()
    refusals = list(batch.refusals)
    for index, record in batch.pending:
        result = _one(conn, record, charter, batch)
        results[index] = result
        if result.status == "accepted":
            added[record.kind] += 1
            if record.kind == "charter":
                charter = record
        elif result.status == "refused" and result.reason != "missing-reference":
            refusals.append((result.reason or "error", result.detail or ""))
    conn.executemany("INSERT INTO kind_counts VALUES (?, ?) "
                     "ON CONFLICT (kind) DO UPDATE SET n = n + excluded.n", list(added.items()))
    record_refusals(conn, batch.source, refusals, batch.now_ms)
    return results


def record_refusals(conn: sqlite3.Connection, source: str, refusals: Iterable[tuple[str, str]],
                    now_ms: int) -> None:
    """Count refusals per (source, reason), keeping the last detail (inside the caller's transaction)."""
    counts: Counter[str] = Counter()
    last: dict[str, str] = {}
    for reason, detail in refusals:
        counts[reason] += 1
        last[reason] = detail
    conn.executemany(
        "INSERT INTO refused VALUES (?, ?, ?, ?, ?) ON CONFLICT (source, reason) DO UPDATE SET "
        "count = count + excluded.count, last_detail = excluded.last_detail, last_at = excluded.last_at",
        [(source, reason, n, last[reason][:500], now_ms) for reason, n in counts.items()])


# -- the pipeline ------------------------------------------------------------------------------------------

_NO_REFUSALS: list[tuple[str, str]] = []
Job = Callable[[sqlite3.Connection, Batch], dict[int, IngestResult]]
Submit = Callable[[Job, Batch], "Future[dict[int, IngestResult]]"]  # the writer's submit(fn, *args)


@dataclass
class _Context:
    submit: Submit
    results: list[IngestResult | None]
    now_ms: int
    source: str
    limits: Limits
    expected: bytes | None

    def batch(self, pending: list[tuple[int, Record]], refusals: list[tuple[str, str]]) -> Batch:
        return Batch(pending, self.now_ms, self.source, self.limits, self.expected, refusals)


def run(submit: Submit, count: Callable[[list[tuple[str, str]]], None], raws: Sequence[bytes], *,
        have: Callable[[Iterable[bytes]], set[bytes]], now_ms: int, source: str, limits: Limits,
        expected: bytes | None) -> list[IngestResult]:
    """Check and store ``raws``: decode in this thread, store through ``submit`` (the writer) in transactions
    of ``limits.ingest_batch`` records, retry missing-reference refusals while a pass makes progress, then
    count what is still missing through ``count``. Results are in input order; every accepted one is
    committed when this returns.
    """
    results: list[IngestResult | None] = [None] * len(raws)
    ctx = _Context(submit, results, now_ms, source, limits, expected)
    order = _presort(raws, have, results)
    size = max(1, limits.ingest_batch)
    chunks = (_decode(order[i:i + size], now_ms, limits, results) for i in range(0, len(order), size))
    missing, accepted = _pipeline(ctx, chunks)
    while missing and accepted:
        retry = [(missing[i:i + size], _NO_REFUSALS) for i in range(0, len(missing), size)]
        missing, accepted = _pipeline(ctx, iter(retry))
    if missing:
        count([(r.reason or "missing-reference", r.detail or "") for r in (results[i] for i, _ in missing)
               if r is not None])
    assert all(r is not None for r in results)
    return results  # type: ignore[return-value]


def _pipeline(ctx: _Context, chunks: Iterator[tuple[list[tuple[int, Record]], list[tuple[str, str]]]]
              ) -> tuple[list[tuple[int, Record]], int]:
    """Submit each chunk as it is decoded, with at most two batches in flight (one writing, one queued)."""
    inflight: deque[tuple[Batch, Future[dict[int, IngestResult]]]] = deque()
    missing: list[tuple[int, Record]] = []
    accepted = 0
    for pending, refusals in chunks:
        if pending or refusals:
            batch = ctx.batch(pending, refusals)
            inflight.append((batch, ctx.submit(apply_batch, batch)))
        while len(inflight) > 1:
            accepted += _collect(ctx, *inflight.popleft(), missing)
    while inflight:
        accepted += _collect(ctx, *inflight.popleft(), missing)
    return missing, accepted


def _collect(ctx: _Context, batch: Batch, future: Future[dict[int, IngestResult]],
             missing: list[tuple[int, Record]]) -> int:
    """Wait for one batch; on a fast-path failure rerun it isolated. Returns how many records it accepted."""
    try:
        try:
            out = future.result()
        except NeedsIsolation:
            # Rare (a bug or a full disk): a later batch may already be stored, so a record of this one that
            # refers to it comes back as missing-reference and is retried by run().
            out = ctx.submit(apply_batch, replace(batch, isolate=True)).result()
    except sqlite3.Error as exc:
        log.error("ingest transaction failed: %s", exc)
        out = {i: _refused("error", f"the database failed: {exc}", r.id_hex) for i, r in batch.pending}
    accepted = 0
    for index, record in batch.pending:
        ctx.results[index] = out[index]
        accepted += out[index].status == "accepted"
        if out[index].reason == "missing-reference":
            missing.append((index, record))
    return accepted
