"""Fixtures shared by the Anthropic, Gemini and AG2 front-door tests.

Imports only the standard library, pytest and tests.servers: each SDK era runs these tests from
its own small virtual environment (see the Makefile), which holds that SDK and not FileDock.
Each directory's conftest re-exports the fixtures it needs.
"""

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.servers import FileDockServer

_counter = itertools.count()
# Where each face is reached: the shared root (told apart by sniffing) or its own prefix.
FACES = ["root", "prefix"]
LISTING_KEYS = {face: f"listing-{face}" for face in FACES}  # key and project: keyed_dock's


@pytest.fixture(scope="session")
def dock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileDockServer]:
    """One server shared by the tests of a session; tests must not depend on the whole store."""
    server = FileDockServer(tmp_path_factory.mktemp("dock") / "data").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def vendor_dock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileDockServer]:
    """A shared server with FILEDOCK_DOWNLOAD_POLICY=vendor."""
    server = FileDockServer(tmp_path_factory.mktemp("vendor") / "data", {"download_policy": "vendor"}).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def keyed_dock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileDockServer]:
    """A shared server that accepts only configured keys: `secret-1`, and one per face in
    `LISTING_KEYS`, each in a project of its own, for tests that list every file they see."""
    keys = ",".join(["secret-1", *(f"{key}={key}" for key in LISTING_KEYS.values())])
    server = FileDockServer(tmp_path_factory.mktemp("keyed") / "data", {"api_keys": keys}).start()
    yield server
    server.stop()


@pytest.fixture
def make_dock(tmp_path: Path) -> Iterator[Callable[..., FileDockServer]]:
    """Private servers with their own data dir and settings, stopped after the test."""
    started: list[FileDockServer] = []

    def make(**settings: str) -> FileDockServer:
        server = FileDockServer(tmp_path / f"dock{next(_counter)}", settings=settings).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture(params=FACES)
def face(request: pytest.FixtureRequest) -> str:
    return str(request.param)
