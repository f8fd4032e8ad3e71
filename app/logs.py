"""How FileDock's processes log: one `logging.config.dictConfig` for the supervisor, the
start-up check and every worker (uvicorn applies it as its `log_config` in each worker), in
readable text or one JSON object per line.

A record's structured fields travel in `extra={"fields": {...}}`: the text format appends them
as `name=value`, the JSON format adds them as keys. Nothing here imports the rest of FileDock.

The access lines, one per request, skip `logging` (a record, a lock, a formatter and a write
each cost about as much as the request they describe): `log_line` formats them as these
formatters would, and `write_lines` writes them to stderr in batches.
"""

import json
import logging
import os
import select
import sys
import time
from typing import Any, Literal

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def logging_config(level: str, log_format: LogFormat) -> dict[str, Any]:
    """The dictConfig: `filedock.*` and `uvicorn.*` at `level`; every other library at warning
    or above; uvicorn's own access log off (`app.http.access_log` writes ours)."""
    formatter = "json" if log_format == "json" else "text"
    ours = {"level": level.upper(), "handlers": ["stderr"], "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "text": {"()": "app.logs.TextFormatter", "format": TEXT_FORMAT},
            "json": {"()": "app.logs.JsonFormatter"},
        },
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": formatter, "stream": "ext://sys.stderr"}
        },
        "loggers": {
            "filedock": ours,
            "uvicorn": ours,
            "uvicorn.error": {"level": level.upper(), "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": False},
        },
        "root": {"level": "WARNING", "handlers": ["stderr"]},
    }


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    return fields if isinstance(fields, dict) else {}


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message key=value …`, values with spaces quoted."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = " ".join(f"{name}={_shown(value)}" for name, value in fields_of(record).items())
        if not extra:
            return line
        head, newline, rest = line.partition("\n")  # a traceback stays below the first line
        return f"{head} {extra}{newline}{rest}"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, a traceback included as a string: never more than one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _iso_time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(fields_of(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def log_line(
    log_format: LogFormat,
    logger: str,
    level: int,
    message: str,
    fields: dict[str, Any],
    text: str,
    created: float,
) -> str:
    """The line a record of `logger` at `level` made at `created` would be formatted as: in
    JSON, with `message` and `fields`; in text, with `text` as the whole message (the access line
    reads like nginx's combined log, so it places its fields itself)."""
    level_name = logging.getLevelName(level)
    if log_format == "json":
        entry = {
            "time": _iso_time(created),
            "level": level_name.lower(),
            "logger": logger,
            "message": message,
        }
        entry.update(fields)
        return json.dumps(entry, default=str, ensure_ascii=False)
    return f"{_local_time(created)} {level_name} {logger}: {text}"


def write_lines(lines: list[str], fd: int | None = None) -> None:
    """Write `lines` to `fd` (stderr's) in as few writes as possible, each of whole lines and at
    most `PIPE_BUF` bytes (a longer line goes alone): the lines of several workers sharing one
    pipe never cut into each other. A failing write (stderr closed) drops its lines: there is
    nowhere left to report it."""
    fd = _stderr_fd() if fd is None else fd
    batch: list[bytes] = []
    size = 0
    for line in lines:
        data = line.encode() + b"\n"
        if batch and size + len(data) > select.PIPE_BUF:
            _write_all(fd, b"".join(batch))
            batch, size = [], 0
        batch.append(data)
        size += len(data)
    if batch:
        _write_all(fd, b"".join(batch))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view) :]
    except OSError:
        pass


def _stderr_fd() -> int:
    try:
        return sys.stderr.fileno()
    except (AttributeError, ValueError, OSError):  # replaced by something without a descriptor
        return 2


class _SecondCache:
    """The formatted time of the current second, made once per second, not once per line."""

    def __init__(self, make: Any) -> None:
        self.make = make
        self.second = -1
        self.text = ""

    def __call__(self, second: int) -> str:
        if second != self.second:
            self.second, self.text = second, self.make(second)
        return self.text


_local_second = _SecondCache(lambda second: time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second)))
_utc_second = _SecondCache(lambda second: time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))


def _local_time(created: float) -> str:
    """As `logging.Formatter.formatTime` writes it by default: `2026-06-01 12:00:00,123`."""
    second = int(created)
    return f"{_local_second(second)},{int((created - second) * 1000):03d}"


def _iso_time(created: float) -> str:
    second = int(created)
    return f"{_utc_second(second)}.{int((created - second) * 1000):03d}Z"


def _shown(value: Any) -> str:
    text = "-" if value is None else str(value)
    return json.dumps(text) if (" " in text or '"' in text or not text) else text
