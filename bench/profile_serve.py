"""``coophub serve`` under cProfile in every thread, for finding where a benchmark's CPU goes (bench only).

    python -m bench.profile_serve OUT.prof serve --home HOME --port PORT

Each thread (the event loop, the store's readers and writer, ``asyncio.to_thread`` workers) gets its own
profiler timed by its own CPU clock (``time.thread_time``), since cProfile sees only the thread that enabled
it. ``SIGUSR1`` sets a mark (send it just before the phase to measure); ``SIGUSR2`` writes what every thread did
since the mark to OUT.prof (the end of the process does too, unless SIGUSR2 did). ``python -m pstats OUT.prof``
reads it; ``OUT.prof.threads`` lists the threads' names.
"""

from __future__ import annotations

import cProfile
import marshal
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

_profiles: list[tuple[str, cProfile.Profile]] = []
_lock = threading.Lock()


def _patch_threads() -> None:
    original = threading.Thread.run

    def run(self: threading.Thread) -> None:
        profile = cProfile.Profile(time.thread_time)
        with _lock:
            _profiles.append((self.name, profile))
        profile.enable()
        try:
            original(self)
        finally:
            profile.disable()

    threading.Thread.run = run  # type: ignore[method-assign]


Key = tuple[str, int, str]
Row = tuple[int, int, float, float, dict[Key, tuple[int, int, float, float]]]


def _label(code: object) -> Key:
    if isinstance(code, str):
        return ("~", 0, code)
    return (code.co_filename, code.co_firstlineno, code.co_name)  # type: ignore[attr-defined]


def _snapshot() -> dict[Key, Row]:
    """Every thread's profile summed, in pstats' form; read with ``getstats`` (which, unlike ``create_stats``,
    leaves each profiler running)."""
    with _lock:
        chosen = [p for _, p in _profiles]
    rows: dict[Key, Row] = {}
    for profile in chosen:
        for entry in profile.getstats():
            func = _label(entry.code)
            cc, nc, tt, ct, callers = rows.get(func, (0, 0, 0.0, 0.0, {}))
            rows[func] = (cc + entry.callcount - entry.reccallcount, nc + entry.callcount, tt + entry.inlinetime,
                          ct + entry.totaltime, callers)
        for entry in profile.getstats():
            caller = _label(entry.code)
            for sub in entry.calls or ():
                callee = _label(sub.code)
                row = rows.setdefault(callee, (0, 0, 0.0, 0.0, {}))
                a, b, c, d = row[4].get(caller, (0, 0, 0.0, 0.0))
                row[4][caller] = (a + sub.callcount - sub.reccallcount, b + sub.callcount, c + sub.inlinetime,
                                  d + sub.totaltime)
    return rows


_mark: dict[Key, Row] = {}


def _set_mark(signum: int, frame: FrameType | None) -> None:
    global _mark
    _mark = _snapshot()


def _dump(out: Path) -> None:
    rows = _snapshot()
    result: dict[Key, Row] = {}
    for func, (cc, nc, tt, ct, callers) in rows.items():
        m = _mark.get(func, (0, 0, 0.0, 0.0, {}))
        if nc - m[1] <= 0:
            continue
        diff_callers = {}
        for caller, (a, b, c, d) in callers.items():
            ma = m[4].get(caller, (0, 0, 0.0, 0.0))
            if b - ma[1] > 0:
                diff_callers[caller] = (a - ma[0], b - ma[1], c - ma[2], d - ma[3])
        result[func] = (cc - m[0], nc - m[1], tt - m[2], ct - m[3], diff_callers)
    out.write_bytes(marshal.dumps(result))  # the format pstats.Stats reads
    with _lock:
        out.with_name(out.name + ".threads").write_text("\n".join(name for name, _ in _profiles) + "\n")


def _dump_quietly(out: Path) -> None:
    try:
        _dump(out)
    except Exception as exc:  # a profile not written must not stop the hub being measured
        print(f"profile_serve: {out} not written: {exc}", file=sys.stderr)


def main(argv: list[str]) -> int:
    out = Path(argv[0])
    _patch_threads()
    main_profile = cProfile.Profile(time.thread_time)
    with _lock:
        _profiles.append(("main", main_profile))
    signal.signal(signal.SIGUSR1, _set_mark)
    signal.signal(signal.SIGUSR2, lambda signum, frame: _dump_quietly(out))
    from cli.main import main as cli_main

    main_profile.enable()
    try:
        return cli_main(argv[1:])
    finally:
        main_profile.disable()
        if not out.exists():  # SIGUSR2 wrote the phase measured: keep it
            _dump_quietly(out)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
