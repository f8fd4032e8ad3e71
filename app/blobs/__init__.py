"""Pick the blob backend from a URL, as obstore's `from_url` does."""

from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

from app.blobs.base import BlobInfo, BlobNotFound, BlobStore, BlobStoreError, BlobWriter
from app.blobs.local import LocalBlobStore
from app.settings import Settings

__all__ = ["BlobInfo", "BlobNotFound", "BlobStore", "BlobStoreError", "BlobWriter", "open_blob_store"]


def open_blob_store(settings: Settings) -> BlobStore:
    url = urlparse(settings.blob_url)
    if url.scheme == "file":
        return LocalBlobStore(Path(url2pathname(url.path)), fsync=settings.fsync)
    if url.scheme == "s3":
        if not url.netloc:
            raise ValueError(
                f"FILEDOCK_BLOB_URL={settings.blob_url!r} names no bucket: use s3://bucket/prefix."
            )
        from app.blobs.s3 import S3BlobStore  # obstore loads only where S3 is used

        return S3BlobStore(
            url.netloc,
            url.path,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            force_path_style=settings.s3_force_path_style,
            timeout_seconds=settings.storage_timeout_seconds,
        )
    raise ValueError(
        f"FILEDOCK_BLOB_URL={settings.blob_url!r} is not supported: use file:///absolute/path or s3://bucket/prefix."
    )
