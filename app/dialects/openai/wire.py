"""OpenAI's JSON shapes, field for field as ../shared/spec/openai.md §3 gives them."""

from typing import Literal

import pydantic_core
from fastapi.responses import Response
from pydantic import BaseModel

from app.core.records import DeliveryRecord, FileRecord, PartRecord, UploadRecord, WebhookEndpointRecord
from app.core.webhooks import secret_hint


class FileObject(BaseModel):
    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    expires_at: int | None
    filename: str
    purpose: str
    status: str
    status_details: str | None

    @classmethod
    def from_record(cls, record: FileRecord) -> "FileObject":
        return cls.model_validate(file_json(record))


def file_json(record: FileRecord) -> dict[str, object]:
    """A FileObject as plain data: the hot list and retrieve paths skip building pydantic models."""
    return {
        "id": record.id,
        "object": "file",
        "bytes": record.bytes,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "filename": record.filename,
        "purpose": record.purpose,
        "status": record.status,
        "status_details": record.status_details,
    }


def json_response(payload: object) -> Response:
    """Serialise in Rust (pydantic-core) and skip FastAPI's response-model validation."""
    return Response(pydantic_core.to_json(payload), media_type="application/json")


class FileList(BaseModel):
    object: Literal["list"] = "list"
    data: list[FileObject]
    first_id: str | None
    last_id: str | None
    has_more: bool


class FileDeleted(BaseModel):
    id: str
    object: Literal["file"] = "file"
    deleted: bool


class UploadObject(BaseModel):
    id: str
    object: Literal["upload"] = "upload"
    bytes: int
    created_at: int
    expires_at: int
    filename: str
    purpose: str
    status: Literal["pending", "completed", "cancelled", "expired"]
    file: FileObject | None

    @classmethod
    def from_records(cls, upload: UploadRecord, file: FileRecord | None) -> "UploadObject":
        # `completing` is ours: to a client the Upload is pending until completion succeeds.
        status = "pending" if upload.status == "completing" else upload.status
        return cls(
            id=upload.id,
            bytes=upload.bytes,
            created_at=upload.created_at,
            expires_at=upload.expires_at,
            filename=upload.filename,
            purpose=upload.purpose,
            status=status,
            file=FileObject.from_record(file) if file else None,
        )


class PendingUploadObject(UploadObject):
    """FileDock's extension: an open Upload with what it has received so far."""

    received_bytes: int
    part_count: int

    @classmethod
    def from_pending(cls, upload: UploadRecord, part_count: int) -> "PendingUploadObject":
        shown = UploadObject.from_records(upload, None)
        return cls(**shown.model_dump(), received_bytes=upload.received_bytes, part_count=part_count)


class PendingUploadList(BaseModel):
    object: Literal["list"] = "list"
    data: list[PendingUploadObject]
    has_more: bool


class UploadPartObject(BaseModel):
    id: str
    object: Literal["upload.part"] = "upload.part"
    created_at: int
    upload_id: str

    @classmethod
    def from_record(cls, part: PartRecord) -> "UploadPartObject":
        return cls(id=part.id, created_at=part.created_at, upload_id=part.upload_id)


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorBody(BaseModel):
    error: ErrorDetail


def webhook_endpoint_json(record: WebhookEndpointRecord, *, with_secret: bool = False) -> dict[str, object]:
    """A WebhookEndpoint; the signing secret itself only on create and rotate_secret."""
    body: dict[str, object] = {
        "id": record.id,
        "object": "webhook_endpoint",
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "name": record.name,
        "url": record.url,
        "event_types": list(record.event_types),
        "signing_secret_hint": secret_hint(record.secret),
    }
    if with_secret:
        body["signing_secret"] = record.secret
    return body


def delivery_json(record: DeliveryRecord) -> dict[str, object]:
    """A FileDock extension: one delivery of an event to an endpoint, and how it went."""

    def seconds(value: float | None) -> int | None:
        return None if value is None else int(value)

    return {
        "id": record.id,
        "object": "webhook_endpoint.delivery",
        "webhook_endpoint_id": record.endpoint_id,
        "event_id": record.event_id,
        "event_type": record.event_type,
        "created_at": record.created_at,
        "status": record.status,
        "attempts": record.attempts,
        "next_attempt_at": seconds(record.next_attempt_at) if record.status == "pending" else None,
        "last_attempt_at": seconds(record.last_attempt_at),
        "last_status_code": record.last_status_code,
        "last_error": record.last_error,
        "delivered_at": seconds(record.delivered_at),
    }


class WebhookEndpointObject(BaseModel):
    id: str
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    created_at: int
    updated_at: int
    name: str
    url: str
    event_types: list[str]
    signing_secret_hint: str
    signing_secret: str | None = None  # only from create and rotate_secret


class WebhookEndpointList(BaseModel):
    object: Literal["list"] = "list"
    data: list[WebhookEndpointObject]
    first_id: str | None
    last_id: str | None
    has_more: bool


class WebhookEndpointDeleted(BaseModel):
    id: str
    object: Literal["webhook_endpoint.deleted"] = "webhook_endpoint.deleted"
    deleted: bool


class WebhookEndpointTestResult(BaseModel):
    object: Literal["webhook_endpoint.test"] = "webhook_endpoint.test"
    webhook_endpoint_id: str
    event_type: str
    status_code: int
    success: Literal[True] = True


class WebhookEventTypeList(BaseModel):
    object: Literal["list"] = "list"
    data: list[str]


class WebhookDeliveryObject(BaseModel):
    id: str
    object: Literal["webhook_endpoint.delivery"] = "webhook_endpoint.delivery"
    webhook_endpoint_id: str
    event_id: str
    event_type: str
    created_at: int
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    next_attempt_at: int | None
    last_attempt_at: int | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: int | None


class WebhookDeliveryList(BaseModel):
    object: Literal["list"] = "list"
    data: list[WebhookDeliveryObject]
