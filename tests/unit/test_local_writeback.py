"""The local writer starts each block's disk write as it goes (`start_writeback`): whole pages, in
order, each once, only when the store fsyncs; and the blob is the bytes written either way."""

import itertools
import os
import sys
from pathlib import Path

import pytest

from app.blobs import local
from app.blobs.local import PAGE_BYTES, LocalBlobStore


def test_linux_has_sync_file_range() -> None:
    # Without it the hint silently does nothing: this keeps the upload's speed from going missing.
    assert sys.platform != "linux" or local._sync_file_range is not None


def test_start_writeback_on_a_real_file_returns_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "f"
    data = os.urandom(3 * PAGE_BYTES + 17)
    path.write_bytes(data)
    fd = os.open(path, os.O_RDWR)
    try:
        local.start_writeback(fd, 0, 3 * PAGE_BYTES)
        local.start_writeback(fd, 5, 5)  # empty: nothing asked
    finally:
        os.close(fd)
    assert path.read_bytes() == data


@pytest.mark.parametrize("fsync", [True, False])
async def test_writer_starts_writeback_of_whole_pages_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fsync: bool
) -> None:
    ranges: list[tuple[int, int]] = []
    real = local.start_writeback

    def recording(fd: int, start: int, end: int) -> None:
        ranges.append((start, end))
        real(fd, start, end)

    monkeypatch.setattr(local, "start_writeback", recording)
    store = LocalBlobStore(tmp_path / "blobs", fsync=fsync)
    data = os.urandom(3 * 1024 * 1024 + 12345)
    writer = await store.writer("writebackblob")
    for start in range(0, len(data), 300_001):  # pieces that end mid-page
        await writer.write(data[start : start + 300_001])
    await writer.commit("writebackblob")
    assert store.path_for("writebackblob").read_bytes() == data
    if not fsync:
        assert ranges == []
        return
    assert len(ranges) >= 3 and ranges[0][0] == 0
    for (_, end), (start, _) in itertools.pairwise(ranges):
        assert start == end  # contiguous: no page twice, none skipped
    assert all(start % PAGE_BYTES == 0 and end % PAGE_BYTES == 0 for start, end in ranges)
    assert ranges[-1][1] == len(data) // PAGE_BYTES * PAGE_BYTES  # the last partial page is the fsync's
