"""Anthropic's face of a core file id: `file_<body>` for the core's `file-<body>`."""

import re

_ANTHROPIC_FILE_ID = re.compile(r"file_([A-Za-z0-9]{24})")


def to_anthropic_id(file_id: str) -> str:
    return "file_" + file_id.removeprefix("file-")


def from_anthropic_id(value: str) -> str | None:
    """The core id an Anthropic `file_…` id names, or None if it cannot name one of our files."""
    match = _ANTHROPIC_FILE_ID.fullmatch(value)
    return "file-" + match[1] if match else None
