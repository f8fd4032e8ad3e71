"""Gemini's face of a core file id: `files/<b36>`.

Gemini ids must be lowercase alphanumeric (the SDK's URI parser accepts only [a-z0-9]+), so
the 24-character base62 body of a core id is re-encoded as a fixed-width base36 number, which
maps back.
"""

import re
import string

from app.core.ids import ALPHABET, ID_BODY_LENGTH

_GEMINI_FILE_ID = re.compile(r"[a-z0-9]{28}")
_BASE36 = string.digits + string.ascii_lowercase
_GEMINI_ID_LENGTH = 28  # 62**24 < 36**28


def to_gemini_id(file_id: str) -> str:
    """The bare Gemini id (without `files/`) of a core id."""
    number = 0
    for char in file_id.removeprefix("file-"):
        number = number * 62 + ALPHABET.index(char)
    digits = []
    for _ in range(_GEMINI_ID_LENGTH):
        number, digit = divmod(number, 36)
        digits.append(_BASE36[digit])
    return "".join(reversed(digits))


def from_gemini_id(value: str) -> str | None:
    """The core id a bare Gemini id (or `files/<id>`) names, or None if it cannot name one."""
    value = value.removeprefix("files/")
    if _GEMINI_FILE_ID.fullmatch(value) is None:
        return None
    number = int(value, 36)
    if number >= 62**ID_BODY_LENGTH:
        return None
    chars = []
    for _ in range(ID_BODY_LENGTH):
        number, digit = divmod(number, 62)
        chars.append(ALPHABET[digit])
    return "file-" + "".join(reversed(chars))
