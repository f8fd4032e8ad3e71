"""The `BlobStore` protocol: bytes keyed by server-made ids, streamed in and out.

A write becomes visible under its key only on `commit` (local disk: a temporary file renamed
into place; S3: a PUT or multipart upload that completes); `abort` removes every trace of it.
Readers never see half a blob. `list_keys` lets `filedock gc` find blobs that no row names;
`sizes` and `list_blobs` let `filedock verify` check rows against blobs and blobs against rows.
"""

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol


class BlobNotFound(Exception):
    """No blob under this key."""


class BlobStoreError(Exception):
    """The store failed (disk full, permission, I/O error). Retrying may help."""


@dataclass(frozen=True)
class BlobInfo:
    """A committed blob as a listing shows it."""

    key: str
    size: int
    modified: float  # Unix time of its last write


class BlobWriter(Protocol):
    async def write(self, data: bytes) -> None: ...

    def sha256_hex(self) -> str | None:
        """The SHA-256 of everything written, when the writer hashes the bytes as they pass (once
        `commit` has returned); None when the store leaves it to `BlobStore.sha256`, after the
        response."""

    async def commit(self, key: str) -> None:
        """Make the written bytes visible under `key`, durably."""

    def abort(self) -> None:
        """Forget the written bytes. Synchronous, so it still runs in a cancelled task."""


class BlobStore(Protocol):
    async def writer(self, key: str) -> BlobWriter:
        """A write that `commit(key)` will make visible; S3 streams to the final key from the start."""

    async def open(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Bytes `start` up to `end` (exclusive) of a blob, in chunks.

        Raises `BlobNotFound` here, before the first chunk, so callers can still answer an error.
        """

    async def sha256(self, key: str) -> str:
        """The committed blob's SHA-256 as hex, read back. Raises `BlobNotFound`."""

    async def delete(self, key: str) -> None:
        """Remove the blob; a missing key is not an error."""

    async def check_writable(self) -> None:
        """Raise `BlobStoreError` unless a blob could be written now."""

    async def remove_stale_temporaries(self, idle_seconds: float) -> int:
        """Remove writes abandoned by crashed processes; returns how many were removed."""

    def list_keys(self, modified_before: float) -> AsyncIterator[str]:
        """Keys of committed blobs last written before `modified_before` (a Unix time), for gc."""

    async def sizes(self, keys: Sequence[str]) -> dict[str, int]:
        """The size of each of `keys` that names a committed blob; missing keys are left out."""

    def list_blobs(self) -> AsyncIterator[BlobInfo]:
        """Every committed blob, streamed (memory does not grow with the store), for verify."""

    async def aclose(self) -> None: ...
