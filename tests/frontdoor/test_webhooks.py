"""Webhooks through the front door: endpoints managed with the openai SDK's `client.webhooks`,
events delivered to a real HTTP receiver of the test's own on loopback and verified with
`client.webhooks.unwrap`, retries, a restart, the private-address rule and project scoping."""

import http.server
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import openai
import pytest

from tests import loopback
from tests.servers import FileDockServer, wait_until

KEYS = "key-alpha=alpha,key-beta=beta"
FAST = {
    "webhook_poll_interval_seconds": "0.1",
    "webhook_backoff_seconds": "0.2",
    "webhook_timeout_seconds": "2",
}


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    answered: int

    @property
    def event(self) -> dict[str, object]:
        return dict(json.loads(self.body))


class Receiver:
    """A webhook receiver on a free loopback port: answers each POST with the next of `answers`
    (then 200) and keeps what it was sent."""

    def __init__(self, answers: tuple[int, ...] = ()) -> None:
        self.answers = list(answers)
        self.deliveries: list[Delivery] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                status = receiver.answers.pop(0) if receiver.answers else 200
                receiver.deliveries.append(Delivery(dict(self.headers.items()), body, status))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks"

    def of_type(self, event_type: str) -> list[Delivery]:
        return [d for d in self.deliveries if d.event["type"] == event_type]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def hooks_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileDockServer]:
    """One server for the tests that need no restart: two projects, loopback targets allowed."""
    settings = {"api_keys": KEYS, "webhook_allow_private": "true", **FAST}
    server = FileDockServer(tmp_path_factory.mktemp("webhooks") / "data", settings=settings).start()
    yield server
    server.stop()


def sdk(server: FileDockServer, key: str = "key-alpha") -> openai.OpenAI:
    return openai.OpenAI(base_url=server.openai_url, api_key=key, max_retries=0)


def deliveries_of(
    server: FileDockServer, endpoint_id: str, key: str = "key-alpha"
) -> list[dict[str, object]]:
    """FileDock's extension: each delivery to the endpoint and how it went."""
    answer = loopback.get(
        f"{server.openai_url}/webhook_endpoints/{endpoint_id}/deliveries",
        headers={"authorization": f"Bearer {key}"},
    )
    assert answer.status_code == 200, answer.text
    return list(answer.json()["data"])


def upload(client: openai.OpenAI) -> str:
    return client.files.create(file=("notes.txt", b"hello"), purpose="assistants").id


def test_webhook_endpoint_create_retrieve_update_list_delete(hooks_server: FileDockServer) -> None:
    client = sdk(hooks_server)
    created = client.webhooks.create(
        url="https://hooks.example.com/a", name="first", event_types=["batch.completed"]
    )
    assert created.object == "webhook_endpoint"
    assert created.id.startswith("we_")
    assert created.signing_secret.startswith("whsec_")
    assert created.signing_secret_hint == f"whsec_****{created.signing_secret[-4:]}"
    fetched = client.webhooks.retrieve(created.id)
    assert (fetched.name, fetched.url, fetched.event_types) == ("first", created.url, ["batch.completed"])
    assert "signing_secret" not in fetched.model_dump()

    updated = client.webhooks.update(created.id, name="renamed", event_types=["file.created", "batch.failed"])
    assert (updated.name, updated.event_types) == ("renamed", ["file.created", "batch.failed"])
    assert client.webhooks.retrieve(created.id).name == "renamed"

    second = client.webhooks.create(
        url="https://hooks.example.com/b", name="second", event_types=["file.deleted"]
    )
    listed = [e.id for e in client.webhooks.list()]
    assert listed.index(second.id) < listed.index(created.id)  # newest first
    page = client.webhooks.list(limit=1)
    assert [e.id for e in page.data] == [listed[0]] and page.has_more

    deleted = client.webhooks.delete(created.id)
    assert (deleted.id, deleted.deleted, deleted.object) == (created.id, True, "webhook_endpoint.deleted")
    with pytest.raises(openai.NotFoundError):
        client.webhooks.retrieve(created.id)
    client.webhooks.delete(second.id)


def test_webhook_endpoint_refuses_unknown_event_types_and_bad_urls(hooks_server: FileDockServer) -> None:
    client = sdk(hooks_server)
    with pytest.raises(openai.BadRequestError, match=r"does not emit 'response\.completed'"):
        client.webhooks.create(url="https://hooks.example.com/", name="n", event_types=["response.completed"])
    with pytest.raises(openai.BadRequestError, match="https://"):
        client.webhooks.create(url="ftp://hooks.example.com/", name="n", event_types=["file.created"])
    assert client.webhooks.event_types.list().data == [
        *("batch.completed", "batch.failed", "batch.expired", "batch.cancelled"),
        *("file.created", "file.deleted", "file.expired"),
    ]


