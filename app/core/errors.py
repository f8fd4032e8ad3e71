"""Domain errors, free of any dialect: they carry data (ids, limits), and each dialect renders
them in its own error JSON and words.

FileDockError
├── Unauthenticated          no or wrong API key
├── NotFound                 an id that does not exist (or is hidden, expired, deleted)
│   ├── FileNotFound
│   ├── UploadNotFound
│   └── WebhookEndpointNotFound
│   └── BatchNotFound
├── InvalidRequest           a client mistake in a parameter or the body
│   ├── FileTooLarge         the file crossed its size limit while streaming in
│   ├── QuotaExceeded        the project's storage or file-count quota is used up
│   └── DownloadRefused      vendor download policy refuses this purpose
├── UnsupportedMediaType     the body is not of the expected content type
├── RequestTooLarge          the declared Content-Length is over every limit
├── RequestTimeout           the body stalled; transient, so a 408 the SDKs may retry
├── RangeNotSatisfiable      a Range that starts past the end of the file
├── RouteNotFound            no such route or method
├── RateLimited              the API key sent too many requests; retry after a while
├── BlobMissing              a row names bytes the blob store no longer has; permanent
└── ServiceUnavailable       a 503: retrying (here or on another replica) may help
    ├── StorageUnavailable   the database or blob store failed
    │   └── UploadBusy       another request is completing this Upload; the retry sees the result
    └── ShuttingDown         the server's shutdown grace ran out before this request finished

What a store tells the core, never shown to a client as such:
OverQuota                    recording a file would take its project over a quota
CursorNotFound               a list cursor names an id never issued to this project
ClaimLost                    an Upload left `completing` before its File could be recorded
TargetRefused                a webhook URL names (or resolves to) an address FileDock may not call
LeaseLost                    another runner took over a batch this one held
"""

from app.core.records import ProjectUsage


class FileDockError(Exception):
    """Base of every error a client can see."""

    # Seconds after which a retry may succeed; None for a permanent failure. Each dialect turns
    # it into its retry headers.
    retry_after_seconds: float | None = None
    # Refused before the request body was read: the connection cannot be reused, so the answer
    # closes it (`connection: close`).
    body_unread: bool = False

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


class Unauthenticated(FileDockError):
    pass


class NotFound(FileDockError):
    pass


class FileNotFound(NotFound):
    """`file_id` as the client named it: each dialect words the message in its own id form."""

    def __init__(self, file_id: str) -> None:
        super().__init__(f"No such file: {file_id}", param="id")
        self.file_id = file_id


class UploadNotFound(NotFound):
    def __init__(self, upload_id: str) -> None:
        super().__init__(f"No such Upload object: {upload_id}", param="upload_id")
        self.upload_id = upload_id


class WebhookEndpointNotFound(NotFound):
    def __init__(self, endpoint_id: str) -> None:
        super().__init__(f"No such webhook endpoint: {endpoint_id}", param="webhook_endpoint_id")
        self.endpoint_id = endpoint_id


class BatchNotFound(NotFound):
    def __init__(self, batch_id: str) -> None:
        super().__init__(f"No such Batch object: {batch_id}", param="batch_id")
        self.batch_id = batch_id


class InvalidRequest(FileDockError):
    pass


class FileTooLarge(InvalidRequest):
    def __init__(self, message: str) -> None:
        super().__init__(message, param="file", code="file_too_large")


class QuotaExceeded(InvalidRequest):
    """Permanent until files are deleted, so never a status the SDKs retry (spec §5.3)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="storage_limit_exceeded")


class DownloadRefused(InvalidRequest):
    """The download policy keeps this file's bytes from clients; `file_id` as the client named it."""

    def __init__(self, file_id: str, purpose: str) -> None:
        super().__init__(f"File {file_id} is not downloadable.")
        self.file_id = file_id
        self.purpose = purpose


class UnsupportedMediaType(FileDockError):
    pass


class RequestTooLarge(FileDockError):
    body_unread = True


class RequestTimeout(FileDockError):
    """The request body sent no byte for `body_idle_timeout_seconds`. Not a permanent failure:
    408 is the one status that says so, and the SDKs' retry of it is what the client wants."""

    body_unread = True

    def __init__(self, idle_seconds: float) -> None:
        super().__init__(
            f"Request timeout: the request body sent no data for {idle_seconds} seconds.", code="timeout"
        )


class RangeNotSatisfiable(FileDockError):
    def __init__(self, size: int) -> None:
        super().__init__(f"Requested range not satisfiable: the file has {size} bytes.")
        self.size = size


class RouteNotFound(FileDockError):
    pass


class RateLimited(FileDockError):
    def __init__(self, message: str, retry_after_seconds: float) -> None:
        super().__init__(message, code="rate_limit_exceeded")
        self.retry_after_seconds = retry_after_seconds


class BlobMissing(FileDockError):
    """A file's row names a blob the store no longer has (deleted behind FileDock's back, a
    restore without the blobs). Not transient: every retry would fail the same way, so each
    dialect answers a server error that the SDKs do not retry, and an operator must restore the
    blob or delete the file."""

    def __init__(self) -> None:
        super().__init__(
            "The file's bytes are missing from the blob store, so it cannot be read; retrying will "
            "not help. Ask the FileDock operator to restore the blob or delete the file."
        )


class ServiceUnavailable(FileDockError):
    """Not this request's fault, and a retry may succeed."""

    retry_after_seconds = 1


class StorageUnavailable(ServiceUnavailable):
    """The metadata or blob store failed. Clients may retry."""


class ShuttingDown(ServiceUnavailable):
    """The server stopped this request when its shutdown grace ran out; nothing of it was kept.
    Another replica (or this one, restarted) can take the retry. The connection is closing."""

    body_unread = True  # whatever the client still sends is not read

    def __init__(self) -> None:
        super().__init__(
            "The server is shutting down and ended this request before it finished. Please retry."
        )


class UploadBusy(StorageUnavailable):
    """Another request is completing this Upload. A 503 the SDK retries (never a 409, see
    spec §5.3), and the retry gets the completed Upload or the reason it failed."""


class OverQuota(Exception):
    """Recording a file would take its project over a quota; nothing was recorded."""

    def __init__(self, usage: ProjectUsage, adding_bytes: int) -> None:
        super().__init__(usage.name)
        self.usage = usage
        self.adding_bytes = adding_bytes


class CursorNotFound(Exception):
    """`after` names an id never issued to this project (or whose tombstone has been purged)."""


class ClaimLost(Exception):
    """The Upload left `completing` (the sweeper expired it) before the File could be recorded."""


class TargetRefused(Exception):
    """A webhook URL is not one FileDock may call: `reason` says why, in words for the operator."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LeaseLost(Exception):
    """A batch's lease passed to another runner (this one stalled past its expiry)."""
