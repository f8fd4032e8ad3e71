"""Metadata: retrieve and list (limit 100) at 16 concurrent clients over 100k files, with `wrk`.

The rows are seeded straight into the database the server created, through the app's own
table and engine; no blobs are needed because nothing here is downloaded.
"""

import asyncio
import random
import re
import subprocess
from pathlib import Path

from sqlalchemy import insert

from app import ids
from app.metadata.engine import create_engine
from app.metadata.tables import FileRow
from bench.common import OUT, Row, RssSampler, filedock, rss_row

FILES = 100_000
BATCH = 5_000
CLIENTS = 16
SECONDS = 10
SAMPLED_IDS = 5_000
TARGETS_MS = {"retrieve": 10.0, "list": 20.0}
PATHS = {"retrieve": "/v1/files/%s", "list": "/v1/files?limit=100&after=%s"}

WRK_SCRIPT = """\
local ids = {%(ids)s}
local threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("seed", threads)
end
init = function(args)
  math.randomseed(os.time() * 7919 + seed)
end
request = function()
  return wrk.format("GET", string.format("%(path)s", ids[math.random(#ids)]))
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %%d %%d %%d %%d %%d %%d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.status, e.connect + e.read + e.write + e.timeout))
end
"""


async def seed(database: Path, count: int) -> list[str]:
    """Insert `count` files (oldest first) in batches; their ids in that order."""
    engine = create_engine(f"sqlite+aiosqlite:///{database}")
    file_ids = [ids.new_file_id() for _ in range(count)]
    start = 1_700_000_000
    try:
        for offset in range(0, count, BATCH):
            rows = [
                _row(file_id, start + offset + i)
                for i, file_id in enumerate(file_ids[offset : offset + BATCH])
            ]
            async with engine.begin() as connection:
                await connection.execute(insert(FileRow), rows)
    finally:
        await engine.dispose()
    return file_ids


def _row(file_id: str, created_at: int) -> dict[str, object]:
    return {
        "id": file_id,
        "filename": f"report-{created_at}.pdf",
        "purpose": "user_data",
        "bytes": 123_456,
        "created_at": created_at,
        "expires_at": None,
        "status": "processed",
        "status_details": None,
        "mime_type": "application/pdf",
        "sha256": "0" * 64,
        "blob_key": file_id.removeprefix("file-"),
    }


def wrk(url: str, kind: str, file_ids: list[str], seconds: int) -> tuple[float, float, float]:
    """p50 ms, p99 ms and requests/s for `kind` requests on random ids, from `CLIENTS` connections."""
    script = OUT / f"wrk-{kind}.lua"
    quoted = ",".join(f'"{i}"' for i in file_ids)
    script.write_text(WRK_SCRIPT % {"ids": quoted, "path": PATHS[kind]})
    command = ["wrk", "-t2", f"-c{CLIENTS}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script), url]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    match = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)", output)
    if not match:
        raise RuntimeError(f"wrk printed no result:\n{output}")
    requests, duration_us, p50_us, p99_us, bad_status, socket_errors = map(int, match.groups())
    if bad_status or socket_errors:
        raise RuntimeError(f"{kind}: {bad_status} non-2xx answers and {socket_errors} socket errors")
    return p50_us / 1000, p99_us / 1000, requests / (duration_us / 1e6)


def run() -> list[Row]:
    rows: list[Row] = []
    with filedock("metadata") as server:
        file_ids = asyncio.run(seed(server.data_dir / "filedock.db", FILES))
        # Cursors from all but the oldest 1,000 files, so every list page is a full 100.
        sample = random.sample(file_ids[1_000:], SAMPLED_IDS)
        for kind, target in TARGETS_MS.items():
            wrk(server.url, kind, sample, 2)  # warm-up
            with RssSampler(server.pid) as sampler:
                p50, p99, rate = wrk(server.url, kind, sample, SECONDS)
            rows.append(Row(f"{kind} p50, {CLIENTS} clients, {FILES // 1000}k files", p50, "ms"))
            rows.append(
                Row(f"{kind} p99, {CLIENTS} clients, {FILES // 1000}k files", p99, "ms", max_value=target)
            )
            rows.append(Row(f"{kind} throughput, {CLIENTS} clients", rate, "req/s"))
            rows.append(rss_row(f"metadata {kind}", sampler))
    return rows