def test_file_created_event_is_delivered_and_verifies_with_unwrap(
    hooks_server: FileDockServer, receiver: Receiver
) -> None:
    client = sdk(hooks_server)
    endpoint = client.webhooks.create(url=receiver.url, name="files", event_types=["file.created"])
    file_id = upload(client)
    assert wait_until(lambda: len(receiver.of_type("file.created")) == 1)
    delivery = receiver.of_type("file.created")[0]
    event = client.webhooks.unwrap(delivery.body, delivery.headers, secret=endpoint.signing_secret)
    assert (event.type, event.data.id, event.object) == ("file.created", file_id, "event")
    assert event.id.startswith("evt_")
    assert delivery.headers["webhook-id"].startswith("wh_")
    client.files.delete(file_id)  # not subscribed: no file.deleted may follow
    assert not wait_until(lambda: len(receiver.deliveries) > 1, seconds=0.6)
    client.webhooks.delete(endpoint.id)


def test_tampered_delivery_is_rejected_by_unwrap(hooks_server: FileDockServer, receiver: Receiver) -> None:
    client = sdk(hooks_server)
    endpoint = client.webhooks.create(url=receiver.url, name="files", event_types=["file.created"])
    upload(client)
    assert wait_until(lambda: len(receiver.deliveries) == 1)
    delivery = receiver.deliveries[0]
    tampered = delivery.body.replace(b"file.created", b"file.deleted")
    with pytest.raises(openai.InvalidWebhookSignatureError):
        client.webhooks.unwrap(tampered, delivery.headers, secret=endpoint.signing_secret)
    other_secret = client.webhooks.rotate_secret(endpoint.id).signing_secret
    with pytest.raises(openai.InvalidWebhookSignatureError):
        client.webhooks.unwrap(delivery.body, delivery.headers, secret=other_secret)
    client.webhooks.delete(endpoint.id)


def test_file_deleted_event_and_the_test_call(hooks_server: FileDockServer, receiver: Receiver) -> None:
    client = sdk(hooks_server)
    endpoint = client.webhooks.create(
        url=receiver.url, name="all", event_types=["file.deleted", "batch.completed"]
    )
    file_id = upload(client)
    client.files.delete(file_id)
    assert wait_until(lambda: len(receiver.of_type("file.deleted")) == 1)
    deleted = client.webhooks.unwrap(
        receiver.deliveries[0].body, receiver.deliveries[0].headers, secret=endpoint.signing_secret
    )
    assert deleted.data.id == file_id

    receiver.answers = [202]
    result = client.webhooks.test(endpoint.id, event_type="batch.completed")
    assert (result.status_code, result.success, result.webhook_endpoint_id) == (202, True, endpoint.id)
    sample = receiver.of_type("batch.completed")[0]
    event = client.webhooks.unwrap(sample.body, sample.headers, secret=endpoint.signing_secret)
    assert event.type == "batch.completed" and event.data.id.startswith("batch_")
    client.webhooks.delete(endpoint.id)


def test_rotated_secret_signs_and_the_kept_old_one_still_verifies(
    hooks_server: FileDockServer, receiver: Receiver
) -> None:
    client = sdk(hooks_server)
    endpoint = client.webhooks.create(url=receiver.url, name="rotating", event_types=["file.created"])
    rotated = client.webhooks.rotate_secret(endpoint.id, keep_old_secret_active_for_24_hours=True)
    assert rotated.signing_secret != endpoint.signing_secret
    assert rotated.updated_at is not None and rotated.updated_at >= endpoint.created_at
    upload(client)
    assert wait_until(lambda: len(receiver.deliveries) == 1)
    delivery = receiver.deliveries[0]
    for secret in (rotated.signing_secret, endpoint.signing_secret):
        assert client.webhooks.unwrap(delivery.body, delivery.headers, secret=secret).type == "file.created"

    newest = client.webhooks.rotate_secret(endpoint.id)  # the old secrets stop at once
    upload(client)
    assert wait_until(lambda: len(receiver.deliveries) == 2)
    second = receiver.deliveries[1]
    assert client.webhooks.unwrap(second.body, second.headers, secret=newest.signing_secret)
    with pytest.raises(openai.InvalidWebhookSignatureError):
        client.webhooks.unwrap(second.body, second.headers, secret=rotated.signing_secret)
    client.webhooks.delete(endpoint.id)


