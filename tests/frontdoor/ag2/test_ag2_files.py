"""AG2's FilesAPI against FileDock for every provider config, on the shared root and the prefixes.

GeminiConfig has no base_url: google-genai reads GOOGLE_GEMINI_BASE_URL when the client is built.
Every dialect lists every file of the one store, so a file uploaded through one provider's config
shows up in the others' lists too (docs/dialects.md).
"""

import uuid
from collections.abc import Callable

import pytest
from ag2 import FilesAPI
from ag2.config import AnthropicConfig, GeminiConfig, ModelConfig, OpenAIConfig, OpenAIResponsesConfig

from tests.servers import FileDockServer

PROVIDERS = ["openai", "openai-responses", "anthropic", "gemini"]


def files_api(provider: str, server: FileDockServer, face: str, monkeypatch: pytest.MonkeyPatch) -> FilesAPI:
    prefixed = face == "prefix"
    config: ModelConfig
    if provider in ("openai", "openai-responses"):
        url = server.url + ("/openai/v1" if prefixed else "/v1")
        kind = OpenAIConfig if provider == "openai" else OpenAIResponsesConfig
        config = kind(model="gpt-4o-mini", api_key="test-key", base_url=url, max_retries=0)
    elif provider == "anthropic":
        url = server.url + ("/anthropic" if prefixed else "")
        config = AnthropicConfig(model="claude-sonnet-4-5", api_key="test-key", base_url=url, max_retries=0)
    else:
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", server.url + ("/gemini" if prefixed else ""))
        monkeypatch.delenv("GOOGLE_GENAI_USE_VERTEXAI", raising=False)
        config = GeminiConfig(model="gemini-2.5-flash", api_key="test-key")
    return FilesAPI(config)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_files_api_round_trip(
    provider: str, dock: FileDockServer, face: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = files_api(provider, dock, face, monkeypatch)
    payload = f"payload {uuid.uuid4()}".encode()
    uploaded = await api.upload(data=payload, filename="notes.txt")
    assert uploaded.bytes_count in (len(payload), None)
    assert uploaded.file_id in {f.file_id for f in await api.list()}
    content = await api.read(uploaded.file_id)
    assert content.data == payload
    await api.delete(uploaded.file_id)
    assert uploaded.file_id not in {f.file_id for f in await api.list()}


async def test_every_provider_lists_the_one_store(
    make_dock: Callable[..., FileDockServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = make_dock()
    anthropic_api = files_api("anthropic", server, "root", monkeypatch)
    uploaded = await anthropic_api.upload(data=b"shared", filename="shared.txt")
    listed = {
        provider: [f.filename for f in await files_api(provider, server, "root", monkeypatch).list()]
        for provider in PROVIDERS
    }
    assert listed == {provider: ["shared.txt"] for provider in PROVIDERS}
    await anthropic_api.delete(uploaded.file_id)


@pytest.mark.parametrize("provider", ["anthropic", "gemini"])
async def test_vendor_policy_makes_read_fail_as_the_vendor_does(
    provider: str, vendor_dock: FileDockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = files_api(provider, vendor_dock, "root", monkeypatch)
    uploaded = await api.upload(data=b"private", filename="private.txt")
    with pytest.raises(Exception) as caught:  # each SDK raises its own class
        await api.read(uploaded.file_id)
    # Anthropic answers 400 (anthropic 2.x raises FileNotDownloadableError); AG2's Gemini client
    # refuses by itself once the File has no downloadUri.
    error = caught.value
    assert isinstance(error, NotImplementedError) or getattr(error, "status_code", None) == 400
