"""S3: a 256 MiB upload and download through FileDock on PostgreSQL + S3 (SeaweedFS), against the
same bytes put to and got from the same bucket directly with obstore, the app's own S3 client.

FileDock is driven like bench/upload.py and bench/download.py do (a streamed httpx upload in its
own process, `curl` downloads); the direct client runs in its own process as well
(`python -m bench.s3 put|get <endpoint> <bucket> <key> [path]`), putting from the file in
8 MiB parts with as many in flight as FileDock uses, and getting streamed. No target: the
FileDock/direct ratio is the cost of going through FileDock rather than to S3 directly.
"""

import json
import statistics
import sys
import time
from pathlib import Path

import httpx

from bench.common import (
    MB,
    MiB,
    Row,
    RssSampler,
    filedock,
    postgres_database,
    rss_row,
    run_parallel,
    seaweedfs_s3,
)
from bench.download import fetch_rate
from bench.upload import timed_upload

RUNS = 3
TARGET = 0.95  # the least FileDock/direct-obstore ratio accepted, upload and download
PART_BYTES = 8 * MiB
READ_CHUNK_BYTES = MiB
PREFIX = "bench"


def _store(endpoint: str, bucket: str) -> object:
    from obstore.store import S3Store

    return S3Store(
        bucket,
        prefix="direct",
        config={"endpoint": endpoint, "region": "us-east-1", "virtual_hosted_style_request": False},
        client_options={"allow_http": True},
    )


def put_direct(endpoint: str, bucket: str, key: str, path: Path) -> int:
    import obstore

    from app.blobs.s3 import PARTS_IN_FLIGHT

    with path.open("rb") as source:
        obstore.put(
            _store(endpoint, bucket),  # type: ignore[arg-type]
            key,
            source,
            use_multipart=True,
            chunk_size=PART_BYTES,
            max_concurrency=PARTS_IN_FLIGHT,
        )
    return path.stat().st_size


def get_direct(endpoint: str, bucket: str, key: str) -> int:
    import obstore

    size = 0
    result = obstore.get(_store(endpoint, bucket), key)  # type: ignore[arg-type]
    for chunk in result.stream(min_chunk_size=READ_CHUNK_BYTES):
        size += len(memoryview(chunk))
    return size


def _direct_seconds(action: str, endpoint: str, bucket: str, source: Path) -> float:
    """Seconds a direct obstore put or get of `source`'s bytes took, in a separate process."""
    from tests.scaleout import S3_CREDENTIALS

    command = ["env", *(f"{k}={v}" for k, v in S3_CREDENTIALS.items()), sys.executable, "-m", "bench.s3"]
    _, [output] = run_parallel([[*command, action, endpoint, bucket, "bench.bin", str(source)]])
    result = json.loads(output)
    if result["bytes"] != source.stat().st_size:
        raise RuntimeError(f"direct {action}: {result['bytes']} bytes, not {source.stat().st_size}")
    return float(result["seconds"])


def run(source: Path) -> list[Row]:
    from tests.scaleout import S3_CREDENTIALS

    size = source.stat().st_size
    times: dict[str, list[float]] = {"upload": [], "put": [], "download": [], "get": []}
    with seaweedfs_s3("s3") as s3, postgres_database("s3") as database_url:
        settings = {
            "database_url": database_url,
            "blob_url": f"s3://{s3.bucket}/{PREFIX}",
            "s3_endpoint_url": s3.endpoint,
            "s3_force_path_style": "true",
            "s3_region": "us-east-1",
        }
        with filedock("s3", env_extra=S3_CREDENTIALS, **settings) as server:
            with RssSampler(server.pid) as upload_sampler:
                for run_index in range(RUNS):
                    seconds, file_id = timed_upload("httpx", server.url, source)
                    times["upload"].append(seconds)
                    if run_index < RUNS - 1:
                        httpx.delete(f"{server.url}/v1/files/{file_id}").raise_for_status()
                    times["put"].append(_direct_seconds("put", s3.endpoint, s3.bucket, source))
            content = f"{server.url}/v1/files/{file_id}/content"
            fetch_rate(content, 1, size)  # warm-up
            _direct_seconds("get", s3.endpoint, s3.bucket, source)  # warm-up
            with RssSampler(server.pid) as download_sampler:
                for _ in range(RUNS):
                    times["download"].append(size / MB / fetch_rate(content, 1, size))
                    times["get"].append(_direct_seconds("get", s3.endpoint, s3.bucket, source))
    rate = {name: size / MB / statistics.median(values) for name, values in times.items()}
    label = f"{size // MiB} MiB, PostgreSQL + S3 (SeaweedFS)"
    return [
        Row(f"S3 upload {label}, raw httpx vs obstore put", rate["upload"], "MB/s", rate["put"], TARGET),
        rss_row("S3 upload", upload_sampler),
        Row(f"S3 download {label}, 1 stream vs obstore get", rate["download"], "MB/s", rate["get"], TARGET),
        rss_row("S3 download", download_sampler),
    ]


def main(argv: list[str]) -> None:
    action, endpoint, bucket, key, path = argv[:5]
    start = time.perf_counter()
    if action == "put":
        size = put_direct(endpoint, bucket, key, Path(path))
    else:
        size = get_direct(endpoint, bucket, key)
    print(json.dumps({"seconds": time.perf_counter() - start, "bytes": size}))


if __name__ == "__main__":
    main(sys.argv[1:])
