"""Fixtures for the Anthropic SDK tests: run under anthropic 0.x, 1.x and 2.x (one venv per era)."""

from collections.abc import Callable, Iterator

import anthropic
import pytest

from tests.frontdoor.sdk_fixtures import dock, face, keyed_dock, make_dock, vendor_dock
from tests.servers import FileDockServer

__all__ = [
    "anthropic_client",
    "base_url",
    "dock",
    "face",
    "keyed_dock",
    "make_client",
    "make_dock",
    "vendor_dock",
]


def anthropic_url(server: FileDockServer, face: str) -> str:
    """No `/v1`: the SDK's paths carry it. The prefix face is `/anthropic`, the root is sniffed."""
    return server.url + ("/anthropic" if face == "prefix" else "")


@pytest.fixture
def base_url(dock: FileDockServer, face: str) -> str:
    return anthropic_url(dock, face)


@pytest.fixture
def make_client() -> Iterator[Callable[..., anthropic.Anthropic]]:
    clients: list[anthropic.Anthropic] = []

    def make(server: FileDockServer, face: str = "root", api_key: str = "test-key") -> anthropic.Anthropic:
        client = anthropic.Anthropic(base_url=anthropic_url(server, face), api_key=api_key, max_retries=0)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def anthropic_client(base_url: str) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=base_url, api_key="test-key", max_retries=0) as client:
        yield client
