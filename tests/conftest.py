"""Shared fixtures: real FileDock servers on loopback, and clients pointed at them.

Only the standard library, httpx, pytest and openai are imported here: the front-door tests
also run under openai 2.x from a virtual environment without FileDock installed.
"""

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests import scaleout
from tests.servers import FileDockServer

_counter = itertools.count()


@pytest.fixture(scope="session", autouse=True)
def test_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """With FILEDOCK_TEST_BACKEND=scaleout, PostgreSQL and S3 for every server of the session."""
    if not scaleout.is_scaleout():
        yield "embedded"
        return
    scaleout.start_backend(tmp_path_factory.mktemp("scaleout"))
    yield "scaleout"
    scaleout.stop_backend()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked embedded_only are skipped, each with its reason, on the scale-out backend."""
    if not scaleout.is_scaleout():
        return
    for item in items:
        marker = item.get_closest_marker("embedded_only")
        if marker is not None:
            reason = marker.args[0] if marker.args else "needs SQLite and local disk"
            item.add_marker(pytest.mark.skip(reason=f"embedded backend only: {reason}"))


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileDockServer]:
    """One server shared by tests that do not depend on the whole store's contents."""
    server = FileDockServer(tmp_path_factory.mktemp("shared") / "data").start()
    yield server
    server.stop()


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., FileDockServer]]:
    """A factory of private servers with their own data dir and settings."""
    started: list[FileDockServer] = []

    def make(data_dir: Path | None = None, **settings: str) -> FileDockServer:
        directory = data_dir or tmp_path / f"data{next(_counter)}"
        server = FileDockServer(directory, settings=settings).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def client(server: FileDockServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.openai_url, api_key="test-key", max_retries=0) as sdk:
        yield sdk


@pytest.fixture
def http(server: FileDockServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.openai_url, timeout=60) as raw:
        yield raw
