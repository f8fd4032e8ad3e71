"""Every FileDock setting, read from `FILEDOCK_*` environment variables or given explicitly.

`Settings()` reads the environment; tests and the CLI pass values as keyword arguments, which
take precedence. Nothing here runs at import time.
"""

import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MiB = 1024 * 1024
# What `purpose=assistants` takes at upload time: the union of two documented lists.
# File search, "Supported files" (platform.openai.com/docs/assistants/tools/file-search):
FILE_SEARCH_EXTENSIONS = (
    *(".c", ".cs", ".cpp", ".doc", ".docx", ".go", ".html", ".java", ".json", ".md", ".pdf"),
    *(".php", ".pptx", ".py", ".rb", ".tex", ".txt", ".css", ".js", ".sh", ".ts"),
)
# Code Interpreter, "Supported files" (platform.openai.com/docs/assistants/tools/code-interpreter),
# beyond the list above; `.webp` is among the image formats the API takes for images.
CODE_INTERPRETER_EXTENSIONS = (
    *(".csv", ".jpeg", ".jpg", ".gif", ".pkl", ".png", ".tar", ".xlsx", ".xml", ".zip", ".webp"),
)
DEFAULT_ASSISTANTS_EXTENSIONS = FILE_SEARCH_EXTENSIONS + CODE_INTERPRETER_EXTENSIONS


class OpenMode(StrEnum):
    AUTO = "auto"  # open only when no API key is configured at start-up
    ON = "on"  # unknown keys (or none) act in the default project
    OFF = "off"  # every request needs a configured key


class DownloadPolicy(StrEnum):
    PERMISSIVE = "permissive"  # every file can be downloaded (a self-hosted store's default)
    VENDOR = "vendor"  # refuse downloads exactly where the real API refuses them


class ServerSettings(BaseSettings):
    """Where and how the server runs."""

    host: str = Field("127.0.0.1", description="Address to bind.")
    port: int = Field(8000, ge=0, le=65535, description="Port to bind.")
    data_dir: Path = Field(Path("data"), description="Directory holding the SQLite database and blobs.")
    workers: int = Field(
        default_factory=lambda: min(len(os.sched_getaffinity(0)), 64),
        ge=1,
        le=64,
        description="Server worker processes. Default: the CPUs this process may use (at most 64).",
    )
    log_level: Literal["debug", "info", "warning", "error", "critical"] = Field(
        "info", description="Log level: debug, info, warning, error or critical."
    )
    public_url: str = Field(
        "",
        description="Base URL clients reach this server at, for Gemini upload URLs. Default: from Host.",
    )
    log_format: Literal["text", "json"] = Field(
        "text", description="Log lines as readable `text` or one JSON object each (`json`)."
    )
    access_log: bool = Field(
        True, description="One `filedock.access` line per request, at info. false: none, whatever the level."
    )
    metrics: bool = Field(
        True, description="Count requests and serve them at `GET /metrics`. false: no counting, no /metrics."
    )
    shutdown_grace_seconds: int = Field(
        30,
        ge=0,
        description="On SIGTERM, how long requests in flight may finish before they are ended (503).",
    )


class StorageSettings(BaseSettings):
    """Where metadata and bytes live, and how they are kept tidy."""

    database_url: str = Field(
        "", description="SQLAlchemy async URL. Default: SQLite at <data_dir>/filedock.db."
    )
    blob_url: str = Field("", description="Where bytes live. Default: file://<data_dir>/blobs.")
    fsync: bool = Field(True, description="fsync each blob before it becomes visible.")
    s3_endpoint_url: str = Field(
        "", description="S3 endpoint for an S3-compatible server (MinIO, SeaweedFS). Empty: AWS S3."
    )
    s3_region: str = Field(
        "", description="S3 region. Empty: AWS_REGION / AWS_DEFAULT_REGION, else us-east-1."
    )
    s3_force_path_style: bool | None = Field(
        None,
        description="Address buckets as <endpoint>/<bucket>. Unset: only when the endpoint's host is "
        "an IP address or localhost, where <bucket>.<host> cannot work.",
    )
    storage_timeout_seconds: float = Field(
        30.0, gt=0, description="Longest wait for one database or S3 request before answering 503."
    )
    sweep_interval_seconds: float = Field(
        60.0, gt=0, description="How often expired files and stale temporary files are removed."
    )
    stale_temp_seconds: int = Field(
        3600, ge=1, description="A temporary upload file idle this long is debris and is removed."
    )
    tombstone_retention_seconds: int = Field(
        7 * 86400, ge=0, description="How long a deleted id still works as a list cursor (`after`)."
    )
    gc_grace_seconds: int = Field(
        3600, ge=0, description="A blob no row names is removed by gc once it is this old."
    )


