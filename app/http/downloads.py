"""Sending a file's bytes, the same for every dialect: HEAD, one byte range (206/416), a strong
`ETag` with `If-None-Match` (304) and `If-Range`, and the blob itself.

The `ETag` is the file's SHA-256, so it appears once the hash is known (right after the upload's
response, see `FileService.hash_after_response`); until then a download carries no validator.
A validator, once sent, never changes, since files never change: a client holding one can
always use it. Without one, `If-Range` never matches and the whole file is sent.

`BlobResponse` sends a local blob through the standard ASGI zero-copy send extension
(`http.response.zerocopysend`) when the server offers it in `scope["extensions"]`: the bytes
then go from the page cache to the socket without passing through Python. On any other ASGI
server, or for a blob that is not a local file, it streams the chunks.
"""

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from app.core.errors import RangeNotSatisfiable
from app.core.files import FileService
from app.core.records import FileRecord
from app.http.headers import (
    MalformedRange,
    UnsatisfiableRange,
    content_disposition,
    if_none_match_hits,
    if_range_allows,
    parse_range,
    quoted_etag,
)

ZERO_COPY_SEND = "http.response.zerocopysend"


async def download_response(request: Request, record: FileRecord, files: FileService) -> Response:
    """The file's bytes (or the part a Range asks for) as the answer to GET or HEAD."""
    headers = _download_headers(record)
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None and if_none_match_hits(if_none_match, headers.get("etag")):
        return Response(status_code=304, headers=headers)
    byte_range = _requested_range(request, record)
    start, end = byte_range or (0, record.bytes)
    if byte_range is not None:
        headers["content-range"] = f"bytes {start}-{end - 1}/{record.bytes}"
    headers["content-length"] = str(end - start)
    status = 200 if byte_range is None else 206
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=record.mime_type)
    # Fails here, before the headers go out.
    chunks = await files.open_blob(record.blob_key, start, end, owner=f"file {record.id}")
    return BlobResponse(chunks, status_code=status, media_type=record.mime_type, headers=headers)


def _download_headers(record: FileRecord) -> dict[str, str]:
    headers = {
        "content-disposition": content_disposition(record.filename),
        "x-content-type-options": "nosniff",
        "accept-ranges": "bytes",
    }
    if etag := quoted_etag(record.sha256):
        headers["etag"] = etag
    return headers


def _requested_range(request: Request, record: FileRecord) -> tuple[int, int] | None:
    """The byte range to send, or None for the whole file."""
    value = request.headers.get("range")
    if value is None:
        return None
    if_range = request.headers.get("if-range")
    if if_range is not None and not if_range_allows(if_range, quoted_etag(record.sha256)):
        return None  # the client's copy is stale: it needs the whole new file
    try:
        start, end = parse_range(value, record.bytes)
    except MalformedRange:
        return None
    except UnsatisfiableRange as exc:
        raise RangeNotSatisfiable(exc.size) from None
    return (start, end) if end > start else None  # only an empty file: nothing to slice


class _FileDescriptor:
    """The `file` of a zero-copy send: the extension asks only for `fileno()`."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def fileno(self) -> int:
        return self._fd


class BlobResponse(StreamingResponse):
    """Streams a blob's chunks; sends it zero-copy instead when both the server (the extension
    above) and the blob (a `sendfile_range()` method, the local store's readers) allow it.
    A blob with a `close()` method is closed when the response ends, however it ends.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sendfile_range = getattr(self.body_iterator, "sendfile_range", None)
        try:
            if sendfile_range is None or ZERO_COPY_SEND not in scope.get("extensions", {}):
                return await super().__call__(scope, receive, send)
            fd, offset, count = sendfile_range()
            start = {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
            await send(start)
            file = _FileDescriptor(fd)
            await send(
                {"type": ZERO_COPY_SEND, "file": file, "offset": offset, "count": count, "more_body": False}
            )
        finally:
            close = getattr(self.body_iterator, "close", None)
            if close is not None:
                close()
        if self.background is not None:
            await self.background()
