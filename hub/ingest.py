"""The one way in (STYLE.md): every record — published locally, pushed by a peer, pulled in sync, imported,
or taken back out of ``deferred`` / ``quarantine`` — passes :func:`run` or :func:`retry_due`, and nothing else
writes to ``records``.

    _presort      hash, skip duplicates (stored, or repeated in the call), order by (created_ms, id)
    _decode       protocol.decode_record (canonical form, schema, time, signature), in the caller's thread
    apply_batch   in the writer's transaction: protocol.classify (the storage rule, docs/protocol.md §2.3)
                  decides store / defer / quarantine / refuse; a stored record updates derived state and the
                  eligible set, then wakes what waited for it (hub.held), until nothing more lands

Decoding and writing overlap: while the writer thread stores one batch (SQLite releases the GIL while it
works), the caller decodes the next. A refused record is never stored; its refusal is counted (hub.refusals)
in the same transaction as its batch. A deferred record is never counted as a refusal: it is held (bounded)
and retried by the store itself when what it waits for arrives or its time comes.

Decoding uses every core the process may run on: cryptography's Ed25519 verify holds the GIL (two threads
verify no faster than one, docs/perf/hub.md), so with two CPUs or more a call of some size is checked by
worker processes (hub.decoding) a few batches ahead of the writer, and the caller only rebuilds what they
passed from its bytes; on one CPU everything decodes in the caller's thread, as before. Either way every
result is the one the single-thread path gives (hub.decoding says how).
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

from protocol import FutureError, Limits, ProtocolError, Record, Verdict, classify, decode_record
from protocol.errors import DecodeError, TooLargeError
from protocol.records import peek_created_ms
from protocol.storage import amendment_assessors

from . import decoding, derive, held, refusals
from .derive import record_from_raw
from .refusals import Refused

__all__ = ["STATUSES", "Batch", "BatchOutcome", "IngestResult", "NeedsIsolation", "apply_batch", "retry_due",
           "run"]

log = logging.getLogger(__name__)

#: Every status an IngestResult can have (docs/dev/hub-contract.md).
STATUSES = ("accepted", "duplicate", "refused", "deferred", "quarantined")


class IngestResult(NamedTuple):
    id: str | None  # hex record id; None if the bytes did not decode
    status: str  # one of STATUSES
    reason: str | None  # protocol.REASONS when refused, deferred or quarantined
    detail: str | None  # one human line


def _refused(reason: str, detail: str, record_id: str | None) -> IngestResult:
    return IngestResult(record_id, "refused", reason, detail)


# -- before the lock: order and decode ---------------------------------------------------------------------

Item = tuple[int, int, bytes, "bytes | None"]  # (created_ms for ordering, input index, raw, sha256)


def _created_ms(raw: bytes) -> int:
    """Creation time for ordering only, from a plain msgpack parse; -1 for bytes decode_record will refuse.

    A canonical record of today has it at a fixed place (docs/protocol.md §4: fixarray 7, version 1, two
    32-byte bin8 fields, then a uint64), read without parsing the rest; anything else is parsed. Only the
    order of the call depends on it, and a record refused by decode_record is refused wherever it sorts.
    """
    peeked = peek_created_ms(raw)
    if peeked is not None:
        return peeked
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


def _decode(items: list[Item], now_ms: int, limits: Limits, source: str, results: list[IngestResult | None],
            ok: Sequence[bool | None] | None = None) -> tuple[list[tuple[int, Record]], list[Refused]]:
    """Decode ``items``; ``ok``: a decode pool's flag per item (True: it decoded there, so rebuild it from its
    bytes; False or None: decode here, which also gives a refusal — or a record a little ahead of our clock —
    its exact exception)."""
    pending: list[tuple[int, Record]] = []
    refused: list[Refused] = []
    for n, (_, i, raw, digest) in enumerate(items):
        try:
            if ok is not None and ok[n] and digest is not None:
                pending.append((i, record_from_raw(raw, digest)))
                continue
            pending.append((i, decode_record(raw, now_ms=now_ms, limits=limits)))
        except FutureError as exc:
            pending.append((i, exc.record))  # verified, a little ahead: classify defers it
        except ProtocolError as exc:
            # Bytes that are not one well-formed record have no id; a signature, schema or time failure does.
            undecoded = digest is None or isinstance(exc, DecodeError | TooLargeError)
            rid = None if undecoded or digest is None else digest.hex()
            results[i] = _refused(exc.reason, str(exc), rid)
            refused.append(Refused(source, exc.reason, str(exc), rid))
    return pending, refused


# -- in the writer's transaction ---------------------------------------------------------------------------


@dataclass
class Batch:
    """One writer transaction's work: records to check and store, refusals to count."""

    pending: list[tuple[int, Record]]
    now_ms: int
    source: str
    limits: Limits
    expected: bytes | None
    refusals: list[Refused] = field(default_factory=list)
    origin: bytes | None = None
    isolate: bool = False  # a savepoint per record (the slow path, after a failure in this batch)

    @property
    def write_weight(self) -> int:
        """Its share of a group-committed transaction (hub.db.Writer): the records it checks."""
        return len(self.pending) + len(self.refusals)