class AuthSettings(BaseSettings):
    """Who may call, and how much each project may hold and send."""

    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated `key=project` pairs (a bare `key` is in project `default`).",
    )
    open_mode: OpenMode = Field(
        OpenMode.AUTO,
        description="`auto` (open only when no key is configured at start-up), `on` or `off`.",
    )
    allow_public_open_mode: bool = Field(
        False, description="Allow open mode on a non-loopback address (otherwise `serve` refuses)."
    )
    project_max_bytes: int = Field(
        2_500_000_000_000, ge=0, description="Storage quota per project: bytes of live files."
    )
    project_max_files: int = Field(1_000_000, ge=0, description="File-count quota per project.")
    rate_limit_per_minute: int = Field(
        0, ge=0, description="Requests per minute per API key, per server process; 0: no limit."
    )


class LimitsSettings(BaseSettings):
    """Hostile input: limits on a request's shape and pace, each answered with a clear 4xx."""

    max_header_bytes: int = Field(
        64 * 1024, ge=1024, description="Largest request line plus headers; larger is refused with 431."
    )
    header_timeout_seconds: float = Field(
        10.0, gt=0, description="A request's headers must arrive within this long of its first byte (408)."
    )
    body_idle_timeout_seconds: float = Field(
        60.0, gt=0, description="A request body that sends no byte for this long is refused with 408."
    )
    max_filename_bytes: int = Field(
        1024, ge=1, le=1024, description="Longest filename (or Gemini displayName) in UTF-8 bytes."
    )
    max_form_parts: int = Field(32, ge=1, description="Most parts (fields and files) in one multipart form.")


class OpenAISettings(BaseSettings):
    """The OpenAI dialect: files by purpose, downloads, and the Uploads API."""

    max_file_bytes: int = Field(512 * MiB, ge=0, description="Largest file accepted by POST /files.")
    max_batch_file_bytes: int = Field(200 * MiB, ge=0, description="Largest file for purpose=batch.")
    max_batch_line_bytes: int = Field(
        16 * MiB, ge=1024, description="Longest single JSONL line checked in a batch file."
    )
    assistants_extensions: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_ASSISTANTS_EXTENSIONS),
        description="Comma-separated extensions (any case) accepted for purpose=assistants; empty: any.",
    )
    download_policy: DownloadPolicy = Field(
        DownloadPolicy.PERMISSIVE, description="`permissive` or `vendor` (refuse as the real API does)."
    )
    max_upload_bytes: int = Field(
        8 * 1024 * MiB, ge=0, description="Largest file an Upload (POST /uploads) may declare."
    )
    max_upload_part_bytes: int = Field(
        64 * MiB, ge=1, description="Largest Part of an Upload; the SDK sends exactly 64 MiB parts."
    )
    upload_lifetime_seconds: int = Field(
        3600, ge=1, description="A pending Upload expires this long after creation, freeing its parts."
    )
    upload_retention_seconds: int = Field(
        86400,
        ge=0,
        description="How long a finished Upload is remembered after it expires (for retried calls).",
    )


class AnthropicSettings(BaseSettings):
    """The Anthropic dialect."""

    anthropic_max_file_bytes: int = Field(500 * MiB, ge=0, description="Largest file for the Anthropic API.")
    anthropic_default_list_limit: int = Field(20, ge=1, description="Anthropic list page size by default.")
    anthropic_max_list_limit: int = Field(1000, ge=1, description="Largest Anthropic list `limit`.")
    anthropic_min_expires_in_seconds: int = Field(
        3600, ge=1, description="Smallest Anthropic `expires_in_seconds`."
    )
    anthropic_max_expires_in_seconds: int = Field(
        7_776_000, ge=1, description="Largest Anthropic `expires_in_seconds` (90 days)."
    )


