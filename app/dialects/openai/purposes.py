"""What each OpenAI purpose accepts: extensions, size limits, default expiry, content checks.

`file_policy` and `upload_policy` state them as the `FilePolicy` the core applies.
"""

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath

from app.core.errors import InvalidRequest
from app.core.policy import ContentCheck, FilePolicy
from app.http.bodies import NotJson, client_json
from app.settings import Settings

CREATABLE_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
# Produced by the real service only; valid as list filters, never on create.
SERVER_PURPOSES = ("assistants_output", "batch_output", "fine-tune-results")
IMAGE_EXTENSIONS = (".gif", ".jpeg", ".jpg", ".png", ".webp")
JSONL_PURPOSES = ("batch", "fine-tune", "evals")
BATCH_DEFAULT_EXPIRY_SECONDS = 30 * 86400
# Purposes whose content the real API refuses to return (vendor download policy).
UNDOWNLOADABLE_PURPOSES = ("assistants", "user_data")


def check_purpose(purpose: str | None) -> str:
    if not purpose:
        raise InvalidRequest(
            "Missing required parameter: 'purpose'.", param="purpose", code="missing_required_parameter"
        )
    if purpose not in CREATABLE_PURPOSES:
        allowed = ", ".join(f"'{p}'" for p in CREATABLE_PURPOSES)
        raise InvalidRequest(f"'{purpose}' is not one of [{allowed}] - 'purpose'", param="purpose")
    return purpose


def check_extension(purpose: str, filename: str, settings: Settings) -> None:
    """Refuse a filename whose extension the purpose does not accept (the real API's rule).

    A JSONL purpose also takes a name with no extension at all: the SDKs name a file sent as
    bare bytes `upload`. Its content must then pass the JSONL check (`file_policy`)."""
    extension = PurePosixPath(filename).suffix.lower()
    if purpose in JSONL_PURPOSES and extension not in (".jsonl", ""):
        raise InvalidRequest(f"Invalid file format for {_jsonl_api(purpose)}. Must be .jsonl")
    allowed = {
        "vision": IMAGE_EXTENSIONS,
        "assistants": tuple(settings.assistants_extensions),
    }.get(purpose)
    if allowed and extension not in allowed:
        raise InvalidRequest(
            f"Files with extensions [{extension or 'none'}] are not supported for purpose '{purpose}'. "
            f"Supported: {' '.join(allowed)}."
        )


def size_limit(purpose: str | None, settings: Settings) -> int:
    """The most bytes a file of this purpose may have; the global maximum when purpose is unknown."""
    if purpose == "batch":
        return min(settings.max_batch_file_bytes, settings.max_file_bytes)
    return settings.max_file_bytes


def default_expiry_seconds(purpose: str) -> int | None:
    return BATCH_DEFAULT_EXPIRY_SECONDS if purpose == "batch" else None


def file_policy(purpose: str | None, settings: Settings, filename: str) -> FilePolicy:
    """The policy of a file sent to `POST /files`; `None` while the purpose is not known yet."""
    if purpose is None:
        return FilePolicy(None, settings.max_file_bytes)
    return FilePolicy(
        purpose,
        size_limit(purpose, settings),
        content_check=_content_check(purpose, filename, settings),
        default_expiry_seconds=default_expiry_seconds(purpose),
    )


def batch_output_policy(settings: Settings, expires_after: int | None) -> FilePolicy:
    """The policy of a batch's output and error files: as large as an Upload may be; expiring
    when the batch's `output_expires_after` says, else never."""
    return FilePolicy("batch_output", settings.max_upload_bytes, default_expiry_seconds=expires_after)


def upload_policy(purpose: str, settings: Settings, filename: str) -> FilePolicy:
    """The policy of a file assembled by the Uploads API: larger files, the purpose's other rules
    (the Batch API's own size limit holds however the file arrives)."""
    limit = settings.max_upload_bytes
    if purpose == "batch":
        limit = min(limit, size_limit(purpose, settings))
    policy = file_policy(purpose, settings, filename)
    return FilePolicy(purpose, limit, policy.content_check, policy.default_expiry_seconds)


