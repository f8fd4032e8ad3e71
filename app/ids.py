"""Server-made identifiers. Ids from clients are validated here before they reach SQL or a path."""

import re
import secrets
import string

_ALPHABET = string.ascii_letters + string.digits
_ID_BODY_LENGTH = 24
_OPENAI_FILE_ID = re.compile(r"file-[A-Za-z0-9]{1,64}")
_UPLOAD_ID = re.compile(r"upload_[A-Za-z0-9]{1,64}")
_PART_ID = re.compile(r"part_[A-Za-z0-9]{1,64}")


def _random_body() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(_ID_BODY_LENGTH))


def new_file_id() -> str:
    """`file-` and 24 random base62 characters (~143 bits), as the OpenAI dialect shows them."""
    return "file-" + "".join(secrets.choice(_ALPHABET) for _ in range(_ID_BODY_LENGTH))


def is_valid_file_id(value: str) -> bool:
    """True when `value` could be an id we issued; anything else cannot name a file."""
    return _OPENAI_FILE_ID.fullmatch(value) is not None


def new_blob_key() -> str:
    """A fresh blob key: 24 random base62 characters, shared by file and part blobs."""
    return _random_body()


def new_upload_id() -> str:
    """`upload_` and 24 random base62 characters."""
    return "upload_" + _random_body()


def new_part_id() -> str:
    """`part_` and 24 random base62 characters."""
    return "part_" + _random_body()


def is_valid_upload_id(value: str) -> bool:
    return _UPLOAD_ID.fullmatch(value) is not None


def is_valid_part_id(value: str) -> bool:
    return _PART_ID.fullmatch(value) is not None


# One core id, three faces: OpenAI `file-<body>`, Anthropic `file_<body>`, Gemini `files/<b36>`.
# Gemini ids must be lowercase alphanumeric (the SDK's URI parser accepts only [a-z0-9]+), so
# the 24-character base62 body is re-encoded as a fixed-width base36 number, which maps back.
_ANTHROPIC_FILE_ID = re.compile(r"file_([A-Za-z0-9]{24})")
_GEMINI_FILE_ID = re.compile(r"[a-z0-9]{28}")
_BASE36 = string.digits + string.ascii_lowercase
_GEMINI_ID_LENGTH = 28  # 62**24 < 36**28


def to_anthropic_id(file_id: str) -> str:
    return "file_" + file_id.removeprefix("file-")


def from_anthropic_id(value: str) -> str | None:
    """The core id an Anthropic `file_…` id names, or None if it cannot name one of our files."""
    match = _ANTHROPIC_FILE_ID.fullmatch(value)
    return "file-" + match[1] if match else None


def to_gemini_id(file_id: str) -> str:
    """The bare Gemini id (without `files/`) of a core id."""
    number = 0
    for char in file_id.removeprefix("file-"):
        number = number * 62 + _ALPHABET.index(char)
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
    if number >= 62**_ID_BODY_LENGTH:
        return None
    chars = []
    for _ in range(_ID_BODY_LENGTH):
        number, digit = divmod(number, 62)
        chars.append(_ALPHABET[digit])
    return "file-" + "".join(reversed(chars))