@dataclass
class BatchOutcome:
    """Results by input index, and records accepted on retry meanwhile, each with the source it came from."""

    results: dict[int, IngestResult]
    retried: list[tuple[IngestResult, str]]


class NeedsIsolation(Exception):
    """Storing a record failed in the fast path: roll the batch back and rerun it with savepoints."""


class _Txn:
    """The storage rule applied inside one write transaction, with the wake-ups it causes."""

    def __init__(self, conn: sqlite3.Connection, now_ms: int, limits: Limits, expected: bytes | None,
                 isolate: bool) -> None:
        self.conn, self.now_ms, self.limits, self.expected, self.isolate = conn, now_ms, limits, expected, isolate
        self.charter = derive.load_charter(conn)
        self.woken_ids: list[bytes] = []
        self.woken_authors: list[bytes] = []
        self.refused: list[Refused] = []
        self.deferring: set[str] = set()  # sources that deferred something: their share is checked at the end
        self.quarantining = False
        self.added: Counter[str] = Counter()
        self.eligible: set[bytes] = set()  # hubs known eligible in this transaction (the set only grows)
        # Whether anything is deferred or quarantined at all: most transactions skip those lookups entirely.
        self.waiting = conn.execute("SELECT EXISTS (SELECT 1 FROM deferred) OR EXISTS "
                                    "(SELECT 1 FROM quarantine)").fetchone()[0] == 1
        # Ids known not stored when this transaction began (prefetch): one IN query per batch instead of a
        # lookup per record; ids stored since are taken out as they are stored.
        self.absent: set[bytes] = set()

    def prefetch(self, records: Iterable[Record]) -> None:
        """Look up at once which of ``records`` are stored, so :meth:`one` need not ask for each."""
        ids = [r.id for r in records]
        found: set[bytes] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            found.update(row[0] for row in self.conn.execute(
                f"SELECT id FROM records WHERE id IN ({','.join('?' * len(chunk))})", chunk))
        self.absent = set(ids) - found

    def _is_eligible(self, hub: bytes) -> bool:
        if hub in self.eligible:
            return True
        if held.is_eligible(self.conn, hub):
            self.eligible.add(hub)
            return True
        return False

    def _kind_of(self, record_id: bytes) -> str | None:
        row = self.conn.execute("SELECT kind FROM records WHERE id = ?", (record_id,)).fetchone()
        return None if row is None else str(row[0])

    def one(self, record: Record, source: str, origin: bytes | None) -> IngestResult:
        conn = self.conn
        if record.id in self.absent:
            self.absent.discard(record.id)  # a second copy (retried from deferred) is looked up again
        elif conn.execute("SELECT 1 FROM records WHERE id = ?", (record.id,)).fetchone():
            return IngestResult(record.id_hex, "duplicate", None, None)  # another process stored it meanwhile
        if self.waiting and record.kind == "profile" and held.in_quarantine(conn, record.id):
            if not self._is_eligible(record.author):
                return IngestResult(record.id_hex, "quarantined", "not-a-member", "already held as an applicant")
            conn.execute("DELETE FROM quarantine WHERE id = ?", (record.id,))  # eligible meanwhile: store it
        verdict = classify(record, now_ms=self.now_ms, charter=self.charter, origin=origin,
                           eligible=self._is_eligible, kind_of=self._kind_of, expected=self.expected,
                           limits=self.limits)
        if verdict.action == "refuse":
            self.refused.append(Refused(source, verdict.reason or "invalid", verdict.detail, record.id_hex))
            return _refused(verdict.reason or "invalid", verdict.detail, record.id_hex)
        if verdict.action == "quarantine":
            assert origin is not None  # classify quarantines only a profile from its own author
            self.quarantining = self.waiting = True
            kept, moved = held.quarantine(conn, record, origin, source, self.now_ms)
            if moved is not None:
                self.deferring.add(moved)
            if kept:
                return IngestResult(record.id_hex, "quarantined", verdict.reason, verdict.detail)
            verdict = Verdict("defer", "not-a-member", "a newer profile of this applicant is held; this one "
                              "waits for its sponsorship too", wait_author=record.author)
        if verdict.action == "defer":
            held.defer(conn, record, verdict, source, origin, self.now_ms)
            self.deferring.add(source)
            self.waiting = True
            return IngestResult(record.id_hex, "deferred", verdict.reason, verdict.detail)
        return self._store(record, source)

    def _store(self, record: Record, source: str) -> IngestResult:
        if not self.isolate:
            try:
                woken = _insert(self.conn, record, self.now_ms, self.waiting)
            except Exception as exc:
                raise NeedsIsolation(record.id_hex) from exc
        else:
            # The slow path: a failure while storing one record (a bug, a constraint, a full disk) must not take
            # the rest of the batch down with it, and must leave nothing of that record behind. Savepoints cost
            # ~40 µs a record (RELEASE), a seventh of the write path, so they are used only once a batch failed.
            self.conn.execute("SAVEPOINT one")
            try:
                woken = _insert(self.conn, record, self.now_ms, self.waiting)
            except Exception as exc:
                if not self.conn.in_transaction:
                    raise  # SQLite ended the transaction itself (a full disk, an I/O error): the batch fails whole
                try:
                    self.conn.execute("ROLLBACK TO one")
                    self.conn.execute("RELEASE one")
                except sqlite3.Error:
                    raise exc from None
                log.exception("storing record %s failed", record.id_hex)
                detail = f"could not store the record ({type(exc).__name__})"
                self.refused.append(Refused(source, "error", detail, record.id_hex))
                return _refused("error", detail, record.id_hex)
            self.conn.execute("RELEASE one")
        self.added[record.kind] += 1
        self.absent.discard(record.id)
        if record.kind == "charter":
            self.charter = record
        if self.waiting:
            self.woken_ids.append(record.id)
        self.woken_authors += woken
        return IngestResult(record.id_hex, "accepted", None, None)

    def retry(self, waiting: Iterable[held.Waiting]) -> list[tuple[IngestResult, str]]:
        out = []
        for w in waiting:
            result = self.one(w.record, w.source, w.origin)
            if result.status == "accepted":
                out.append((result, w.source))
        return out

    def settle(self) -> list[tuple[IngestResult, str]]:
        """Retry what waited for the records stored so far, until nothing more lands. Terminates: each round
        takes rows out of the tables, and only a newly stored record can wake more."""
        out: list[tuple[IngestResult, str]] = []
        if not self.waiting:  # nothing is deferred or quarantined: nothing can wake
            self.woken_ids, self.woken_authors = [], []
        while self.woken_ids or self.woken_authors:
            ids, authors = self.woken_ids, self.woken_authors
            self.woken_ids, self.woken_authors = [], []
            out += self.retry(held.take_woken(self.conn, ids, authors))
        return out

    def finish(self, source_refusals: list[Refused]) -> None:
        held.enforce_caps(self.conn, self.deferring, self.limits, quarantined=self.quarantining)
        self.conn.executemany("INSERT INTO kind_counts VALUES (?, ?) "
                              "ON CONFLICT (kind) DO UPDATE SET n = n + excluded.n", list(self.added.items()))
        refusals.record(self.conn, source_refusals + self.refused, self.now_ms, self.limits)


