"""How FileDock's processes log: one `logging.config.dictConfig` for the supervisor, the
start-up check and every worker (uvicorn applies it as its `log_config` in each worker), in
readable text or one JSON object per line.

A record's structured fields travel in `extra={"fields": {...}}`: the text format appends them
as `name=value`, the JSON format adds them as keys. A record may also carry `text`: its whole
message as the text format shows it, fields included (the access line, which reads like nginx's
combined log), as anything whose `str` is that line, made only when shown; the JSON format
ignores it. Nothing here imports the rest of FileDock.
"""

import json
import logging
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
        text = getattr(record, "text", None)
        if text is not None and not record.exc_info:
            # What `Formatter.format` does for a record without a traceback, with `text` as the
            # message (`record.msg` stays as it is, for any other handler).
            record.message = str(text)
            record.asctime = self.formatTime(record, self.datefmt)
            return self.formatMessage(record)
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


def _iso_time(created: float) -> str:
    millis = int((created % 1) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{millis:03d}Z"


def _shown(value: Any) -> str:
    text = "-" if value is None else str(value)
    return json.dumps(text) if (" " in text or '"' in text or not text) else text
