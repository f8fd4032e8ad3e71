"""Fixtures for the google-genai tests: run under google-genai 2.x (`v1beta`) and 3.x (`v1`)."""

from collections.abc import Callable, Iterator

import pytest
from google import genai
from google.genai import types

from tests.frontdoor.sdk_fixtures import dock, face, keyed_dock, make_dock, vendor_dock
from tests.servers import FileDockServer

__all__ = ["dock", "face", "gemini_client", "keyed_dock", "make_client", "make_dock", "vendor_dock"]


def gemini_url(server: FileDockServer, face: str) -> str:
    """The SDK appends `<version>/files`; the prefix face is `/gemini`, the root is sniffed."""
    return server.url + ("/gemini" if face == "prefix" else "")


@pytest.fixture
def make_client() -> Iterator[Callable[..., genai.Client]]:
    clients: list[genai.Client] = []

    def make(server: FileDockServer, face: str = "root", api_key: str = "test-key") -> genai.Client:
        options = types.HttpOptions(base_url=gemini_url(server, face))
        client = genai.Client(api_key=api_key, vertexai=False, http_options=options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def gemini_client(dock: FileDockServer, face: str, make_client: Callable[..., genai.Client]) -> genai.Client:
    return make_client(dock, face)
