"""Metadata: retrieve and list (limit 100) at 16 concurrent clients over 100k files, with `wrk`,
once on SQLite (the embedded default) and once on PostgreSQL (the scale-out database).

The rows are seeded straight into the database the server created and migrated, through the
app's own table and engine; no blobs are needed because nothing here is downloaded.

While working on one backend, run only its half and print the rows, docs untouched:

    .venv/bin/python -m bench.metadata postgres [--server /work/main/.venv/bin/filedock]

`--server` measures another tree's `filedock` the same way, for an interleaved A/B.
"""

import argparse
import asyncio
import random
import re
import subprocess
from pathlib import Path

from sqlalchemy import insert

from app.core import ids
from app.metadata.engine import create_engine
from app.metadata.tables import FileRow
from bench import common
from bench.common import (
    OUT,
    Row,
    RssSampler,
    ensure_tools,
    filedock,
    format_table,
    postgres_database,
    psql,
    rss_row,
)

FILES = 100_000
BATCH = 5_000
CLIENTS = 16
SECONDS = 10
SAMPLED_IDS = 5_000
# p99 bounds per backend: the embedded default, and PostgreSQL (issue 16).
TARGETS_MS = {
    "SQLite": {"retrieve": 10.0, "list": 20.0},
    "PostgreSQL": {"retrieve": 5.0, "list": 15.0},
}
KINDS = ("retrieve", "list")
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


async def seed(database_url: str, count: int) -> list[str]:
    """Insert `count` files (oldest first) in batches; their ids in that order."""
    engine = create_engine(database_url)
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


def measure(label: str, url: str, pid: int, file_ids: list[str]) -> list[Row]:
    # Cursors from all but the oldest 1,000 files, so every list page is a full 100.
    sample = random.sample(file_ids[1_000:], min(SAMPLED_IDS, len(file_ids) - 1_000))
    rows: list[Row] = []
    for kind in KINDS:
        wrk(url, kind, sample, 2)  # warm-up
        with RssSampler(pid) as sampler:
            p50, p99, rate = wrk(url, kind, sample, SECONDS)
        files = f"{len(file_ids) // 1000}k files"
        rows.append(Row(f"{kind} p50, {CLIENTS} clients, {files} ({label})", p50, "ms"))
        limit = TARGETS_MS[label][kind]
        rows.append(Row(f"{kind} p99, {CLIENTS} clients, {files} ({label})", p99, "ms", max_value=limit))
        rows.append(Row(f"{kind} throughput, {CLIENTS} clients, {files} ({label})", rate, "req/s"))
        rows.append(rss_row(f"metadata {kind} ({label})", sampler))
    return rows


def run_sqlite() -> list[Row]:
    with filedock("metadata") as server:
        file_ids = asyncio.run(seed(f"sqlite+aiosqlite:///{server.data_dir / 'filedock.db'}", FILES))
        return measure("SQLite", server.url, server.pid, file_ids)


def run_postgres() -> list[Row]:
    with (
        postgres_database("metadata") as database_url,
        filedock("metadata", database_url=database_url) as server,
    ):
        file_ids = asyncio.run(seed(database_url, FILES))
        # What autovacuum and the checkpointer do after a bulk load this size anyway, done now
        # rather than during the measurement: planner statistics, the visibility map and hint
        # bits of the new rows (VACUUM), and the seed's dirty pages written out (CHECKPOINT).
        database = database_url.rsplit("/", 1)[1]
        psql("VACUUM ANALYZE files", database)
        psql("CHECKPOINT", database)
        return measure("PostgreSQL", server.url, server.pid, file_ids)


HALVES = {"sqlite": run_sqlite, "postgres": run_postgres}


def run() -> list[Row]:
    return run_sqlite() + run_postgres()


def main() -> None:
    parser = argparse.ArgumentParser(description="One backend's metadata rows, printed only.")
    parser.add_argument("backend", choices=sorted(HALVES))
    parser.add_argument("--server", type=Path, default=common.FILEDOCK_BIN, help="the filedock to measure")
    args = parser.parse_args()
    common.FILEDOCK_BIN = args.server
    ensure_tools()
    print(format_table(HALVES[args.backend]()))


if __name__ == "__main__":
    main()
