"""How FileDock's processes log: one `logging.config.dictConfig` for the supervisor, the
start-up check and every worker (uvicorn applies it as its `log_config` in each worker), in
readable text or one JSON object per line.

A record's structured fields travel in `extra={"fields": {...}}`: the text format appends them
as `name=value`, the JSON format adds them as keys. Nothing here imports the rest of FileDock.

The access lines, one per request, skip `logging` (a record, a lock, a formatter and a write
each cost about as much as the request they describe): they are formatted as these formatters
would (`text_time`, the text format's time; `json_line`), and `write_lines` writes them to
stderr in batches.
"""

import functools
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


def text_time(created: float) -> str:
    """A record's time as `TextFormatter` writes it (`logging.Formatter`'s `asctime`, local)."""
    second = int(created)
    return f"{_local_second(second)},{int((created - second) * 1000):03d}"


@functools.lru_cache(maxsize=2)  # the current second's text, made once per second, not per line
def _local_second(second: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))


def json_line(logger: str, level: str, created: float, message: str, fields: dict[str, Any]) -> str:
    """The line `JsonFormatter` writes for such a record with `fields` (`level` in lower case)."""
    entry = {"time": _iso_time(created), "level": level, "logger": logger, "message": message}
    entry.update(fields)
    return json.dumps(entry, default=str, ensure_ascii=False)


def write_lines(lines: list[str], fd: int | None = None) -> None:
    """Write `lines` to `fd` (stderr's) in as few writes as possible, each of whole lines and at
    most `PIPE_BUF` bytes (a longer line goes alone): the lines of several workers sharing one
    pipe never cut into each other. A failing write (stderr closed) drops its lines: there is
    nowhere left to report it."""
    fd = _stderr_fd() if fd is None else fd
    data = ("\n".join(lines) + "\n").encode()
    view = memoryview(data)
    start = 0
    while start < len(data):
        end = data.rfind(b"\n", start, start + select.PIPE_BUF) + 1  # after the last whole line
        if end <= start:  # a line longer than PIPE_BUF: alone
            end = data.index(b"\n", start) + 1
        _write_all(fd, view[start:end])
        start = end


def _write_all(fd: int, view: memoryview) -> None:
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


_utc_second = _SecondCache(lambda second: time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))


def _iso_time(created: float) -> str:
    second = int(created)
    return f"{_utc_second(second)}.{int((created - second) * 1000):03d}Z"


def _shown(value: Any) -> str:
    text = "-" if value is None else str(value)
    return json.dumps(text) if (" " in text or '"' in text or not text) else text
