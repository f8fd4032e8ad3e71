"""The SQL schema, the one source Alembic migrations are written from."""

from sqlalchemy import BigInteger, Boolean, Double, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only makes INTEGER PRIMARY KEY an auto-incrementing rowid; PostgreSQL gets BIGINT.
SequenceKey = BigInteger().with_variant(Integer(), "sqlite")
_UNHASHED = text("sha256 IS NULL")


class Base(DeclarativeBase):
    pass


class FileRow(Base):
    """A live file. `seq` is unique and monotonic: with `created_at` it orders lists totally."""

    __tablename__ = "files"

    seq: Mapped[int] = mapped_column(SequenceKey, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True)
    project: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(1024))
    purpose: Mapped[str] = mapped_column(String(64))
    bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    status_details: Mapped[str | None] = mapped_column(String(1024))
    mime_type: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str | None] = mapped_column(String(64))  # NULL until hashed, after the response
    blob_key: Mapped[str] = mapped_column(String(128))

    __table_args__ = (
        Index("ix_files_project_created_at_seq", "project", "created_at", "seq"),
        Index("ix_files_project_purpose_created_at_seq", "project", "purpose", "created_at", "seq"),
        Index("ix_files_expires_at", "expires_at"),
        Index("ix_files_blob_key", "blob_key"),  # gc asks "does any row name this blob?"
        # The rows still to hash, for the maintenance round's backlog: small, usually empty.
        Index("ix_files_unhashed", "seq", sqlite_where=_UNHASHED, postgresql_where=_UNHASHED),
    )


class FileTombstone(Base):
    """Where a deleted or expired file sat in list order, so `after=<that id>` still pages on."""

    __tablename__ = "file_tombstones"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)
    deleted_at: Mapped[int] = mapped_column(BigInteger, index=True)


class UploadRow(Base):
    """An OpenAI Upload. `status` adds `completing` (claimed by one complete call) to the wire's four.

    Finished rows are kept a while after `expires_at`, so retried calls get the same answer.
    """

    __tablename__ = "uploads"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(1024))
    purpose: Mapped[str] = mapped_column(String(64))
    bytes: Mapped[int] = mapped_column(BigInteger)
    mime_type: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
    status: Mapped[str] = mapped_column(String(16))
    file_expires_after: Mapped[int | None] = mapped_column(BigInteger)
    received_bytes: Mapped[int] = mapped_column(BigInteger)
    file_id: Mapped[str | None] = mapped_column(String(64))
    part_ids: Mapped[str | None] = mapped_column(Text)  # JSON list, once completed
    md5: Mapped[str | None] = mapped_column(String(32))


class UploadPartRow(Base):
    """A stored Part; its bytes are the blob `blob_key`. Rows live only while the Upload is open."""

    __tablename__ = "upload_parts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    upload_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("uploads.id", ondelete="CASCADE"), index=True
    )
    bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)
    blob_key: Mapped[str] = mapped_column(String(128), index=True)


class ProjectRow(Base):
    """A tenant: its usage (live files only) and its quota overrides (NULL: the configured default).

    Usage changes in the same transaction as the file rows it counts, by one conditional UPDATE,
    so parallel uploads can never overshoot the quota.
    """

    __tablename__ = "projects"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    bytes_used: Mapped[int] = mapped_column(BigInteger, default=0)
    files_used: Mapped[int] = mapped_column(BigInteger, default=0)
    max_bytes: Mapped[int | None] = mapped_column(BigInteger)
    max_files: Mapped[int | None] = mapped_column(BigInteger)