def _ref_column(record: Record) -> bytes | None:
    body = record.body
    for name in ("offer", "target", "subject", "supersedes", "payee", "payment", "fund", "claim", "proposal",
                 "guide", "to"):
        if name in body:
            return body[name]  # type: ignore[no-any-return]
    return None


def _insert(conn: sqlite3.Connection, record: Record, now_ms: int, waiting: bool) -> list[bytes]:
    """Store one record and its derived state; return the authors it made eligible. ``waiting``: something is
    deferred, so this record may be among it (it arrived again and is stored now)."""
    cursor = conn.execute("INSERT INTO records (id, kind, author, created_ms, ref, received_ms, raw) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?)",
                          (record.id, record.kind, record.author, record.created_ms, _ref_column(record),
                           now_ms, record.raw))
    assert cursor.lastrowid is not None
    derive.apply(conn, record, cursor.lastrowid)
    if waiting:
        conn.execute("DELETE FROM deferred WHERE id = ?", (record.id,))  # deferred before, stored now
    if record.kind == "charter":
        founders = list(record.body["founders"])
        return held.add_eligible(conn, founders + [a for s in record.body["schemes"] for a in s["assessors"]])
    if record.kind == "endorsement":
        return held.add_eligible(conn, [record.body["subject"]])
    if record.kind == "proposal":  # assessors its amendment names (protocol.storage.eligible_authors)
        return held.add_eligible(conn, amendment_assessors(record))
    return []