def test_delivery_is_retried_until_the_receiver_answers_2xx_then_sent_no_more(
    hooks_server: FileDockServer,
) -> None:
    receiver = Receiver(answers=(500, 500))
    try:
        client = sdk(hooks_server)
        endpoint = client.webhooks.create(url=receiver.url, name="flaky", event_types=["file.created"])
        upload(client)
        assert wait_until(lambda: len(receiver.deliveries) == 3)
        assert not wait_until(lambda: len(receiver.deliveries) > 3, seconds=1.5)  # 4 backoffs' worth
        assert [d.answered for d in receiver.deliveries] == [500, 500, 200]
        assert len({d.headers["webhook-id"] for d in receiver.deliveries}) == 1  # one message, retried
        for delivery in receiver.deliveries:
            client.webhooks.unwrap(delivery.body, delivery.headers, secret=endpoint.signing_secret)
        [record] = deliveries_of(hooks_server, endpoint.id)
        assert (record["status"], record["attempts"], record["last_status_code"]) == ("delivered", 3, 200)
        client.webhooks.delete(endpoint.id)
    finally:
        receiver.close()


def test_another_project_sees_no_endpoints_and_gets_no_events(
    hooks_server: FileDockServer, receiver: Receiver
) -> None:
    alpha, beta = sdk(hooks_server, "key-alpha"), sdk(hooks_server, "key-beta")
    endpoint = alpha.webhooks.create(url=receiver.url, name="alpha's", event_types=["file.created"])
    assert endpoint.id not in [e.id for e in beta.webhooks.list()]
    with pytest.raises(openai.NotFoundError):
        beta.webhooks.retrieve(endpoint.id)
    with pytest.raises(openai.NotFoundError):
        beta.webhooks.delete(endpoint.id)
    with pytest.raises(openai.NotFoundError):
        beta.webhooks.rotate_secret(endpoint.id)
    upload(beta)  # beta's file is no business of alpha's endpoint
    assert not wait_until(lambda: len(receiver.deliveries) > 0, seconds=0.6)
    assert alpha.webhooks.retrieve(endpoint.id).id == endpoint.id
    alpha.webhooks.delete(endpoint.id)


def test_pending_delivery_survives_a_restart(make_server: Callable[..., FileDockServer]) -> None:
    receiver = Receiver(answers=(503,) * 1000)  # down until told otherwise
    try:
        server = make_server(webhook_allow_private="true", **{**FAST, "webhook_backoff_seconds": "0.5"})
        client = sdk(server, "any")
        endpoint = client.webhooks.create(url=receiver.url, name="restart", event_types=["file.created"])
        file_id = upload(client)
        assert wait_until(lambda: len(receiver.deliveries) >= 1)
        server.stop()
        receiver.answers = []  # the receiver is up again, the server is not
        attempts_while_down = len(receiver.deliveries)
        server.start()
        assert wait_until(lambda: any(d.answered == 200 for d in receiver.deliveries))
        assert not wait_until(lambda: len(receiver.deliveries) > attempts_while_down + 1, seconds=1.0)
        delivered = receiver.deliveries[-1]
        assert delivered.headers["webhook-id"] == receiver.deliveries[0].headers["webhook-id"]
        event = sdk(server, "any").webhooks.unwrap(
            delivered.body, delivered.headers, secret=endpoint.signing_secret
        )
        assert event.data.id == file_id
    finally:
        receiver.close()


def test_no_webhook_to_a_loopback_address_unless_allowed(
    make_server: Callable[..., FileDockServer], receiver: Receiver
) -> None:
    server = make_server(**FAST)
    client = sdk(server, "any")
    for url in (receiver.url, "http://localhost:9/x", "http://[::1]/x", "http://169.254.169.254/latest"):
        with pytest.raises(openai.BadRequestError, match="FILEDOCK_WEBHOOK_ALLOW_PRIVATE") as refused:
            client.webhooks.create(url=url, name="inside", event_types=["file.created"])
        assert refused.value.status_code == 400
    assert list(client.webhooks.list()) == []

    # An endpoint made while private targets were allowed gets nothing once they are not: the
    # address is checked again at each attempt.
    server.settings["webhook_allow_private"] = "true"
    server.restart()
    endpoint = sdk(server, "any").webhooks.create(
        url=receiver.url, name="inside", event_types=["file.created"]
    )
    server.settings["webhook_allow_private"] = "false"
    server.restart()
    client = sdk(server, "any")
    with pytest.raises(openai.BadRequestError, match="loopback"):
        client.webhooks.update(endpoint.id, url=receiver.url)
    upload(client)
    assert wait_until(lambda: any(d["attempts"] for d in deliveries_of(server, endpoint.id, "any")))
    [record] = deliveries_of(server, endpoint.id, "any")
    assert record["status"] == "pending" and "refused: 127.0.0.1 is a loopback address" in str(
        record["last_error"]
    )
    assert receiver.deliveries == []


def test_deliveries_of_an_unknown_endpoint_are_not_found(hooks_server: FileDockServer) -> None:
    answer = loopback.get(
        f"{hooks_server.openai_url}/webhook_endpoints/we_nosuch/deliveries",
        headers={"authorization": "Bearer key-alpha"},
    )
    assert answer.status_code == 404
    assert answer.json()["error"]["message"] == "No such webhook endpoint: we_nosuch"
