"""Two FileDock replicas on one PostgreSQL database and one S3 bucket run a batch: the replica
holding it is killed mid-run, the other takes its lease over, and the output holds every line
exactly once."""

import signal
import time
from collections.abc import Callable

import openai

from tests import scaleout
from tests.frontdoor.test_batches import (
    custom_ids,
    file_lines,
    request_line,
    start_batch,
    start_upstream,
    stop_upstream,
    wait_for,
)
from tests.servers import FileDockServer, wait_until

LINES = 300


def test_a_batch_survives_the_replica_running_it_being_killed(
    replicas: Callable[..., FileDockServer],
) -> None:
    upstream = start_upstream(latency_ms=20)
    try:
        settings = {
            "batch_upstream_url": upstream.url,
            "batch_lease_seconds": "2",
            "batch_poll_interval_seconds": "0.2",
            "batch_concurrency": "4",
            "workers": "1",  # the server process is the worker: its pid names the lease's owner
        }
        pair = [replicas(**settings), replicas(**settings)]
        client = openai.OpenAI(base_url=pair[0].openai_url, api_key="k", max_retries=0)
        batch = start_batch(client, [request_line(f"replica-{i}") for i in range(LINES)])

        def some_done() -> bool:
            counts = client.batches.retrieve(batch.id).request_counts
            return counts is not None and counts.completed >= 30

        assert wait_until(some_done, 60)
        database = pair[0].settings["database_url"].rsplit("/", 1)[1]
        query = "SELECT lease_owner FROM batches WHERE id = ?"
        [(owner,)] = scaleout.backend().postgres.query(query, (batch.id,), database)
        [holder] = [s for s in pair if s.process is not None and f":{s.process.pid}:" in str(owner)]
        survivor = pair[1] if holder is pair[0] else pair[0]
        holder.stop(signal.SIGKILL)
        killed_at = time.monotonic()

        with openai.OpenAI(base_url=survivor.openai_url, api_key="k", max_retries=0) as other:
            done = wait_for(other, batch.id, seconds=120)
            assert done.status == "completed", done
            assert time.monotonic() - killed_at > 1  # taken over once the dead replica's lease lapsed
            assert done.request_counts is not None and done.request_counts.completed == LINES
            output = custom_ids(file_lines(other, done.output_file_id))
            assert sorted(output) == sorted(f"replica-{i}" for i in range(LINES))  # each line once
            assert file_lines(other, done.error_file_id) == []
    finally:
        stop_upstream(upstream)