def apply_batch(conn: sqlite3.Connection, batch: Batch) -> BatchOutcome:
    """Check and store ``batch`` inside the caller's write transaction; results by input index.

    Records whose time has come are retried first; everything stored then wakes what waited for it.

    Raises:
        NeedsIsolation: storing a record failed in the fast path; the caller rolls back and reruns the batch
            with ``isolate=True``.
        sqlite3.Error: the database failed; the caller's transaction rolls everything back.
    """
    txn = _Txn(conn, batch.now_ms, batch.limits, batch.expected, batch.isolate)
    txn.prefetch(record for _, record in batch.pending)
    with derive.membership_deferred(conn):  # recomputed once for the batch's endorsements, not for each
        retried = txn.retry(held.take_due(conn, batch.now_ms, max(1, batch.limits.ingest_batch)))
        results = {index: txn.one(record, batch.source, batch.origin) for index, record in batch.pending}
        retried += txn.settle()
    txn.finish(batch.refusals)
    return BatchOutcome(results, retried)


def retry_due(conn: sqlite3.Connection, now_ms: int, limits: Limits, expected: bytes | None,
              isolate: bool = False) -> tuple[list[IngestResult], list[tuple[IngestResult, str]]]:
    """One transaction of :meth:`Store.retry_due`: up to ``ingest_batch`` future records whose time came.

    Returns the results of those taken, and every record accepted (them and what they woke) with its source.

    Raises:
        NeedsIsolation, sqlite3.Error: as :func:`apply_batch`.
    """
    txn = _Txn(conn, now_ms, limits, expected, isolate)
    due = held.take_due(conn, now_ms, max(1, limits.ingest_batch))
    with derive.membership_deferred(conn):
        results = [txn.one(w.record, w.source, w.origin) for w in due]
        accepted = [(r, w.source) for r, w in zip(results, due, strict=True) if r.status == "accepted"]
        accepted += txn.settle()
    txn.finish([])
    return results, accepted


# -- the pipeline ------------------------------------------------------------------------------------------

Job = Callable[[sqlite3.Connection, Batch], BatchOutcome]
Submit = Callable[[Job, Batch], "Future[BatchOutcome]"]  # the writer's submit(fn, *args)


@dataclass
class _Context:
    submit: Submit
    results: list[IngestResult | None]
    now_ms: int
    source: str
    origin: bytes | None
    limits: Limits
    expected: bytes | None
    retried: list[tuple[IngestResult, str]] = field(default_factory=list)

    def batch(self, pending: list[tuple[int, Record]], refused: list[Refused]) -> Batch:
        return Batch(pending, self.now_ms, self.source, self.limits, self.expected, refused, self.origin)


def run(submit: Submit, raws: Sequence[bytes], *, have: Callable[[Iterable[bytes]], set[bytes]], now_ms: int,
        source: str, limits: Limits, expected: bytes | None,
        origin: bytes | None = None) -> tuple[list[IngestResult], list[tuple[IngestResult, str]]]:
    """Check and store ``raws``: decode in this thread, store through ``submit`` (the writer) in transactions
    of ``limits.ingest_batch`` records. Results are in input order; every accepted one is committed when this
    returns. A record of this call deferred and then accepted on a later batch's retry reports "accepted".

    Returns the results, and the records of *other* calls accepted on retry meanwhile, with their sources.
    """
    results: list[IngestResult | None] = [None] * len(raws)
    ctx = _Context(submit, results, now_ms, source, origin, limits, expected)
    order = _presort(raws, have, results)
    size = max(1, limits.ingest_batch)
    chunks = _decoded([order[i:i + size] for i in range(0, len(order), size)], now_ms, limits, source, results)
    _pipeline(ctx, chunks)
    waiting = {r.id: i for i, r in enumerate(results) if r is not None and r.status == "deferred"}
    others = []
    for result, from_source in ctx.retried:
        index = waiting.get(result.id)
        if index is not None:
            results[index] = result
        else:
            others.append((result, from_source))
    assert all(r is not None for r in results)
    return results, others  # type: ignore[return-value]