def _content_check(purpose: str, filename: str, settings: Settings) -> Callable[[], ContentCheck] | None:
    """Batch files are always checked; other JSONL purposes when no extension says what they are."""
    unnamed_jsonl = purpose in JSONL_PURPOSES and not PurePosixPath(filename).suffix
    if purpose == "batch" or unnamed_jsonl:
        return functools.partial(JsonlChecker, settings.max_batch_line_bytes, _jsonl_api(purpose))
    return None


def _jsonl_api(purpose: str) -> str:
    return "Batch API" if purpose == "batch" else "Fine-Tuning API"


@dataclass
class JsonlChecker:
    """Checks a batch file on the way in: UTF-8, one JSON object per non-empty line.

    Fed chunk by chunk; holds at most one line (bounded by `max_line_bytes`) in memory.
    """

    max_line_bytes: int
    api: str = "Batch API"  # whose rules these are, for the messages
    _partial: bytearray | None = None
    _line_number: int = 0

    def feed(self, chunk: bytes) -> None:
        if self._partial is None:
            self._partial = bytearray()
        self._partial += chunk
        start = 0
        while (end := self._partial.find(b"\n", start)) != -1:
            self._check_line(bytes(self._partial[start:end]))
            start = end + 1
        del self._partial[:start]
        if len(self._partial) > self.max_line_bytes:
            raise self._too_long(self._line_number + 1)

    def finish(self) -> None:
        if self._partial:
            self._check_line(bytes(self._partial))
        self._partial = None

    def _check_line(self, line: bytes) -> None:
        self._line_number += 1
        if len(line) > self.max_line_bytes:  # also when the whole line arrived in one chunk
            raise self._too_long(self._line_number)
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidRequest(f"Invalid file for {self.api}. Must be utf-8 encoded") from None
        if not text.strip():
            return
        try:
            parsed = client_json(text)
        except NotJson as exc:
            raise InvalidRequest(
                f"Invalid file for {self.api}: line {self._line_number} is not valid JSON: {exc}."
            ) from None
        if not isinstance(parsed, dict):
            raise InvalidRequest(
                f"Invalid file for {self.api}: line {self._line_number} is not a JSON object."
            )

    def _too_long(self, line_number: int) -> InvalidRequest:
        return InvalidRequest(
            f"Invalid file for {self.api}: line {line_number} is longer than {self.max_line_bytes} bytes."
        )


MIN_EXPIRES_AFTER_SECONDS = 3600
MAX_EXPIRES_AFTER_SECONDS = 30 * 86400


def check_expires_after(anchor: str | None, seconds: object) -> int:
    """Validate `expires_after` and return its seconds."""
    if anchor != "created_at":
        raise InvalidRequest(
            f"Invalid value: '{anchor}'. Supported values are: 'created_at'.",
            param="expires_after.anchor",
            code="invalid_value",
        )
    if isinstance(seconds, str) and re.fullmatch(r"-?[0-9]{1,12}", seconds):
        value = int(seconds)  # form fields arrive as text; ASCII digits only
    elif isinstance(seconds, int) and not isinstance(seconds, bool):
        value = seconds
    else:
        raise _bad_seconds(seconds)
    if value < MIN_EXPIRES_AFTER_SECONDS:
        raise InvalidRequest(
            "Invalid 'expires_after.seconds': integer below minimum value. "
            f"Expected a value >= {MIN_EXPIRES_AFTER_SECONDS}, but got {value} instead.",
            param="expires_after.seconds",
            code="integer_below_min_value",
        )
    if value > MAX_EXPIRES_AFTER_SECONDS:
        raise InvalidRequest(
            "Invalid 'expires_after.seconds': integer above maximum value. "
            f"Expected a value <= {MAX_EXPIRES_AFTER_SECONDS}, but got {value} instead.",
            param="expires_after.seconds",
            code="integer_above_max_value",
        )
    return value


def _bad_seconds(seconds: object) -> InvalidRequest:
    return InvalidRequest(
        f"Invalid type for 'expires_after.seconds': expected an integer, but got {seconds!r} instead.",
        param="expires_after.seconds",
        code="invalid_type",
    )
