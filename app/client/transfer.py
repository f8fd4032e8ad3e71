"""Moving bytes: uploads (one request, or the Uploads API with Parts in parallel) and downloads
that resume where an interrupted one stopped.

A download streams into `<PATH>.part` and is renamed to PATH once its size, and its SHA-256
where the server's ETag carries one (FileDock's does), match; running it again after an
interruption asks only for the missing bytes (`Range`, with `If-Range` so a changed file is
sent whole).
"""

import concurrent.futures
import contextlib
import hashlib
import mimetypes
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

from app.client.api import ClientError, FileDockClient
from app.client.progress import FileSlice, Progress

MiB = 1024 * 1024
DEFAULT_PART_BYTES = 64 * MiB  # FileDock's (and OpenAI's) largest Part
DEFAULT_THRESHOLD_BYTES = 64 * MiB
DEFAULT_PARALLEL = 4
PART_ATTEMPTS = 3
DOWNLOAD_CHUNK_BYTES = 1024 * 1024
_SHA256_ETAG = re.compile(r'"([0-9a-f]{64})"')


@dataclass(frozen=True)
class UploadOptions:
    purpose: str = "user_data"
    threshold: int = DEFAULT_THRESHOLD_BYTES  # larger files go through the Uploads API
    part_bytes: int = DEFAULT_PART_BYTES
    parallel: int = DEFAULT_PARALLEL


def upload(client: FileDockClient, path: Path, options: UploadOptions) -> dict[str, Any]:
    """Send one file and return its File object."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ClientError(f"cannot read it: {exc.strerror}") from exc
    with Progress(size, path.name) as progress:
        if size > options.threshold:
            return _upload_in_parts(client, path, size, options, progress)
        with FileSlice(path, 0, size, progress) as body:
            return client.create_file(path.name, cast(IO[bytes], body), options.purpose)


def _upload_in_parts(
    client: FileDockClient, path: Path, size: int, options: UploadOptions, progress: Progress
) -> dict[str, Any]:
    mime_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    created = client.create_upload(path.name, size, options.purpose, mime_type)
    upload_id = str(created["id"])
    offsets = range(0, size, options.part_bytes) if size else range(1)
    try:
        with concurrent.futures.ThreadPoolExecutor(options.parallel, thread_name_prefix="part") as pool:
            sends = [
                pool.submit(
                    _send_part,
                    client,
                    upload_id,
                    path,
                    start,
                    min(options.part_bytes, size - start),
                    progress,
                )
                for start in offsets
            ]
            part_ids = [future.result() for future in sends]  # in file order, whatever order they finished
        done = client.complete_upload(upload_id, part_ids)
    except BaseException:
        _cancel_quietly(client, upload_id)  # free the Parts sent so far
        raise
    file = done.get("file")
    if not isinstance(file, dict) or file.get("bytes") != size:
        raise ClientError(f"Upload {upload_id} completed without a File of {size} bytes: retry the upload")
    return file


def _send_part(
    client: FileDockClient, upload_id: str, path: Path, start: int, length: int, progress: Progress
) -> str:
    for attempt in range(1, PART_ATTEMPTS + 1):
        with FileSlice(path, start, length, progress) as body:
            try:
                return str(client.add_part(upload_id, cast(IO[bytes], body))["id"])
            except ClientError:
                progress.advance(-body.sent)
                if attempt == PART_ATTEMPTS:
                    raise
    raise AssertionError("unreachable")


def _cancel_quietly(client: FileDockClient, upload_id: str) -> None:
    # If this fails too, the Upload expires by itself; `filedock files uploads` shows it meanwhile.
    with contextlib.suppress(ClientError):
        client.cancel_upload(upload_id)


def download(client: FileDockClient, file_id: str, target: Path | None) -> tuple[Path, int]:
    """Fetch a file's bytes to `target` (default: its filename here); the path and size."""
    meta = client.get_file(file_id)
    size = int(meta["bytes"])
    path = _target_path(target, str(meta.get("filename") or file_id))
    partial = path.with_name(path.name + ".part")
    etag = client.content_headers(file_id).get("etag")
    have = partial.stat().st_size if partial.exists() else 0
    if have > size:
        partial.unlink()  # longer than the file: not a piece of it
        have = 0
    sha256 = _hash_existing(partial, have)
    with Progress(size, path.name) as progress:
        progress.advance(have)
        if have < size or not partial.exists():
            have, sha256 = _fetch(client, file_id, partial, have, etag, sha256, progress)
    if etag is None:  # the server hashes a new file after its upload: ask again for the check
        etag = client.content_headers(file_id).get("etag")
    _check_complete(partial, have, size, etag, sha256)
    os.replace(partial, path)
    return path, size


def _fetch(
    client: FileDockClient,
    file_id: str,
    partial: Path,
    have: int,
    etag: str | None,
    sha256: "hashlib._Hash",
    progress: Progress,
) -> tuple[int, "hashlib._Hash"]:
    """Append the missing bytes to `partial`; how many bytes it holds then, and their hash."""
    headers = {"range": f"bytes={have}-", **({"if-range": etag} if etag else {})} if have else {}
    with client.stream_content(file_id, headers) as response, partial.open("r+b" if have else "wb") as out:
        if response.status_code != 206 and have:  # the server sent the whole file: start over
            out.truncate(0)
            progress.advance(-have)
            sha256, have = hashlib.sha256(), 0
        out.seek(have)
        for chunk in response.iter_bytes(DOWNLOAD_CHUNK_BYTES):
            out.write(chunk)
            sha256.update(chunk)
            have += len(chunk)
            progress.advance(len(chunk))
    return have, sha256


def _check_complete(partial: Path, have: int, size: int, etag: str | None, sha256: "hashlib._Hash") -> None:
    if have != size:
        raise ClientError(
            f"the download stopped at {have} of {size} bytes; run the same command again to resume"
        )
    expected = _SHA256_ETAG.fullmatch(etag or "")
    if expected and expected.group(1) != sha256.hexdigest():
        partial.unlink()
        raise ClientError(
            f"the downloaded bytes do not match the server's SHA-256 (removed {partial}); "
            "run the command again"
        )


def _hash_existing(partial: Path, length: int) -> "hashlib._Hash":
    sha256 = hashlib.sha256()
    if length:
        with partial.open("rb") as existing:
            while chunk := existing.read(min(DOWNLOAD_CHUNK_BYTES, length)):
                sha256.update(chunk)
                length -= len(chunk)
    return sha256


def _target_path(target: Path | None, filename: str) -> Path:
    """Where a download goes: `target`, or inside it if a directory, or the file's own name
    (only its last component: a server cannot make us write elsewhere)."""
    name = Path(filename).name or "download"
    if target is None:
        return Path(name)
    return target / name if target.is_dir() else target
