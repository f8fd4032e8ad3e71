"""The Batch API through the official openai SDK and raw httpx, run against a real upstream.

Each test starts a FileDock of its own pointed at `tests/upstream.py`, a small OpenAI-compatible
server on a free loopback port whose behaviour each request's `model` chooses (see there).
"""

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest
from openai.types import Batch

from tests import loopback
from tests.servers import ROOT, FileDockServer, free_port, wait_until

FINAL = ("completed", "failed", "expired", "cancelled")


@dataclass
class UpstreamServer:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = loopback.get(f"http://127.0.0.1:{self.port}/stats", timeout=5).json()
        return result


def start_upstream(latency_ms: float = 0) -> UpstreamServer:
    port = free_port()
    command = [sys.executable, "-m", "tests.upstream", "--port", str(port), "--latency-ms", str(latency_ms)]
    upstream = UpstreamServer(port, subprocess.Popen(command, cwd=ROOT))
    assert wait_until(lambda: _answers(upstream), 10), "the test upstream did not start"
    return upstream


def stop_upstream(upstream: UpstreamServer) -> None:
    upstream.process.terminate()
    upstream.process.wait(10)


@pytest.fixture
def make_upstream() -> Iterator[Callable[..., UpstreamServer]]:
    started: list[UpstreamServer] = []

    def make(latency_ms: float = 0) -> UpstreamServer:
        started.append(start_upstream(latency_ms))
        return started[-1]

    yield make
    for upstream in started:
        stop_upstream(upstream)


def _answers(upstream: UpstreamServer) -> bool:
    try:
        upstream.stats()
    except httpx.TransportError:
        return False
    return True


BATCH_TEST_SETTINGS = {"batch_poll_interval_seconds": "0.2", "batch_retry_base_seconds": "0.05"}


@pytest.fixture
def batch_dock(
    make_server: Callable[..., FileDockServer], make_upstream: Callable[..., UpstreamServer]
) -> Callable[..., tuple[FileDockServer, UpstreamServer, openai.OpenAI]]:
    """A FileDock of its own running batches against a fresh upstream, and an SDK client of it."""

    def make(latency_ms: float = 0, **settings: str) -> tuple[FileDockServer, UpstreamServer, openai.OpenAI]:
        upstream = make_upstream(latency_ms)
        server = make_server(batch_upstream_url=upstream.url, **{**BATCH_TEST_SETTINGS, **settings})
        return server, upstream, openai.OpenAI(base_url=server.openai_url, api_key="k", max_retries=0)

    return make


Dock = tuple[FileDockServer, UpstreamServer, openai.OpenAI]


@pytest.fixture(scope="module")
def shared_dock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dock]:
    """One FileDock and upstream for the tests that need no settings of their own: each uses
    custom_ids no other test uses, and counts only its own requests."""
    upstream = start_upstream()
    settings = {"batch_upstream_url": upstream.url, **BATCH_TEST_SETTINGS}
    server = FileDockServer(tmp_path_factory.mktemp("batches") / "data", settings=settings).start()
    with openai.OpenAI(base_url=server.openai_url, api_key="k", max_retries=0) as client:
        yield server, upstream, client
    server.stop()
    stop_upstream(upstream)


def request_line(custom_id: str, model: str = "echo", **overrides: Any) -> dict[str, Any]:
    line = {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": model, "messages": [{"role": "user", "content": custom_id}]},
    }
    return {**line, **overrides}


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def start_batch(client: openai.OpenAI, lines: list[dict[str, Any]], **options: Any) -> Batch:
    file = client.files.create(file=("requests.jsonl", jsonl(lines)), purpose="batch")
    endpoint = options.pop("endpoint", "/v1/chat/completions")
    return client.batches.create(input_file_id=file.id, endpoint=endpoint, completion_window="24h", **options)


def wait_for(
    client: openai.OpenAI, batch_id: str, statuses: tuple[str, ...] = FINAL, seconds: float = 60
) -> Batch:
    deadline = time.monotonic() + seconds
    while True:
        batch = client.batches.retrieve(batch_id)
        if batch.status in statuses or time.monotonic() > deadline:
            return batch
        time.sleep(0.1)


