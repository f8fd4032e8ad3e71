"""Fixtures for the scale-out suites: PostgreSQL and SeaweedFS S3, whatever FILEDOCK_TEST_BACKEND says.

These tests exist to exercise the scale-out backends, so they start them in the embedded run too
(and fail, never skip, when a service cannot be started).
"""

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests import scaleout
from tests.servers import FileDockServer


@pytest.fixture(scope="session")
def services(
    tmp_path_factory: pytest.TempPathFactory, test_backend: str
) -> Iterator[scaleout.ScaleOutBackend]:
    started_here = test_backend != "scaleout"
    backend = scaleout.start_backend(tmp_path_factory.mktemp("backends"))
    yield backend
    if started_here:
        scaleout.stop_backend()


@pytest.fixture
def scaleout_settings(services: scaleout.ScaleOutBackend, tmp_path: Path) -> dict[str, str]:
    """A fresh database and bucket prefix, as FILEDOCK_* settings (without the prefix)."""
    return dict(services.settings_for(tmp_path / "shared-state"))


@pytest.fixture
def replicas(scaleout_settings: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., FileDockServer]]:
    """Start FileDock replicas that share one database and one bucket prefix."""
    started: list[FileDockServer] = []

    def start(**settings: str) -> FileDockServer:
        directory = tmp_path / f"replica{len(started)}"
        server = FileDockServer(directory, settings={**scaleout_settings, **settings}).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[scaleout.SeaweedS3]:
    """A SeaweedFS S3 server of the module's own, for FileDock servers set up by hand (`S3Server`)."""
    s3 = scaleout.SeaweedS3(tmp_path_factory.mktemp("seaweed")).start()
    yield s3
    s3.stop()
