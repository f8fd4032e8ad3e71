"""What `filedock files …` prints for people: tables of files and Uploads, one file's details."""

import datetime
from collections.abc import Sequence
from typing import Any

from app.core.units import human_size

NAME_WIDTH = 40


def when(timestamp: object) -> str:
    """A Unix time as local `YYYY-MM-DD HH:MM`, or `-` for none (a file that never expires)."""
    if not isinstance(timestamp, int):
        return "-"
    return datetime.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell; the last column is not padded."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = []
    for row in (header, *rows):
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]))
    return "\n".join(lines)


def _short(name: str) -> str:
    return name if len(name) <= NAME_WIDTH else name[: NAME_WIDTH - 1] + "…"


def files_table(files: Sequence[dict[str, Any]]) -> str:
    header = ("ID", "NAME", "SIZE", "PURPOSE", "CREATED", "EXPIRES")
    rows = [
        (
            str(f["id"]),
            _short(str(f.get("filename", ""))),
            human_size(int(f.get("bytes", 0))),
            str(f.get("purpose", "")),
            when(f.get("created_at")),
            when(f.get("expires_at")),
        )
        for f in files
    ]
    return table(header, rows)


def file_details(file: dict[str, Any]) -> str:
    size = int(file.get("bytes", 0))
    fields = [
        ("id", str(file.get("id"))),
        ("filename", str(file.get("filename"))),
        ("bytes", f"{size} ({human_size(size)})"),
        ("purpose", str(file.get("purpose"))),
        ("status", str(file.get("status"))),
        ("created", when(file.get("created_at"))),
        ("expires", when(file.get("expires_at"))),
    ]
    return "\n".join(f"{name + ':':10} {value}" for name, value in fields)


def uploads_table(uploads: Sequence[dict[str, Any]]) -> str:
    header = ("ID", "NAME", "RECEIVED", "OF", "PARTS", "CREATED", "EXPIRES")
    rows = [
        (
            str(u["id"]),
            _short(str(u.get("filename", ""))),
            human_size(int(u.get("received_bytes", 0))),
            human_size(int(u.get("bytes", 0))),
            str(u.get("part_count", "")),
            when(u.get("created_at")),
            when(u.get("expires_at")),
        )
        for u in uploads
    ]
    return table(header, rows)