class ApiKeyRow(Base):
    """An API key, stored only as the SHA-256 of the key (keys are 256-bit random strings)."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # shown by `keys list` to tell keys apart
    project: Mapped[str] = mapped_column(String(64))
    admin: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[int] = mapped_column(BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)


class WebhookEndpointRow(Base):
    """Where a project wants events sent. `event_types` is a JSON list; the signing secret is kept
    in the clear, as HMAC needs it. `previous_secret` also signs until `previous_secret_expires_at`
    (a rotation that keeps the old secret for a while)."""

    __tablename__ = "webhook_endpoints"

    seq: Mapped[int] = mapped_column(SequenceKey, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True)
    project: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(256))
    url: Mapped[str] = mapped_column(String(2048))
    event_types: Mapped[str] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(String(128))
    previous_secret: Mapped[str | None] = mapped_column(String(128))
    previous_secret_expires_at: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class WebhookDeliveryRow(Base):
    """The outbox: one event for one endpoint, written in the transaction of the change it reports.

    `pending` rows are due at `next_attempt_at`. A deliverer claims one by setting `lease_owner`
    and pushing `next_attempt_at` past its attempt, in one conditional UPDATE, so replicas never
    send the same row at once; a crashed deliverer's lease simply runs out. `delivered` and
    `failed` (retries exhausted) are final, kept a while for the operator to read.
    """

    __tablename__ = "webhook_deliveries"

    seq: Mapped[int] = mapped_column(SequenceKey, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True)  # the `webhook-id` header
    endpoint_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True
    )
    project: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))  # pending, delivered or failed
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[float | None] = mapped_column(Double)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    last_attempt_at: Mapped[float | None] = mapped_column(Double)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(1024))
    delivered_at: Mapped[float | None] = mapped_column(Double)

    __table_args__ = (
        Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_created_at", "created_at"),
    )


class BatchRow(Base):
    """An OpenAI batch. `lease_owner` and `lease_expires_at` say which runner holds it: taken by
    a conditional UPDATE, renewed while it runs, free for another runner once lapsed."""

    __tablename__ = "batches"

    seq: Mapped[int] = mapped_column(SequenceKey, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True)
    project: Mapped[str] = mapped_column(String(64))
    input_file_id: Mapped[str] = mapped_column(String(64))
    endpoint: Mapped[str] = mapped_column(String(64))
    completion_window: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    metadata_json: Mapped[str | None] = mapped_column(Text)
    output_expires_after: Mapped[int | None] = mapped_column(BigInteger)
    model: Mapped[str | None] = mapped_column(String(256))
    in_progress_at: Mapped[int | None] = mapped_column(BigInteger)
    finalizing_at: Mapped[int | None] = mapped_column(BigInteger)
    completed_at: Mapped[int | None] = mapped_column(BigInteger)
    failed_at: Mapped[int | None] = mapped_column(BigInteger)
    expired_at: Mapped[int | None] = mapped_column(BigInteger)
    cancelling_at: Mapped[int | None] = mapped_column(BigInteger)
    cancelled_at: Mapped[int | None] = mapped_column(BigInteger)
    output_file_id: Mapped[str | None] = mapped_column(String(64))
    error_file_id: Mapped[str | None] = mapped_column(String(64))
    errors_json: Mapped[str | None] = mapped_column(Text)
    total: Mapped[int] = mapped_column(BigInteger)
    completed: Mapped[int] = mapped_column(BigInteger)
    failed: Mapped[int] = mapped_column(BigInteger)
    input_tokens: Mapped[int] = mapped_column(BigInteger)
    cached_tokens: Mapped[int] = mapped_column(BigInteger)
    output_tokens: Mapped[int] = mapped_column(BigInteger)
    reasoning_tokens: Mapped[int] = mapped_column(BigInteger)
    total_tokens: Mapped[int] = mapped_column(BigInteger)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (
        Index("ix_batches_project_created_at_seq", "project", "created_at", "seq"),
        Index("ix_batches_status", "status"),
    )


class BatchResultRow(Base):
    """One finished request of a running batch: its line of the output or error file. Kept until
    the batch's files are written; one row per input line, so no custom_id is ever written twice."""

    __tablename__ = "batch_results"

    batch_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("batches.id", ondelete="CASCADE"), primary_key=True
    )
    line: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    ok: Mapped[bool] = mapped_column(Boolean)
    text: Mapped[str] = mapped_column(Text)
