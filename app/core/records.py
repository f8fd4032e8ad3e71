"""The records the core works with: plain values the stores hand out and take in.

No SQL and no wire shapes here: `app.metadata` fills these from rows, each dialect turns them
into its own JSON.
"""

import json
from dataclasses import dataclass
from typing import Literal

Order = Literal["asc", "desc"]
DEFAULT_PROJECT = "default"


# Not frozen: a frozen dataclass takes eight times as long to build (2.5 µs against 0.3 µs),
# and every list page builds a hundred. Treat records as values all the same.
@dataclass(slots=True)
class FileRecord:
    id: str
    filename: str
    purpose: str
    bytes: int
    created_at: int
    expires_at: int | None
    status: str
    status_details: str | None
    mime_type: str
    sha256: str | None  # None until hashed, which happens after the upload's response
    blob_key: str
    project: str = DEFAULT_PROJECT
    seq: int = 0


@dataclass(frozen=True)
class Quota:
    """A project's limits: bytes and number of live files."""

    max_bytes: int = 2_500_000_000_000
    max_files: int = 1_000_000


@dataclass(frozen=True)
class ProjectUsage:
    name: str
    bytes: int
    files: int
    max_bytes: int  # the effective limits: the project's own, else the default
    max_files: int

    def has_room_for(self, size: int) -> bool:
        """One more file of `size` bytes stays within both limits."""
        return self.bytes + size <= self.max_bytes and self.files + 1 <= self.max_files


@dataclass(frozen=True)
class UploadRecord:
    """A file sent in Parts (OpenAI Uploads) or in chunks (Gemini resumable sessions)."""

    id: str
    filename: str
    purpose: str
    bytes: int
    mime_type: str
    created_at: int
    expires_at: int
    status: str  # pending, completing, completed, cancelled or expired
    file_expires_after: int | None
    received_bytes: int = 0
    file_id: str | None = None
    part_ids: tuple[str, ...] | None = None
    md5: str | None = None
    project: str = DEFAULT_PROJECT


@dataclass(frozen=True)
class PartRecord:
    id: str
    upload_id: str
    bytes: int
    created_at: int
    blob_key: str


@dataclass(frozen=True)
class KeyRecord:
    """An API key as stored: its SHA-256, never the key itself."""

    id: str
    key_hash: str
    prefix: str
    project: str
    admin: bool
    created_at: int
    revoked_at: int | None = None


@dataclass(frozen=True)
class Event:
    """Something that happened in a project, told to its webhook endpoints that asked for `type`."""

    id: str
    project: str
    type: str
    created_at: int
    data: dict[str, str]

    def body(self) -> str:
        """The JSON each endpoint receives (the shape of OpenAI's webhook events)."""
        envelope = {
            "id": self.id,
            "object": "event",
            "type": self.type,
            "created_at": self.created_at,
            "data": self.data,
        }
        return json.dumps(envelope, separators=(",", ":"))


@dataclass(frozen=True)
class WebhookEndpointRecord:
    id: str
    project: str
    name: str
    url: str
    event_types: tuple[str, ...]
    secret: str
    previous_secret: str | None
    previous_secret_expires_at: int | None
    created_at: int
    updated_at: int

    def signing_secrets(self, now: float) -> list[str]:
        """The secrets each delivery is signed with: the current one, and a rotated-out one
        for as long as it was kept."""
        expires = self.previous_secret_expires_at
        if self.previous_secret and expires is not None and now < expires:
            return [self.secret, self.previous_secret]
        return [self.secret]


@dataclass(frozen=True)
class DeliveryRecord:
    """One event for one endpoint, and how its delivery has gone so far."""

    id: str
    endpoint_id: str
    event_id: str
    event_type: str
    created_at: int
    status: str  # pending, delivered or failed
    attempts: int
    next_attempt_at: float | None
    last_attempt_at: float | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: float | None


@dataclass(frozen=True)
class DueDelivery:
    """A delivery claimed for one attempt, with what sending it needs."""

    seq: int
    id: str
    event_type: str
    body: str
    created_at: int
    attempts: int
    endpoint: WebhookEndpointRecord


@dataclass(frozen=True)
class TokenUsage:
    """Tokens the upstream reported, summed over a batch's answers."""

    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    total_tokens: int = 0

    def __add__(self, other: "TokenUsage") -> "TokenUsage":
        return TokenUsage(
            self.input_tokens + other.input_tokens,
            self.cached_tokens + other.cached_tokens,
            self.output_tokens + other.output_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
            self.total_tokens + other.total_tokens,
        )


@dataclass(frozen=True)
class BatchLineError:
    """Why a batch's input was refused: `line` is 1-based, None for the file as a whole."""

    code: str
    message: str
    line: int | None = None
    param: str | None = None


# validating -> in_progress -> finalizing -> completed; failed (bad input), expired (past the
# completion window), cancelling -> cancelled. The first four of ACTIVE_BATCH are a runner's work.
ACTIVE_BATCH = ("validating", "in_progress", "finalizing", "cancelling")
FINAL_BATCH = ("completed", "failed", "expired", "cancelled")


@dataclass(frozen=True)
class BatchRecord:
    id: str
    project: str
    input_file_id: str
    endpoint: str
    completion_window: str
    status: str
    created_at: int
    expires_at: int
    metadata: dict[str, str] | None = None
    output_expires_after: int | None = None  # seconds, for the output and error files
    model: str | None = None
    in_progress_at: int | None = None
    finalizing_at: int | None = None
    completed_at: int | None = None
    failed_at: int | None = None
    expired_at: int | None = None
    cancelling_at: int | None = None
    cancelled_at: int | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    errors: tuple[BatchLineError, ...] = ()
    total: int = 0
    completed: int = 0
    failed: int = 0
    usage: TokenUsage = TokenUsage()
    seq: int = 0


@dataclass(frozen=True)
class LineResult:
    """One request's outcome: `text` is its line of the output (`ok`) or the error file."""

    line: int
    ok: bool
    text: str
    usage: TokenUsage = TokenUsage()
