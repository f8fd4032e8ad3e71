"""Memory: the server's peak RSS while it moves one 2 GiB file and 8 files of 256 MiB at once.

The per-file limit is raised for this run. The 2 GiB body is the 256 MiB source sent 8 times
over, so no 2 GiB source file is written; the clients are separate processes.
"""

import json
from pathlib import Path

from bench.common import MB, MiB, Row, RssSampler, filedock, rss_row, run_parallel
from bench.download import curl_command, fetch_rate
from bench.upload import client_command, timed_upload

GiB = 1024 * MiB
LARGE_REPEAT = 8  # 8 times 256 MiB is 2 GiB
CONCURRENT = 8


def run(source: Path) -> list[Row]:
    size = source.stat().st_size
    rows: list[Row] = []
    with filedock("memory", max_file_bytes=str(3 * GiB)) as server:
        with RssSampler(server.pid) as sampler:
            seconds, large_id = timed_upload("httpx", server.url, source, LARGE_REPEAT)
        rows += [
            Row("upload 2 GiB", size * LARGE_REPEAT / MB / seconds, "MB/s"),
            rss_row("upload 2 GiB", sampler),
        ]
        with RssSampler(server.pid) as sampler:
            rate = fetch_rate(f"{server.url}/v1/files/{large_id}/content", 1, size * LARGE_REPEAT)
        rows += [Row("download 2 GiB", rate, "MB/s"), rss_row("download 2 GiB", sampler)]

        commands = [client_command("httpx", server.url, source)] * CONCURRENT
        with RssSampler(server.pid) as sampler:
            seconds, outputs = run_parallel(commands)
        rate = CONCURRENT * size / MB / seconds
        rows += [Row("upload 8 × 256 MiB at once", rate, "MB/s"), rss_row("upload 8 × 256 MiB", sampler)]
        file_ids = [json.loads(out)["id"] for out in outputs]
        urls = [f"{server.url}/v1/files/{file_id}/content" for file_id in file_ids]
        with RssSampler(server.pid) as sampler:
            rate = _download_each(urls, size)
        rows += [Row("download 8 × 256 MiB at once", rate, "MB/s"), rss_row("download 8 × 256 MiB", sampler)]
    return rows


def _download_each(urls: list[str], size: int) -> float:
    """MB/s over one concurrent download of each url."""
    seconds, outputs = run_parallel([curl_command(url) for url in urls])
    if any(int(out) != size for out in outputs):
        raise RuntimeError(f"short download: {outputs}")
    return len(urls) * size / MB / seconds
