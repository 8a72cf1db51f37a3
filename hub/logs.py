"""How a running hub logs: every line has a UTC timestamp, a level and the logger's name, as plain text or JSON.

Plain (the default) reads well in `journalctl -u coophub`:

    2026-12-02T14:05:09.123Z INFO coophub.serve: hub hub_… (Alpha Care) serving http://127.0.0.1:8470

JSON (``log_format = "json"`` in config.toml, or ``coophub serve --log-format json``) is one object per line for
a log shipper: ``{"ts", "level", "logger", "msg"}`` plus ``error_id`` and ``exc`` when there is one. The access
log (``access_log = true`` / ``--access-log``) is off by default — a small box should not write a line per page
view — and goes to the logger ``coophub.access`` in the same format.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import TextIO

__all__ = ["ACCESS_LOG_FORMAT", "LOG_FORMATS", "LOG_LEVELS", "JsonFormatter", "PlainFormatter", "configure"]

LOG_FORMATS = ("plain", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")
#: aiohttp's access-log format: client address, request line, status, bytes sent, seconds taken.
ACCESS_LOG_FORMAT = '%a "%r" %s %b %Tf'


def _timestamp(record: logging.LogRecord) -> str:
    moment = dt.datetime.fromtimestamp(record.created, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(record.msecs):03d}Z"


class PlainFormatter(logging.Formatter):
    """``<UTC time> <LEVEL> <logger>: <message>``; a traceback, when there is one, on the lines after."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_timestamp(record)} {record.levelname} {record.name}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, and error_id / exc when present."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {"ts": _timestamp(record), "level": record.levelname.lower(),
                                   "logger": record.name, "msg": record.getMessage()}
        error_id = getattr(record, "error_id", None)
        if error_id is not None:
            data["error_id"] = error_id
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


def configure(level: str = "info", fmt: str = "plain", stream: TextIO | None = None) -> None:
    """Send every ``coophub`` log line to ``stream`` (stderr: the journal under systemd) in ``fmt``.

    Raises:
        ValueError: an unknown level or format.
    """
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format {fmt!r} is not one of {', '.join(LOG_FORMATS)}")
    if level not in LOG_LEVELS:
        raise ValueError(f"log level {level!r} is not one of {', '.join(LOG_LEVELS)}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else PlainFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