def file_lines(client: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    return [json.loads(line) for line in client.files.content(file_id).text.splitlines()]


def custom_ids(lines: list[dict[str, Any]]) -> list[str]:
    return [line["custom_id"] for line in lines]


# --- a whole batch ----------------------------------------------------------------------------


def test_batch_of_1000_lines_completes_with_each_custom_id_once(shared_dock: Dock) -> None:
    _, _, client = shared_dock
    names = [f"req-{i}" for i in range(1000)]
    created = start_batch(client, [request_line(n) for n in names], metadata={"run": "one"})
    assert (created.status, created.object, created.id[:6]) == ("validating", "batch", "batch_")
    assert created.expires_at == created.created_at + 86400
    batch = wait_for(client, created.id)
    assert batch.status == "completed"
    assert batch.request_counts is not None
    assert (batch.request_counts.total, batch.request_counts.completed, batch.request_counts.failed) == (
        1000,
        1000,
        0,
    )
    output = file_lines(client, batch.output_file_id)
    assert sorted(custom_ids(output)) == sorted(names)
    first = output[0]
    assert first["id"].startswith("batch_req_") and first["error"] is None
    assert first["response"]["status_code"] == 200
    assert first["response"]["request_id"] == f"req-chat-{first['custom_id']}"
    assert first["response"]["body"]["choices"][0]["message"]["content"] == f"echo: {first['custom_id']}"
    assert batch.error_file_id is None and batch.metadata == {"run": "one"} and batch.model == "echo"


def test_completed_batch_has_its_timestamps_usage_and_output_file(shared_dock: Dock) -> None:
    _, _, client = shared_dock
    batch = wait_for(client, start_batch(client, [request_line(f"u{i}") for i in range(4)]).id)
    assert batch.created_at <= batch.in_progress_at <= batch.finalizing_at <= batch.completed_at  # type: ignore[operator]
    assert batch.usage is not None
    assert (batch.usage.input_tokens, batch.usage.output_tokens, batch.usage.total_tokens) == (40, 20, 60)
    assert batch.usage.input_tokens_details.cached_tokens == 8
    assert batch.usage.output_tokens_details.reasoning_tokens == 4
    output = client.files.retrieve(batch.output_file_id or "")
    assert (output.purpose, output.filename, output.expires_at) == (
        "batch_output",
        f"{batch.id}_output.jsonl",
        None,
    )


def test_embeddings_batch_completes_with_usage(shared_dock: Dock) -> None:
    _, _, client = shared_dock
    lines = [
        {
            "custom_id": f"e{i}",
            "method": "POST",
            "url": "/v1/embeddings",
            "body": {"model": "emb", "input": ["a", "b"]},
        }
        for i in range(3)
    ]
    batch = wait_for(client, start_batch(client, lines, endpoint="/v1/embeddings").id)
    assert batch.status == "completed" and batch.usage is not None and batch.usage.input_tokens == 18
    assert len(file_lines(client, batch.output_file_id)[0]["response"]["body"]["data"]) == 2


def test_output_expires_after_sets_the_output_file_expiry(shared_dock: Dock) -> None:
    _, _, client = shared_dock
    expiry = {"anchor": "created_at", "seconds": 7200}
    batch = wait_for(client, start_batch(client, [request_line("x")], output_expires_after=expiry).id)
    output = client.files.retrieve(batch.output_file_id or "")
    assert output.expires_at == output.created_at + 7200


def test_batch_json_has_exactly_the_sdk_fields(shared_dock: Dock) -> None:
    server, _, client = shared_dock
    batch = wait_for(client, start_batch(client, [request_line("x")]).id)
    raw = loopback.get(
        f"{server.openai_url}/batches/{batch.id}", headers={"authorization": "Bearer k"}
    ).json()
    assert set(raw) == set(Batch.model_fields)
    assert raw["request_counts"] == {"completed": 1, "failed": 0, "total": 1}


# --- create, retrieve, list ---------------------------------------------------------------------


def test_create_without_an_upstream_is_400_naming_the_setting(client: openai.OpenAI) -> None:
    file = client.files.create(file=("in.jsonl", jsonl([request_line("a")])), purpose="batch")
    with pytest.raises(openai.BadRequestError) as caught:
        client.batches.create(input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert "FILEDOCK_BATCH_UPSTREAM_URL" in caught.value.message


@pytest.mark.parametrize(
    ("change", "param"),
    [
        pytest.param({"endpoint": "/v1/videos"}, "endpoint", id="unsupported-endpoint"),
        pytest.param({"completion_window": "48h"}, "completion_window", id="window"),
        pytest.param({"input_file_id": "file-nope"}, "input_file_id", id="unknown-file"),
        pytest.param({"metadata": {"k": 1}}, "metadata.k", id="metadata-value"),
        pytest.param(
            {"output_expires_after": {"anchor": "created_at", "seconds": 5}},
            "output_expires_after.seconds",
            id="expiry",
        ),
    ],
)
def test_create_with_a_bad_parameter_is_400(shared_dock: Dock, change: dict[str, Any], param: str) -> None:
    server, _, client = shared_dock
    file = client.files.create(file=("in.jsonl", jsonl([request_line("a")])), purpose="batch")
    body = {
        "input_file_id": file.id,
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
        **change,
    }
    answer = loopback.post(f"{server.openai_url}/batches", json=body, headers={"authorization": "Bearer k"})
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == param


def test_create_from_a_file_of_another_purpose_is_400(shared_dock: Dock) -> None:
    _, _, client = shared_dock
    file = client.files.create(file=("in.jsonl", jsonl([request_line("a")])), purpose="user_data")
    with pytest.raises(openai.BadRequestError) as caught:
        client.batches.create(input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert "purpose 'batch'" in caught.value.message


def test_list_pages_newest_first_and_only_the_callers_project(
    make_server: Callable[..., FileDockServer], make_upstream: Callable[..., UpstreamServer]
) -> None:
    server = make_server(batch_upstream_url=make_upstream().url, api_keys="k1=p1,k2=p2")
    one = openai.OpenAI(base_url=server.openai_url, api_key="k1", max_retries=0)
    two = openai.OpenAI(base_url=server.openai_url, api_key="k2", max_retries=0)
    ids = [start_batch(one, [request_line("a")]).id for _ in range(3)]
    first = one.batches.list(limit=2)
    assert [b.id for b in first.data] == ids[::-1][:2] and first.has_more
    rest = one.batches.list(limit=2, after=first.data[-1].id)
    assert [b.id for b in rest.data] == [ids[0]] and not rest.has_more
    assert two.batches.list().data == []
    with pytest.raises(openai.NotFoundError):
        two.batches.retrieve(ids[0])
    with pytest.raises(openai.NotFoundError):
        two.batches.cancel(ids[0])


def test_retrieve_an_unknown_batch_is_404(shared_dock: Dock) -> None:
    _, _, client = shared_dock
    with pytest.raises(openai.NotFoundError) as caught:
        client.batches.retrieve("batch_nope")
    assert "batch_nope" in caught.value.message


# --- validation ---------------------------------------------------------------------------------


def test_input_faults_fail_the_batch_with_their_line_numbers(shared_dock: Dock) -> None:
    _, _, client = shared_dock
    lines = [
        json.dumps(request_line("ok")).encode(),
        json.dumps(request_line("ok")).encode(),
        json.dumps(request_line("c", url="/v1/embeddings")).encode(),
        json.dumps(request_line("d", method="GET")).encode(),
        json.dumps(request_line("e", body="text")).encode(),
        json.dumps({k: v for k, v in request_line("f").items() if k != "custom_id"}).encode(),
    ]
    file = client.files.create(file=("in.jsonl", b"\n".join(lines)), purpose="batch")
    created = client.batches.create(
        input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    batch = wait_for(client, created.id)
    assert batch.status == "failed" and batch.failed_at is not None and batch.errors is not None
    found = [(e.line, e.code, e.param) for e in batch.errors.data or []]
    assert found == [
        (2, "duplicate_custom_id", "custom_id"),
        (3, "url_mismatch", "url"),
        (4, "invalid_method", "method"),
        (5, "invalid_request", "body"),
        (6, "missing_required_parameter", "custom_id"),
    ]
    assert batch.output_file_id is None and batch.in_progress_at is None


def test_embeddings_batch_over_50000_inputs_fails(shared_dock: Dock) -> None:
    _, _, client = shared_dock
    body = {"model": "emb", "input": ["w"] * 25_001}
    lines = [
        {"custom_id": f"e{i}", "method": "POST", "url": "/v1/embeddings", "body": body} for i in range(2)
    ]
    batch = wait_for(client, start_batch(client, lines, endpoint="/v1/embeddings").id)
    assert batch.status == "failed" and batch.errors is not None
    (error,) = batch.errors.data or []
    assert error.code == "too_many_tasks" and "50002" in (error.message or "")


def test_more_than_50000_requests_fails(shared_dock: Dock) -> None:
    _, upstream, client = shared_dock
    sent_before = upstream.stats()["requests"]
    line = '{"custom_id":"%d","method":"POST","url":"/v1/chat/completions","body":{}}\n'
    content = "".join(line % i for i in range(50_001)).encode()
    file = client.files.create(file=("in.jsonl", content), purpose="batch")
    created = client.batches.create(
        input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    batch = wait_for(client, created.id)
    assert batch.status == "failed" and batch.errors is not None
    assert [e.code for e in batch.errors.data or []] == ["too_many_tasks"]
    assert upstream.stats()["requests"] == sent_before  # a refused batch sends nothing


# --- upstream failures --------------------------------------------------------------------------


def test_rate_limits_server_errors_and_drops_are_retried(shared_dock: Dock) -> None:
    _, upstream, client = shared_dock
    lines = [
        request_line(f"{model}-{i}", model)
        for model in ("fail-429-once", "fail-500-once", "drop-once")
        for i in range(3)
    ]
    batch = wait_for(client, start_batch(client, lines).id)
    assert batch.status == "completed" and batch.request_counts is not None
    assert batch.request_counts.completed == 9
    assert sorted(custom_ids(file_lines(client, batch.output_file_id))) == sorted(
        line["custom_id"] for line in lines
    )
    counts = upstream.stats()["counts"]
    assert {counts[line["custom_id"]] for line in lines} == {2}  # each: one failure, one success


def test_retry_after_is_honoured(shared_dock: Dock) -> None:
    _, upstream, client = shared_dock
    batch = wait_for(client, start_batch(client, [request_line("slow", "fail-429-retry-after")]).id)
    assert batch.status == "completed"
    first, second = upstream.stats()["times"]["slow"]
    assert second - first >= 0.95  # retry-after: 1, not the 0.05 s backoff


def test_upstream_400_goes_to_the_error_file_with_its_status_and_body(shared_dock: Dock) -> None:
    _, upstream, client = shared_dock
    batch = wait_for(client, start_batch(client, [request_line("good"), request_line("bad", "fail-400")]).id)
    assert batch.status == "completed" and batch.request_counts is not None
    assert (batch.request_counts.completed, batch.request_counts.failed) == (1, 1)
    (error,) = file_lines(client, batch.error_file_id)
    assert error["custom_id"] == "bad" and error["response"]["status_code"] == 400
    assert error["response"]["body"]["error"]["message"] == "Invalid request for bad."
    assert custom_ids(file_lines(client, batch.output_file_id)) == ["good"]
    assert upstream.stats()["counts"]["bad"] == 1  # a 400 is final: never retried


def test_requests_still_failing_after_the_last_attempt_go_to_the_error_file(shared_dock: Dock) -> None:
    _, upstream, client = shared_dock
    batch = wait_for(client, start_batch(client, [request_line("always-500", "fail-500-always")]).id)
    assert batch.request_counts is not None and batch.request_counts.failed == 1
    (error,) = file_lines(client, batch.error_file_id)
    assert error["response"]["status_code"] == 500 and error["custom_id"] == "always-500"
    assert upstream.stats()["counts"]["always-500"] == 5  # FILEDOCK_BATCH_MAX_ATTEMPTS, the default


def test_upstream_sees_at_most_the_configured_concurrency(batch_dock: Callable[..., Any]) -> None:
    _, upstream, client = batch_dock(latency_ms=30, batch_concurrency="3")
    batch = wait_for(client, start_batch(client, [request_line(f"c{i}") for i in range(60)]).id)
    assert batch.status == "completed"
    assert upstream.stats()["max_in_flight"] == 3


# --- cancel, expiry, restart --------------------------------------------------------------------


def test_cancel_mid_run_keeps_what_completed(batch_dock: Callable[..., Any]) -> None:
    _, upstream, client = batch_dock(latency_ms=50, batch_concurrency="2")
    names = [f"n{i}" for i in range(200)]
    created = start_batch(client, [request_line(n) for n in names])
    assert wait_until(lambda: (client.batches.retrieve(created.id).request_counts or _zero()).completed >= 10)
    cancelling = client.batches.cancel(created.id)
    assert cancelling.status == "cancelling" and cancelling.cancelling_at is not None
    batch = wait_for(client, created.id)
    assert batch.status == "cancelled" and batch.cancelled_at is not None and batch.request_counts is not None
    output = custom_ids(file_lines(client, batch.output_file_id))
    assert len(output) == len(set(output)) == batch.request_counts.completed < 200
    assert upstream.stats()["requests"] < 200
    assert client.batches.cancel(created.id).status == "cancelled"  # cancelling again changes nothing


def test_cancel_a_finished_batch_is_400(shared_dock: Dock) -> None:
    _, _, client = shared_dock
    batch = wait_for(client, start_batch(client, [request_line("x")]).id)
    with pytest.raises(openai.BadRequestError):
        client.batches.cancel(batch.id)


def test_batch_past_its_window_expires_with_unfinished_lines_in_the_error_file(
    batch_dock: Callable[..., Any],
) -> None:
    _, _, client = batch_dock(latency_ms=100, batch_concurrency="1", batch_completion_window_seconds="2")
    names = [f"x{i}" for i in range(100)]
    created = start_batch(client, [request_line(n) for n in names])
    assert created.expires_at == created.created_at + 2
    batch = wait_for(client, created.id)
    assert batch.status == "expired" and batch.expired_at is not None and batch.request_counts is not None
    done, errors = file_lines(client, batch.output_file_id), file_lines(client, batch.error_file_id)
    assert 0 < len(done) < 100 and sorted(custom_ids(done) + custom_ids(errors)) == sorted(names)
    assert {e["error"]["code"] for e in errors} == {"batch_expired"}
    assert (batch.request_counts.completed, batch.request_counts.failed) == (len(done), len(errors))


def test_killed_server_is_taken_over_and_resumes_without_duplicates(
    batch_dock: Callable[..., Any], make_server: Callable[..., FileDockServer]
) -> None:
    settings = {"batch_lease_seconds": "2", "batch_concurrency": "4"}
    server, upstream, client = batch_dock(latency_ms=20, **settings)
    names = [f"r{i}" for i in range(300)]
    created = start_batch(client, [request_line(n) for n in names])
    assert wait_until(lambda: (client.batches.retrieve(created.id).request_counts or _zero()).completed >= 60)
    recorded = (client.batches.retrieve(created.id).request_counts or _zero()).completed
    server.stop(signal.SIGKILL)
    sent_before = upstream.stats()["requests"]
    again = make_server(
        server.data_dir, batch_upstream_url=upstream.url, batch_poll_interval_seconds="0.2", **settings
    )
    client = openai.OpenAI(base_url=again.openai_url, api_key="k", max_retries=0)
    batch = wait_for(client, created.id)
    assert batch.status == "completed" and batch.request_counts is not None
    assert batch.request_counts.completed == 300
    output = custom_ids(file_lines(client, batch.output_file_id))
    assert sorted(output) == sorted(names)  # every custom_id exactly once
    resent = upstream.stats()["requests"] - 300
    assert resent <= sent_before - recorded  # only lines never recorded were sent again


def test_stopped_server_resumes_where_it_left_off(
    batch_dock: Callable[..., Any], make_server: Callable[..., FileDockServer]
) -> None:
    server, upstream, client = batch_dock(latency_ms=20, batch_concurrency="4")
    names = [f"s{i}" for i in range(200)]
    created = start_batch(client, [request_line(n) for n in names])
    assert wait_until(lambda: (client.batches.retrieve(created.id).request_counts or _zero()).completed >= 40)
    server.stop()  # graceful: what finished is recorded and the lease given back
    again = make_server(server.data_dir, batch_upstream_url=upstream.url, batch_concurrency="4")
    client = openai.OpenAI(base_url=again.openai_url, api_key="k", max_retries=0)
    batch = wait_for(client, created.id)
    assert batch.status == "completed"
    assert sorted(custom_ids(file_lines(client, batch.output_file_id))) == sorted(names)
    assert upstream.stats()["requests"] <= 200 + 4  # at most the requests in flight at the stop again


def _zero() -> Any:
    return openai.types.BatchRequestCounts(completed=0, failed=0, total=0)


def test_a_finished_batch_is_told_to_webhooks_and_verifies_with_unwrap(
    batch_dock: Callable[..., Any],
) -> None:
    from tests.frontdoor.test_webhooks import Receiver

    receiver = Receiver()
    try:
        _, _, client = batch_dock(webhook_allow_private="true", webhook_poll_interval_seconds="0.2")
        # Made over raw HTTP: openai 2.x, which runs this file too, has `unwrap` but not `create`.
        made = loopback.post(
            f"{client.base_url}webhook_endpoints",
            json={"url": receiver.url, "name": "batches", "event_types": ["batch.completed", "batch.failed"]},
            headers={"authorization": "Bearer k"},
        )
        assert made.status_code == 200, made.text
        done = wait_for(client, start_batch(client, [request_line("hooked-1"), request_line("hooked-2")]).id)
        failed = wait_for(client, start_batch(client, [{"custom_id": "bad"}]).id)
        assert (done.status, failed.status) == ("completed", "failed")
        assert wait_until(lambda: len(receiver.deliveries) >= 2, 20), receiver.deliveries
        secret = made.json()["signing_secret"]
        events = {
            event.type: event.data.id
            for event in (
                client.webhooks.unwrap(d.body, d.headers, secret=secret) for d in receiver.deliveries
            )
        }
        assert events == {"batch.completed": done.id, "batch.failed": failed.id}
    finally:
        receiver.close()
