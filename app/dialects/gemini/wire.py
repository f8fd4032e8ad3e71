"""Gemini's File resource (../shared/spec/anthropic-gemini.md §2.3), in camelCase, `sizeBytes` a string."""

import base64
from datetime import UTC, datetime
from typing import Any

from app.core.records import FileRecord
from app.dialects.gemini.ids import to_gemini_id


def rfc3339(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def file_resource(record: FileRecord, *, base: str, version: str, downloadable: bool) -> dict[str, Any]:
    """The File as JSON. `base` is the public URL the client reached us at (prefix included)."""
    gemini_id = to_gemini_id(record.id)
    resource: dict[str, Any] = {
        "name": f"files/{gemini_id}",
        "displayName": record.filename,
        "mimeType": record.mime_type,
        "sizeBytes": str(record.bytes),
        "createTime": rfc3339(record.created_at),
        "updateTime": rfc3339(record.created_at),
    }
    if record.expires_at is not None:
        resource["expirationTime"] = rfc3339(record.expires_at)
    if record.sha256:
        resource["sha256Hash"] = base64.b64encode(record.sha256.encode()).decode()
    resource["uri"] = f"{base}/{version}/files/{gemini_id}"
    if downloadable:
        resource["downloadUri"] = f"{base}/{version}/files/{gemini_id}:download?alt=media"
    resource["state"] = "ACTIVE"
    resource["source"] = "UPLOADED"
    return resource
