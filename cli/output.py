"""What the CLI prints: JSON for tools (``--json``), rich tables for people, and one-line errors on stderr.

Colour and styling only when the stream is a terminal, so that piped output stays plain text.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table

__all__ = ["CliError", "console", "emit", "emit_json", "error_line", "kv", "short", "table"]

#: Width used when stdout is not a terminal: wide enough that a 64-hex id and a name stay on one line.
PIPE_WIDTH = 200


class CliError(Exception):
    """A command that cannot do what was asked. ``code`` is the exit status: 2 bad input, 1 refused/failed."""

    def __init__(self, what: str, fix: str = "", *, code: int = 1) -> None:
        super().__init__(what)
        self.what = what
        self.fix = fix
        self.code = code

    def line(self) -> str:
        what = " ".join(self.what.split())
        return f"{what} — {self.fix}" if self.fix else what


def error_line(message: str, stream: TextIO | None = None) -> None:
    """Print ``coophub: error: <message>`` as one line on stderr."""
    stream = stream or sys.stderr
    stream.write("coophub: error: " + " ".join(message.split()) + "\n")
    stream.flush()


def console(stream: TextIO | None = None) -> Console:
    stream = stream or sys.stdout
    tty = stream.isatty()
    return Console(
        file=stream,
        no_color=not tty,
        highlight=False,
        soft_wrap=not tty,
        width=None if tty else PIPE_WIDTH,
        emoji=False,
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=_json_default) + "\n")


def emit(text: str) -> None:
    sys.stdout.write(text + "\n")


def short(value: Any, width: int = 60) -> str:
    text = " ".join(str(value if value is not None else "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None) -> None:
    """Print a table; plain text (no colour, no box characters) when stdout is not a terminal."""
    out = console()
    grid = Table(
        *columns,
        title=title,
        show_edge=out.is_terminal,
        box=None if not out.is_terminal else _box(),
        header_style="bold" if out.is_terminal else "",
        pad_edge=False,
    )
    for row in rows:
        grid.add_row(*(str(cell) if cell is not None else "" for cell in row))
    out.print(grid)


def _box() -> Any:
    from rich import box

    return box.SIMPLE


def kv(pairs: Iterable[tuple[str, Any]]) -> None:
    """Print ``key: value`` lines, keys aligned."""
    items = [(k, v) for k, v in pairs if v not in (None, "", [])]
    width = max((len(k) for k, _ in items), default=0)
    for key, value in items:
        if isinstance(value, (list, tuple)):
            value = ", ".join(str(v) for v in value)
        emit(f"{key + ':':<{width + 1}} {value}")
