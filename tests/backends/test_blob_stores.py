"""The `BlobStore` contract, on local disk and on S3 (SeaweedFS): one behaviour per test, both backends."""

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from app.blobs import BlobNotFound, BlobStore
from app.blobs.local import LocalBlobStore
from app.blobs.s3 import PART_BYTES, S3BlobStore
from tests import scaleout

BIG = os.urandom(PART_BYTES * 2 + 12345)  # a multipart upload on S3


@pytest.fixture(params=["local", "s3"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[BlobStore]:
    if request.param == "local":
        blobs: BlobStore = LocalBlobStore(tmp_path / "blobs", fsync=False)
    else:
        services: scaleout.ScaleOutBackend = request.getfixturevalue("services")
        for name, value in scaleout.S3_CREDENTIALS.items():
            monkeypatch.setenv(name, value)
        blobs = S3BlobStore(
            services.s3.bucket, f"contract-{tmp_path.name}", endpoint_url=services.s3.endpoint,
            region="us-east-1", force_path_style=True, timeout_seconds=10,
        )  # fmt: skip
    yield blobs
    await blobs.aclose()


async def put(store: BlobStore, key: str, data: bytes, chunk: int = 1 << 20) -> None:
    writer = await store.writer(key)
    for start in range(0, len(data), chunk):
        await writer.write(data[start : start + chunk])
    await writer.commit(key)


async def read(store: BlobStore, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in await store.open(key, start, end)])


async def keys(store: BlobStore) -> list[str]:
    return sorted([key async for key in store.list_keys(time.time() + 60)])


async def test_blob_round_trips_small(store: BlobStore) -> None:
    await put(store, "smallblob", b"hello")
    assert await read(store, "smallblob") == b"hello"


async def test_blob_round_trips_large_with_its_sha256(store: BlobStore) -> None:
    import hashlib

    await put(store, "bigblob", BIG)
    assert await store.sha256("bigblob") == hashlib.sha256(BIG).hexdigest()
    assert await read(store, "bigblob") == BIG


async def test_blob_sha256_of_a_missing_blob_is_not_found(store: BlobStore) -> None:
    with pytest.raises(BlobNotFound):
        await store.sha256("nosuchblob")


async def test_blob_range_has_an_exclusive_end(store: BlobStore) -> None:
    await put(store, "rangeblob", BIG)
    assert await read(store, "rangeblob", 5, 10) == BIG[5:10]
    assert (
        await read(store, "rangeblob", PART_BYTES - 3, PART_BYTES + 3) == BIG[PART_BYTES - 3 : PART_BYTES + 3]
    )
    assert await read(store, "rangeblob", len(BIG) - 7) == BIG[-7:]
    # large enough to go over plain HTTP on S3 (app/blobs/s3_reads.py), not through obstore
    assert await read(store, "rangeblob", 3, len(BIG) - 5) == BIG[3:-5]


async def test_empty_blob_reads_empty(store: BlobStore) -> None:
    await put(store, "emptyblob", b"")
    assert await read(store, "emptyblob") == b""
    assert await read(store, "emptyblob", 0, 0) == b""


async def test_missing_blob_raises_before_the_first_chunk(store: BlobStore) -> None:
    with pytest.raises(BlobNotFound):
        await store.open("missingblob")


async def test_delete_is_idempotent(store: BlobStore) -> None:
    await put(store, "doomedblob", b"x")
    await store.delete("doomedblob")
    await store.delete("doomedblob")
    with pytest.raises(BlobNotFound):
        await store.open("doomedblob")


async def test_aborted_write_leaves_nothing_visible(store: BlobStore) -> None:
    writer = await store.writer("abortedblob")
    await writer.write(BIG)
    writer.abort()
    assert await keys(store) == []
    with pytest.raises(BlobNotFound):
        await store.open("abortedblob")


async def test_uncommitted_write_is_invisible(store: BlobStore) -> None:
    writer = await store.writer("pendingblob")
    await writer.write(b"half")
    assert await keys(store) == []
    writer.abort()


async def test_list_keys_names_committed_blobs_older_than_the_cutoff(store: BlobStore) -> None:
    await put(store, "listedblob", b"x")
    assert await keys(store) == ["listedblob"]
    assert [key async for key in store.list_keys(time.time() - 3600)] == []


async def test_sizes_names_only_present_blobs(store: BlobStore) -> None:
    await put(store, "sizedblob", b"12345")
    assert await store.sizes(["sizedblob", "absentblob", "../escape"]) == {"sizedblob": 5}


async def test_list_blobs_gives_key_size_and_time(store: BlobStore) -> None:
    await put(store, "infoblob", b"abc")
    [info] = [info async for info in store.list_blobs()]
    assert (info.key, info.size) == ("infoblob", 3)
    assert abs(info.modified - time.time()) < 60


async def test_check_writable_leaves_no_blob(store: BlobStore) -> None:
    await store.check_writable()
    assert await keys(store) == []


async def test_s3_aborted_multipart_write_leaves_no_unfinished_upload(
    services: scaleout.ScaleOutBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in scaleout.S3_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    prefix = f"abort-{tmp_path.name}"
    store = S3BlobStore(
        services.s3.bucket,
        prefix,
        endpoint_url=services.s3.endpoint,
        region="us-east-1",
        force_path_style=True,
    )
    writer = await store.writer("abandoned")
    await writer.write(BIG)
    assert await eventually(lambda: services.s3.unfinished_uploads(prefix + "/") == [prefix + "/abandoned"])
    writer.abort()
    assert await eventually(lambda: services.s3.unfinished_uploads(prefix + "/") == [])


async def eventually(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True
