"""Decoding records on every core: a few worker processes run ``protocol.decode_record`` ahead of the writer.

cryptography's Ed25519 verify holds the GIL (measured: two threads verify no faster than one,
docs/perf/hub.md), and verification is most of what an incoming record costs, so a second core helps only
from another process. :class:`DecodePool` sends batches of raw records to its workers, which run
``decode_record`` on each and answer one flag per record: it decoded, or it did not. The caller then

- rebuilds each record that decoded from its own bytes (``hub.derive.record_from_raw``: one msgpack parse,
  no second verification — the bytes it holds are the bytes the worker checked), and
- decodes each one that did not **again, in its own thread**, so that every refusal — its exception class,
  reason, field and message, or a time-dependent outcome — is exactly what the single-thread path gives.
  Refusals are rare on an honest network; a flood of bad records costs the caller what it cost before.

So the pool changes where the work runs, never a result. It is used only when it can pay: at least two CPUs
in this process's affinity mask (``taskset -c 0`` or a 1-vCPU box means no pool at all, the plain path) and
a call of at least :data:`POOL_MIN_RECORDS`.

A worker is this file run as a script (``python -P hub/decoding.py``): it imports ``protocol`` and nothing
of the hub, reads length-prefixed msgpack requests on stdin and answers on stdout (~28 MB and ~0.2 s to
start). Workers start on the first large call, and exit after :data:`IDLE_S` without work, so a hub that is
not importing anything holds no extra processes. If a worker dies (the OOM killer, say), every batch in
flight fails over to the caller's thread and the next call starts new workers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import IO, Any

import msgpack

from protocol import Limits, ProtocolError, decode_record

__all__ = ["ANSWER_TIMEOUT_S", "IDLE_S", "MAX_WORKERS", "POOL_MIN_RECORDS", "RETRY_AFTER_S", "DecodePool",
           "WorkerFailed", "code_stamp", "decode_flags", "shared_pool", "usable_cpus"]

log = logging.getLogger(__name__)

#: Calls smaller than this decode in the caller's thread: a round trip to a worker costs about as much as
#: decoding a dozen records.
POOL_MIN_RECORDS = 64
#: Workers unused for this long exit.
IDLE_S = 60.0
#: After workers fail, calls decode in their own thread for this long before new workers are tried.
RETRY_AFTER_S = 10.0
#: At most this many workers, whatever the CPU count: beyond two the writer is the bound
#: (docs/performance.md), and each worker holds ~28 MB.
MAX_WORKERS = 2
#: A batch a worker has not answered after this long is given up: the workers are ended and the batch decoded
#: in the caller's thread. A batch of 250 takes ~20 ms; this is for a worker that hangs, not a slow one.
ANSWER_TIMEOUT_S = 60.0
_LENGTH = 4  # bytes of the big-endian length before each frame


class WorkerFailed(Exception):
    """A decode worker died or answered nonsense; the batch is decoded in the caller's thread instead."""


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask, e.g. one under ``taskset -c 0``)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def code_stamp() -> str:
    """What the decoding rules here are made of: names, sizes and times of protocol's sources and this file.

    A worker started from code that changed on disk (an upgrade while the hub runs) would judge records by
    other rules; it compares its stamp with its parent's and exits instead (the parent then decodes itself).
    """
    import protocol

    digest = hashlib.sha256()
    for path in [*sorted(Path(protocol.__file__).parent.glob("*.py")), Path(__file__)]:
        info = path.stat()
        digest.update(f"{path.name}:{info.st_size}:{info.st_mtime_ns};".encode())
    return digest.hexdigest()


def decode_flags(raws: Sequence[bytes], now_ms: int, limits: Limits) -> bytes:
    """One byte per raw: 1 if it decodes (``protocol.decode_record``: canonical form, schema, time, signature)
    at ``now_ms`` under ``limits``, else 0."""
    out = bytearray()
    for raw in raws:
        try:
            decode_record(raw, now_ms=now_ms, limits=limits)
        except ProtocolError:
            out.append(0)
        else:
            out.append(1)
    return bytes(out)


