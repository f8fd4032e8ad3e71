"""Download: a 256 MiB file over 1 and 8 concurrent streams, FileDock against nginx.

nginx serves the very blob file FileDock stored, so both read the same bytes from the same
disk (page cache warm for both). Each stream is a `curl` process writing to /dev/null.
"""

import sqlite3
from pathlib import Path

from bench.common import MB, Row, RssSampler, Server, filedock, median_of, nginx, rss_row, run_parallel
from bench.upload import timed_upload

RUNS = 3
TARGETS = {1: 0.6, 8: 0.8}  # the least FileDock/nginx ratio accepted, per stream count


def blob_path(server: Server, file_id: str) -> Path:
    """Where FileDock's local blob store keeps a file's bytes, read from its own database."""
    with sqlite3.connect(server.data_dir / "filedock.db") as db:
        (key,) = db.execute("SELECT blob_key FROM files WHERE id = ?", (file_id,)).fetchone()
    return server.data_dir / "blobs" / key[-2:] / key


def curl_command(url: str) -> list[str]:
    return ["curl", "-sS", "--fail", "-o", "/dev/null", "-w", "%{size_download}", url]


def fetch_rate(url: str, streams: int, size: int) -> float:
    """MB/s over `streams` concurrent downloads of `url`, from the first start to the last byte."""
    seconds, outputs = run_parallel([curl_command(url)] * streams)
    if any(int(out) != size for out in outputs):
        raise RuntimeError(f"{url}: short download {outputs}")
    return streams * size / MB / seconds


def run(source: Path) -> list[Row]:
    size = source.stat().st_size
    rows: list[Row] = []
    with filedock("download") as server:
        _, file_id = timed_upload("httpx", server.url, source)
        blob = blob_path(server, file_id)
        with nginx(blob.parents[1]) as reference:
            ours = f"{server.url}/v1/files/{file_id}/content"
            theirs = f"{reference.url}/{blob.parent.name}/{blob.name}"
            fetch_rate(ours, 1, size), fetch_rate(theirs, 1, size)  # warm the page cache and both servers
            for streams, min_ratio in TARGETS.items():
                with RssSampler(server.pid) as sampler:
                    rate = median_of(RUNS, lambda n=streams: fetch_rate(ours, n, size))
                reference_rate = median_of(RUNS, lambda n=streams: fetch_rate(theirs, n, size))
                label = f"{streams} stream{'s' if streams > 1 else ''}"
                rows.append(Row(f"download 256 MiB, {label}", rate, "MB/s", reference_rate, min_ratio))
                rows.append(rss_row(f"download, {label}", sampler))
    return rows
