"""Anthropic's JSON shapes (../shared/spec/anthropic-gemini.md §1.2): FileMetadata, the list page, deleted."""

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel

from app.core.records import FileRecord
from app.dialects.anthropic.ids import to_anthropic_id


def rfc3339(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FileMetadata(BaseModel):
    id: str
    type: Literal["file"] = "file"
    filename: str
    mime_type: str
    size_bytes: int
    created_at: str
    downloadable: bool
    expires_at: str | None

    @classmethod
    def from_record(cls, record: FileRecord, *, downloadable: bool) -> "FileMetadata":
        return cls(
            id=to_anthropic_id(record.id),
            filename=record.filename,
            mime_type=record.mime_type,
            size_bytes=record.bytes,
            created_at=rfc3339(record.created_at),
            downloadable=downloadable,
            expires_at=rfc3339(record.expires_at) if record.expires_at is not None else None,
        )


class FilePage(BaseModel):
    """A superset every SDK era parses: era A reads the first four keys, eras B and C `next_page`."""

    data: list[FileMetadata]
    has_more: bool
    first_id: str | None
    last_id: str | None
    next_page: str | None


class FileDeleted(BaseModel):
    id: str
    type: Literal["file_deleted"] = "file_deleted"


class ErrorDetail(BaseModel):
    type: str
    message: str


class ErrorBody(BaseModel):
    type: Literal["error"] = "error"
    error: ErrorDetail
    request_id: str | None
