"""Pick the blob backend from a URL, as obstore's `from_url` does."""

from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

from app.blobs.base import BlobInfo, BlobNotFound, BlobStore, BlobStoreError, BlobWriter
from app.blobs.local import LocalBlobStore
from app.settings import Settings

__all__ = [
    "BlobInfo",
    "BlobNotFound",
    "BlobStore",
    "BlobStoreError",
    "BlobWriter",
    "check_blob_store",
    "open_blob_store",
]


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


async def check_blob_store(settings: Settings) -> None:
    """Open the blob store and write a probe blob, as a server's start does (`serve`'s preflight).

    Raises `BlobStoreError` with one line that says what failed and which settings to look at.
    """
    try:
        store = open_blob_store(settings)
    except ValueError as exc:  # a URL it does not understand; the message names the setting
        raise BlobStoreError(str(exc)) from exc
    except OSError as exc:
        raise BlobStoreError(
            f"cannot open the blob store at {settings.blob_url} ({exc}); check FILEDOCK_BLOB_URL"
        ) from exc
    try:
        await store.check_writable()
    except (BlobStoreError, OSError) as exc:
        raise BlobStoreError(
            f"the blob store at {settings.blob_url} refused a test write ({_one_line(exc)}); "
            f"{_settings_to_check(settings)}"
        ) from exc
    finally:
        await store.aclose()


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _settings_to_check(settings: Settings) -> str:
    if urlparse(settings.blob_url).scheme != "s3":
        return "check FILEDOCK_BLOB_URL and that the directory is writable"
    from app.blobs.s3 import needs_path_style

    path_style = settings.s3_force_path_style
    if path_style is None:
        path_style = needs_path_style(settings.s3_endpoint_url)
    addressing = "path style" if path_style else "virtual-hosted style"
    endpoint = settings.s3_endpoint_url or "(empty: AWS)"
    return (
        f"check FILEDOCK_S3_ENDPOINT_URL={endpoint}, "
        f"FILEDOCK_S3_FORCE_PATH_STYLE (now {addressing}), FILEDOCK_S3_REGION and the credentials "
        "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)"
    )