class GeminiSettings(BaseSettings):
    """The Gemini dialect."""

    gemini_max_file_bytes: int = Field(2048 * MiB, ge=0, description="Largest file for the Gemini API.")
    gemini_default_page_size: int = Field(10, ge=1, description="Gemini list page size by default.")
    gemini_max_page_size: int = Field(100, ge=1, description="Largest Gemini `pageSize` (larger is clamped).")
    gemini_file_lifetime_seconds: int = Field(
        172_800, ge=0, description="Gemini uploads expire this long after creation (48 h); 0: never."
    )


class WebhookSettings(BaseSettings):
    """Webhooks: how events are delivered, retried, and which addresses may receive them."""

    webhook_allow_private: bool = Field(
        False,
        description="Allow webhook URLs on private, loopback and link-local addresses (local development).",
    )
    webhook_retry_hours: float = Field(
        24.0, gt=0, description="How long a delivery is retried before it is given up as failed."
    )
    webhook_backoff_seconds: float = Field(
        5.0, gt=0, description="Wait before the first retry of a delivery; it doubles after each failure."
    )
    webhook_max_backoff_seconds: float = Field(
        3600.0, gt=0, description="Longest wait between two attempts of one delivery."
    )
    webhook_timeout_seconds: float = Field(
        10.0, gt=0, description="Longest wait for a webhook receiver to answer one attempt."
    )
    webhook_poll_interval_seconds: float = Field(
        1.0, gt=0, description="How often each server process looks for deliveries that are due."
    )


class Settings(
    ServerSettings,
    StorageSettings,
    AuthSettings,
    LimitsSettings,
    OpenAISettings,
    AnthropicSettings,
    GeminiSettings,
    WebhookSettings,
):
    """Every setting, grouped by concern in the classes above; one `FILEDOCK_*` variable each."""

    model_config = SettingsConfigDict(env_prefix="FILEDOCK_", extra="ignore")

    # Batch API: requests run against an OpenAI-compatible upstream (docs/batches.md).
    batch_upstream_url: str = Field(
        "", description="Base URL (ending in /v1) batches send their requests to. Empty: batches are off."
    )
    batch_upstream_api_key: str = Field("", description="Bearer key sent to the batch upstream.")
    batch_concurrency: int = Field(
        16, ge=1, le=1024, description="Batch requests in flight to the upstream, per server process."
    )
    batch_max_attempts: int = Field(
        5, ge=1, le=100, description="Tries per batch request on 429, 5xx or a dropped connection."
    )
    batch_retry_base_seconds: float = Field(
        1.0, ge=0, description="First retry delay without Retry-After; doubles on each retry."
    )
    batch_retry_max_seconds: float = Field(
        60.0, ge=0, description="Longest wait before a retry, Retry-After included."
    )
    batch_request_timeout_seconds: float = Field(
        600.0, gt=0, description="Longest wait for one upstream answer before it counts as dropped."
    )
    batch_completion_window_seconds: int = Field(
        86400, ge=1, description="A batch still unfinished this long after creation expires."
    )
    batch_lease_seconds: int = Field(
        60, ge=2, description="A runner's hold on a batch; another process takes it over once lapsed."
    )
    batch_poll_interval_seconds: float = Field(
        1.0, gt=0, description="How often each process looks for batches to run."
    )

    @field_validator("api_keys", "assistants_extensions", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("s3_force_path_style", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lower_case_level(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("assistants_extensions")
    @classmethod
    def _normalise_extensions(cls, value: list[str]) -> list[str]:
        return [ext.lower() if ext.startswith(".") else f".{ext.lower()}" for ext in value]

    @field_validator("batch_upstream_url")
    @classmethod
    def _strip_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _use_async_driver(cls, value: str) -> str:
        for plain, async_scheme in (
            ("sqlite://", "sqlite+aiosqlite://"),
            ("postgresql://", "postgresql+asyncpg://"),
            ("postgres://", "postgresql+asyncpg://"),
        ):
            if value.startswith(plain):
                return value.replace(plain, async_scheme, 1)
        return value

    @model_validator(mode="after")
    def _default_locations(self) -> "Settings":
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir.absolute() / 'filedock.db'}"
        if not self.blob_url:
            self.blob_url = (self.data_dir.absolute() / "blobs").as_uri()
        return self
