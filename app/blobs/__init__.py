"""Pick the blob backend from a URL, as obstore's `from_url` does."""

from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

from app.blobs.base import BlobNotFound, BlobStore, BlobStoreError, BlobWriter
from app.blobs.local import LocalBlobStore
from app.settings import Settings

__all__ = ["BlobNotFound", "BlobStore", "BlobStoreError", "BlobWriter", "open_blob_store"]


def open_blob_store(settings: Settings) -> BlobStore:
    url = urlparse(settings.blob_url)
    if url.scheme == "file":
        return LocalBlobStore(Path(url2pathname(url.path)), fsync=settings.fsync)
    raise ValueError(f"FILEDOCK_BLOB_URL={settings.blob_url!r} is not supported: use file:///absolute/path.")
