"""The access lines' own path to stderr: formatted as the logging formatters would, written in
batches of whole lines."""

import json
import logging
import os
import select
import threading

from app.http.access_log import Exchange, _text_line
from app.logs import TEXT_FORMAT, JsonFormatter, TextFormatter, json_line, write_lines


def record(message: str, fields: dict[str, object]) -> logging.LogRecord:
    made = logging.LogRecord("filedock.access", logging.INFO, "", 0, message, (), None)
    made.fields = fields
    return made


def test_json_line_is_what_the_json_formatter_writes() -> None:
    fields = {"status": 200, "project": None, "path": "/v1/files/é"}
    plain = record("GET /v1/files 200", fields)
    expected = json.loads(JsonFormatter().format(plain))
    line = json_line("filedock.access", "info", plain.created, "GET /v1/files 200", fields)
    assert json.loads(line) == expected


def test_an_access_line_is_what_the_text_formatter_would_write_for_its_message() -> None:
    exchange = Exchange("GET", "/v1/files/file-x", request_id="req_1", status=404, duration=0.0123)
    exchange.client, exchange.project, exchange.error = ("127.0.0.1", 5000), "team a", "FileNotFound"
    message = _text_line(exchange, 0.0).split(": ", 1)[1]
    assert message.startswith('127.0.0.1:5000 - "team a" "GET /v1/files/file-x" 404 0 bytes_in=0 ')
    plain = record(message, {})
    assert _text_line(exchange, plain.created) == TextFormatter(TEXT_FORMAT).format(plain)


def test_write_lines_keeps_every_line_whole_and_in_order() -> None:
    lines = [f"line {i} " + "x" * (i % 300) for i in range(2_000)]
    lines.insert(700, "long " + "y" * (3 * select.PIPE_BUF))  # longer than one atomic write
    read_end, write_end = os.pipe()
    received = bytearray()
    reader = threading.Thread(target=lambda: _read_all(read_end, received))
    reader.start()
    write_lines(lines, write_end)
    os.close(write_end)
    reader.join()
    assert received.decode().split("\n") == [*lines, ""]


def test_a_closed_stderr_drops_the_lines_without_raising() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    write_lines(["lost"], write_end)  # EPIPE (SIGPIPE is ignored by Python)
    os.close(write_end)


def _read_all(fd: int, into: bytearray) -> None:
    while chunk := os.read(fd, 65536):
        into += chunk
    os.close(fd)
