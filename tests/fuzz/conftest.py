"""A live server for the fuzzers, and a count of the cases they ran in the terminal summary."""

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from tests import loopback
from tests.servers import FileDockServer, free_port


@dataclass
class FuzzStats:
    cases: dict[str, int] = field(default_factory=dict)  # by fuzzer: schemathesis, hypothesis
    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, fuzzer: str, cases: int, seconds: float) -> None:
        self.cases[fuzzer] = self.cases.get(fuzzer, 0) + cases
        self.seconds[fuzzer] = self.seconds.get(fuzzer, 0.0) + seconds


STATS = FuzzStats()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for fuzzer, cases in sorted(STATS.cases.items()):
        seconds = STATS.seconds[fuzzer]
        terminalreporter.write_line(f"fuzz: {fuzzer} ran {cases} cases in {seconds:.1f} s")


@pytest.fixture(scope="session")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileDockServer]:
    """A server with one file, one pending Upload and one webhook endpoint, so fuzzed ids
    sometimes hit something. The endpoint's URL is a closed loopback port: nothing leaves."""
    settings = {"fsync": "false", "workers": "1", "webhook_allow_private": "true"}
    server = FileDockServer(tmp_path_factory.mktemp("fuzz") / "data", settings).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def seeded_ids(fuzz_server: FileDockServer) -> dict[str, str]:
    base = fuzz_server.openai_url
    file = loopback.post(
        f"{base}/files", files={"file": ("seed.txt", b"seed")}, data={"purpose": "user_data"}
    )
    upload = loopback.post(
        f"{base}/uploads",
        json={"filename": "seed.txt", "purpose": "user_data", "bytes": 4, "mime_type": "text/plain"},
    )
    endpoint = loopback.post(
        f"{base}/webhook_endpoints",
        json={"url": f"http://127.0.0.1:{free_port()}/", "name": "seed", "event_types": ["batch.completed"]},
    )
    assert file.status_code == upload.status_code == endpoint.status_code == 200, (file.text, upload.text)
    return {
        "file_id": file.json()["id"],
        "upload_id": upload.json()["id"],
        "endpoint_id": endpoint.json()["id"],
    }


class Timer:
    def __enter__(self) -> "Timer":
        self.started = time.monotonic()
        return self

    def __exit__(self, *_: object) -> None:
        self.seconds = time.monotonic() - self.started
