"""Batch: 10,000 embeddings requests run through a FileDock batch, against the same upstream
driven directly at the same concurrency, in the same run.

The upstream is the tests' own OpenAI-compatible server (`tests/upstream.py`), a separate
process on loopback with a fixed latency per request, so both sides wait on the same thing.
FileDock's rate counts from `batches.create` to `completed` (validation, the requests, and
writing the output file); the direct rate is the same requests from one asyncio client with
the same number in flight.
"""

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import openai

from bench.common import ROOT, Row, RssSampler, filedock, free_port, rss_row

REQUESTS = 10_000
CONCURRENCY = 16
LATENCY_MS = 5
TARGET = 0.9


@contextmanager
def upstream() -> Iterator[str]:
    port = free_port()
    command = [sys.executable, "-m", "tests.upstream", "--port", str(port), "--latency-ms", str(LATENCY_MS)]
    process = subprocess.Popen(command, cwd=ROOT)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/stats", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        process.wait(10)


def request_bodies() -> list[dict[str, object]]:
    return [{"model": "echo", "input": f"text number {i}"} for i in range(REQUESTS)]


async def direct_rate(base_url: str) -> float:
    """Requests per second sending every body straight to the upstream, CONCURRENCY in flight."""
    bodies = iter(request_bodies())
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as client:

        async def worker() -> None:
            for body in bodies:
                answer = await client.post("/embeddings", json=body)
                answer.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return REQUESTS / (time.perf_counter() - started)


def batch_rate(server_url: str) -> float:
    """Requests per second through a batch, from create to completed."""
    lines = [
        {"custom_id": f"r{i}", "method": "POST", "url": "/v1/embeddings", "body": body}
        for i, body in enumerate(request_bodies())
    ]
    content = "".join(json.dumps(line) + "\n" for line in lines).encode()
    with openai.OpenAI(base_url=f"{server_url}/v1", api_key="bench", max_retries=0) as client:
        file = client.files.create(file=("bench.jsonl", content), purpose="batch")
        started = time.perf_counter()
        batch = client.batches.create(
            input_file_id=file.id, endpoint="/v1/embeddings", completion_window="24h"
        )
        while batch.status not in ("completed", "failed", "expired", "cancelled"):
            time.sleep(0.05)
            batch = client.batches.retrieve(batch.id)
        seconds = time.perf_counter() - started
    if (
        batch.status != "completed"
        or batch.request_counts is None
        or batch.request_counts.completed != REQUESTS
    ):
        raise RuntimeError(f"the bench batch ended {batch.status}: {batch.request_counts}")
    return REQUESTS / seconds


def run() -> list[Row]:
    with upstream() as base_url:
        reference = asyncio.run(direct_rate(base_url))
        settings = {"batch_upstream_url": base_url, "batch_concurrency": str(CONCURRENCY), "workers": "1"}
        with filedock("batch", **settings) as server, RssSampler(server.pid) as sampler:
            rate = batch_rate(server.url)
    label = f"batch of {REQUESTS:,} embeddings, {CONCURRENCY} in flight, {LATENCY_MS} ms upstream"
    return [Row(label, rate, "req/s", reference, TARGET), rss_row("batch phase", sampler)]