Decoded = tuple[list[tuple[int, Record]], list[Refused]]
#: Chunks handed to the decode pool ahead of the one the writer waits for: enough to keep every worker busy.
LOOKAHEAD = 3


def _decoded(chunks: list[list[Item]], now_ms: int, limits: Limits, source: str,
             results: list[IngestResult | None]) -> Iterator[Decoded]:
    """Each chunk decoded, in order: by the process pool when there is one and the call is large enough
    (each chunk split among the workers, up to LOOKAHEAD chunks ahead), else in this thread."""
    pool = decoding.shared_pool()
    if pool is None or sum(map(len, chunks)) < decoding.POOL_MIN_RECORDS:
        for chunk in chunks:
            yield _decode(chunk, now_ms, limits, source, results)
        return
    ahead: deque[tuple[list[Item], list[tuple[list[int], Future[bytes]]] | None]] = deque()
    queued = deque(chunks)
    while queued or ahead:
        while queued and len(ahead) < LOOKAHEAD:
            chunk = queued.popleft()
            ahead.append((chunk, _farm_out(pool, chunk, now_ms, limits)))
        chunk, parts = ahead.popleft()
        yield _decode(chunk, now_ms, limits, source, results, _gather(pool, len(chunk), parts))


def _farm_out(pool: decoding.DecodePool, chunk: list[Item], now_ms: int,
              limits: Limits) -> list[tuple[list[int], Future[bytes]]] | None:
    """Send a chunk's bytes to the pool, one part per worker; None if the pool cannot take them."""
    sendable = [n for n, item in enumerate(chunk) if item[3] is not None]  # bytes only (a digest was taken)
    step = max(1, -(-len(sendable) // pool.workers))
    parts = []
    for start in range(0, len(sendable), step):
        positions = sendable[start:start + step]
        future = pool.submit([bytes(chunk[n][2]) for n in positions], now_ms, limits)
        if future is None:
            return None
        parts.append((positions, future))
    return parts


def _gather(pool: decoding.DecodePool, size: int,
            parts: list[tuple[list[int], Future[bytes]]] | None) -> list[bool | None] | None:
    """The pool's flag per item of a chunk (None where it was not sent); None if the pool failed."""
    if parts is None:
        return None
    ok: list[bool | None] = [None] * size
    try:
        for positions, future in parts:
            for n, flag in zip(positions, future.result(timeout=decoding.ANSWER_TIMEOUT_S), strict=True):
                ok[n] = bool(flag)
    except decoding.WorkerFailed as exc:  # the pool has already dropped those workers
        log.warning("%s; decoding this batch in the ingesting thread", exc)
        return None
    except TimeoutError:
        log.warning("decode workers did not answer in %.0f s; ending them and decoding this batch in the "
                    "ingesting thread", decoding.ANSWER_TIMEOUT_S)
        pool.reset()
        return None
    return ok


#: Batches queued at the writer ahead of the one it writes: the writer commits the batches it finds queued in
#: one transaction (hub.db.Writer's group commit), so a large call costs one COMMIT per ~2,000 records.
WRITE_AHEAD = 4


def _pipeline(ctx: _Context, chunks: Iterator[tuple[list[tuple[int, Record]], list[Refused]]]) -> None:
    """Submit each chunk as it is decoded, with at most WRITE_AHEAD + 1 batches in flight."""
    inflight: deque[tuple[Batch, Future[BatchOutcome]]] = deque()
    for pending, refused in chunks:
        if pending or refused:
            batch = ctx.batch(pending, refused)
            inflight.append((batch, ctx.submit(apply_batch, batch)))
        while len(inflight) > WRITE_AHEAD:
            _collect(ctx, *inflight.popleft())
    while inflight:
        _collect(ctx, *inflight.popleft())


def _collect(ctx: _Context, batch: Batch, future: Future[BatchOutcome]) -> None:
    """Wait for one batch; on a fast-path failure rerun it isolated."""
    try:
        try:
            out = future.result()
        except NeedsIsolation:
            # Rare (a bug or a full disk). A later batch may already be stored: a record of this one that
            # refers to it finds it stored now; one of that batch that refers to this one was deferred and
            # wakes when this one stores it.
            out = ctx.submit(apply_batch, replace(batch, isolate=True)).result()
    except sqlite3.Error as exc:
        log.error("ingest transaction failed: %s", exc)
        out = BatchOutcome({i: _refused("error", f"the database failed: {exc}", r.id_hex)
                            for i, r in batch.pending}, [])
    for index, _ in batch.pending:
        ctx.results[index] = out.results[index]
    ctx.retried += out.retried
