"""Negentropy conformance harness: ``python -m federation.negentropy_harness`` (docs/negentropy.md).

Speaks the line protocol of the reference repository's harnesses (hoytech/negentropy ``test/cpp/harness.cpp``)
so that any other implementation's harness can be run against ours. Standard input, one command a line:

- ``item,<timestamp>,<id hex>`` — add an item; ``seal`` — the set is complete, build the reconciler;
- ``initiate`` — become the initiator and print ``msg,<hex>``, the opening message;
- ``msg,<hex>`` — reconcile an incoming message. The initiator prints ``have,<id hex>`` and ``need,<id hex>``
  lines, then ``msg,<hex>`` to continue or ``done``; the responder prints ``msg,<hex>``.

Empty lines are ignored. ``FRAMESIZELIMIT`` (bytes; unset or 0 = none, otherwise at least 4096) bounds every
message. ``NEGENTROPY_OPENING=whole-range`` makes ``initiate`` send one whole-range fingerprint instead of the
reference opening. Any bad input line, protocol error or over-limit message prints one ``error: ...`` line on
standard error and exits with status 1.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import TextIO

from .negentropy import ID_SIZE, Negentropy, NegentropyError, Storage

__all__ = ["HarnessError", "main", "run"]


class HarnessError(Exception):
    """A command line the harness cannot act on."""


def _frame_size_limit(raw: str | None) -> int:
    """Parse ``FRAMESIZELIMIT``.

    Raises:
        HarnessError: not a non-negative integer, or between 1 and 4095.
    """
    if raw is None or raw.strip() == "":
        return 0
    try:
        limit = int(raw)
    except ValueError:
        raise HarnessError(f"FRAMESIZELIMIT is not an integer: {raw!r}") from None
    if limit < 0 or 0 < limit < 4096:
        raise HarnessError(f"FRAMESIZELIMIT must be 0 or at least 4096: {limit}")
    return limit


def _hex(field: str, what: str) -> bytes:
    """Decode a hex field.

    Raises:
        HarnessError: ``field`` is not hex.
    """
    try:
        return bytes.fromhex(field)
    except ValueError:
        raise HarnessError(f"{what} is not hex") from None


def run(lines: Iterable[str], out: TextIO, frame_size_limit: int = 0, whole_range: bool = False) -> None:
    """Execute harness commands from ``lines``, writing result lines to ``out`` (flushed after each line).

    Raises:
        HarnessError: a malformed or out-of-order command, or an outgoing message over the frame size limit.
        NegentropyError: an incoming message is malformed.
    """
    items: list[tuple[int, bytes]] = []
    reconciler: Negentropy | None = None

    def emit(line: str) -> None:
        out.write(line + "\n")
        out.flush()

    def emit_msg(msg: bytes) -> None:
        # ref harness: refuse to send anything over the limit, from either role.
        if frame_size_limit and len(msg) > frame_size_limit:
            raise HarnessError(f"frame size limit exceeded: {len(msg)} > {frame_size_limit}")
        emit("msg," + msg.hex())

    for lineno, raw in enumerate(lines, 1):
        line = raw.rstrip("\r\n")
        if not line:
            continue
        fields = line.split(",")
        cmd = fields[0]
        if cmd == "item":
            if len(fields) != 3:
                raise HarnessError(f"line {lineno}: item needs 2 fields")
            if reconciler is not None:
                raise HarnessError(f"line {lineno}: item after seal")
            if not (fields[1].isascii() and fields[1].isdigit()):
                raise HarnessError(f"line {lineno}: bad timestamp {fields[1]!r}")
            id_ = _hex(fields[2], f"line {lineno}: id")
            if len(id_) != ID_SIZE:
                raise HarnessError(f"line {lineno}: id must be {ID_SIZE} bytes")
            items.append((int(fields[1]), id_))
        elif cmd == "seal":
            if reconciler is not None:
                raise HarnessError(f"line {lineno}: already sealed")
            try:
                reconciler = Negentropy(Storage(items), frame_size_limit)
            except ValueError as exc:
                raise HarnessError(f"line {lineno}: {exc}") from None
        elif cmd == "initiate":
            if reconciler is None:
                raise HarnessError(f"line {lineno}: initiate before seal")
            emit_msg(reconciler.initiate(whole_range_fingerprint=whole_range))
        elif cmd == "msg":
            if reconciler is None:
                raise HarnessError(f"line {lineno}: msg before seal")
            query = _hex(fields[1], f"line {lineno}: msg") if len(fields) >= 2 else b""
            if reconciler.is_initiator:
                reply, have, need = reconciler.reconcile_initiator(query)
                for id_ in have:
                    emit("have," + id_.hex())
                for id_ in need:
                    emit("need," + id_.hex())
                if reply is None:
                    emit("done")
                    continue
                emit_msg(reply)
            else:
                emit_msg(reconciler.reconcile(query))
        else:
            raise HarnessError(f"line {lineno}: unknown command {cmd!r}")


def main() -> int:
    """Run the harness on standard input and output; return the process exit status."""
    try:
        opening = os.environ.get("NEGENTROPY_OPENING", "reference")
        if opening not in ("reference", "whole-range"):
            raise HarnessError(f"NEGENTROPY_OPENING must be 'reference' or 'whole-range': {opening!r}")
        run(
            sys.stdin,
            sys.stdout,
            frame_size_limit=_frame_size_limit(os.environ.get("FRAMESIZELIMIT")),
            whole_range=opening == "whole-range",
        )
    except (HarnessError, NegentropyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except UnicodeDecodeError:
        print("error: input is not UTF-8 text", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