def _write_frame(stream: IO[bytes], payload: bytes) -> None:
    stream.write(len(payload).to_bytes(_LENGTH, "big") + payload)
    stream.flush()


def _read_frame(stream: IO[bytes]) -> bytes | None:
    head = stream.read(_LENGTH)
    if len(head) < _LENGTH:
        return None
    payload = stream.read(int.from_bytes(head, "big"))
    return payload


def _serve(stdin: IO[bytes], stdout: IO[bytes]) -> None:
    """The worker's loop: a request is msgpack [now_ms, {limit: value}, [raw, ...]], the answer the flags."""
    limits: Limits | None = None
    limits_key: bytes = b""
    while (frame := _read_frame(stdin)) is not None:
        now_ms, fields, raws = msgpack.unpackb(frame, raw=False)
        key = msgpack.packb(fields)
        if limits is None or key != limits_key:
            limits, limits_key = Limits(**fields), key
        _write_frame(stdout, decode_flags(raws, now_ms, limits))


Task = tuple[bytes, int, "Future[bytes]"]  # (request frame, records in it, future of the flags)


class _Generation:
    """One set of worker processes and the threads that talk to them; broken as a whole if any fails."""

    def __init__(self, workers: int) -> None:
        self.tasks: queue.SimpleQueue[Task | None] = queue.SimpleQueue()
        self.broken = False
        self.closed = False
        self._lock = threading.Lock()
        self.processes: list[subprocess.Popen[bytes]] = []
        self.threads: list[threading.Thread] = []
        for n in range(workers):
            process = subprocess.Popen([sys.executable, "-P", os.path.abspath(__file__), _STAMP],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True)
            thread = threading.Thread(target=self._feed, args=(process,), name=f"coophub-decode-{n}",
                                      daemon=True)
            self.processes.append(process)
            self.threads.append(thread)
            thread.start()

    def _feed(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdin is not None and process.stdout is not None
        while (task := self.tasks.get()) is not None:
            frame, count, future = task
            if self.broken:
                future.set_exception(WorkerFailed("the decode workers stopped"))
                continue
            try:
                _write_frame(process.stdin, frame)
                answer = _read_frame(process.stdout)
                if answer is None or len(answer) != count:
                    raise WorkerFailed(f"decode worker {process.pid} stopped (exit code {process.poll()})")
            except (OSError, ValueError, WorkerFailed) as exc:
                failure = exc if isinstance(exc, WorkerFailed) else WorkerFailed(f"decode worker: {exc}")
                future.set_exception(failure)
                self.fail()
                continue
            future.set_result(answer)
        self._stop(process)

    def submit(self, frame: bytes, count: int) -> Future[bytes]:
        future: Future[bytes] = Future()
        with self._lock:  # never behind the threads' stop marks: a task queued after them would wait forever
            if self.broken or self.closed:
                future.set_exception(WorkerFailed("the decode workers stopped"))
            else:
                self.tasks.put((frame, count, future))
        return future

    def fail(self) -> None:
        """Mark the generation broken: every queued batch fails over, and the processes are ended."""
        with self._lock:
            if self.broken:
                return
            self.broken = True
            for process in self.processes:
                if process.poll() is None:
                    process.kill()
        self.close()

    def close(self) -> None:
        """Let the threads finish what is queued (failing it over if broken), then end the processes."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            for _ in self.threads:
                self.tasks.put(None)

    @staticmethod
    def _stop(process: subprocess.Popen[bytes]) -> None:
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class DecodePool:
    """Worker processes that check records; thread-safe; the workers exit after ``idle_s`` without work.

    :meth:`submit` returns a future of one flag byte per raw (see :func:`decode_flags`), or None when the pool
    is closed; a future fails with :class:`WorkerFailed` when a worker does, and the caller then decodes
    that batch itself.
    """

    def __init__(self, workers: int, *, idle_s: float = IDLE_S, retry_after_s: float = RETRY_AFTER_S) -> None:
        self.workers = workers
        self.idle_s = idle_s
        self.retry_after_s = retry_after_s
        self._lock = threading.Lock()
        self._gen: _Generation | None = None
        self._last_used = 0.0
        self._failed_at = -float("inf")
        self._inflight = 0
        self._timer: threading.Timer | None = None
        self._closed = False
        self.started = 0  # how many times workers were started (tests, benchmarks)
        self.submitted = 0  # batches handed to workers

    def submit(self, raws: Sequence[bytes], now_ms: int, limits: Limits) -> Future[bytes] | None:
        frame = msgpack.packb([now_ms, dataclasses.asdict(limits), [bytes(raw) for raw in raws]])
        with self._lock:
            if self._closed:
                return None
            if self._gen is not None and self._gen.broken:
                self._gen, self._failed_at = None, time.monotonic()
            if self._gen is None or self._gen.closed:
                if time.monotonic() - self._failed_at < self.retry_after_s:
                    return None  # workers failed a moment ago: decode in the caller's thread for a while
                self._gen = _Generation(self.workers)
                self.started += 1
            self._last_used = time.monotonic()
            self._inflight += 1
            self.submitted += 1
            self._arm_timer()
            future = self._gen.submit(frame, len(raws))
        future.add_done_callback(self._done)
        return future

    def _done(self, _: Future[bytes]) -> None:
        with self._lock:
            self._inflight -= 1
            self._last_used = time.monotonic()

    def _arm_timer(self, delay: float | None = None) -> None:
        if self._timer is None:
            self._timer = threading.Timer(self.idle_s if delay is None else delay, self._idle_check)
            self._timer.daemon = True
            self._timer.start()

    def _idle_check(self) -> None:
        with self._lock:
            self._timer = None
            if self._gen is None:
                return
            idle = time.monotonic() - self._last_used
            if idle >= self.idle_s and not self._inflight:
                self._gen.close()
                self._gen = None
            else:
                self._arm_timer(max(0.05, self.idle_s - idle))

    def reset(self) -> None:
        """End the current workers (a batch did not come back in time); the next submit starts new ones."""
        with self._lock:
            if self._gen is not None:
                gen, self._gen = self._gen, None
                gen.fail()

    def running(self) -> bool:
        """Whether worker processes are up."""
        with self._lock:
            return self._gen is not None and not (self._gen.broken or self._gen.closed)

    def processes(self) -> list[int]:
        """The workers' process ids (benchmarks read their memory)."""
        with self._lock:
            return [p.pid for p in self._gen.processes] if self._gen is not None else []

    def close(self) -> None:
        """End the workers after what is queued; later submits return None."""
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._gen is not None:
                self._gen.close()
                self._gen = None


_shared: DecodePool | None = None
_shared_lock = threading.Lock()


def shared_pool() -> DecodePool | None:
    """The process's decode pool, or None when fewer than two CPUs are usable (then decoding stays in the
    caller's thread: on one core a pool only adds copying)."""
    global _shared
    workers = min(MAX_WORKERS, usable_cpus())
    if workers < 2:
        return None
    with _shared_lock:
        if _shared is None or _shared.workers != workers:
            _shared = DecodePool(workers)
        return _shared


def _main(argv: list[str]) -> Any:
    if argv[1:] != [code_stamp()]:
        print("coophub decode worker: the code on disk is not the hub's (upgraded while it runs?); exiting",
              file=sys.stderr)
        return 3
    _serve(sys.stdin.buffer, sys.stdout.buffer)
    return 0


_STAMP = code_stamp()

if __name__ == "__main__":
    sys.exit(_main(sys.argv))
