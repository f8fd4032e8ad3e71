"""Hypothesis fuzzing of the Anthropic and Gemini routes, which have no OpenAPI schema (their
sub-apps publish none): random ids, query parameters, headers and bodies on every route, on the
bare root and under each prefix. Never a 5xx, and every error is in the dialect's own JSON."""

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.conftest import STATS, Timer
from tests.servers import FileDockServer

EXAMPLES = 800  # per dialect
ANTHROPIC = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
GEMINI = {"x-goog-api-key": "k"}
HOSTILE = ["' OR '1'='1", "../../etc/passwd", "..%2F..%2Fetc", "%00", "\x00", "😀", "a" * 3000, "-1", ""]

printable = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)
any_text = st.text(st.characters(codec="utf-8"), max_size=40) | st.sampled_from(HOSTILE)
numbers = st.integers(-(2**70), 2**70).map(str)


@dataclass
class Call:
    method: str
    path: str
    params: list[tuple[str, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes = b""


def an_id(prefix: str) -> st.SearchStrategy[str]:
    """Ids that look right, almost right, or nothing like it; quoted for the URL path."""
    raw = st.one_of(any_text, any_text.map(lambda s: prefix + s), st.just(prefix + "A" * 24))
    return raw.map(lambda s: quote(s, safe=""))


def query(names: list[str]) -> st.SearchStrategy[list[tuple[str, str]]]:
    pair = st.tuples(st.sampled_from([*names, "unknown", "__proto__"]), any_text | numbers)
    return st.lists(pair, max_size=4)


def headers(base: dict[str, str], names: list[str]) -> st.SearchStrategy[dict[str, str]]:
    value = printable.map(str.strip) | numbers  # h11 refuses a value with outer whitespace
    extra = st.dictionaries(st.sampled_from(names), value, max_size=3)
    return extra.map(lambda more: {**base, **more})


@st.composite
def anthropic_calls(draw: st.DrawFn) -> Call:
    root = draw(st.sampled_from(["", "/anthropic"]))
    file_id = draw(an_id("file_"))
    method, path = draw(
        st.sampled_from(
            [
                ("GET", "/v1/files"),
                ("POST", "/v1/files"),
                ("GET", f"/v1/files/{file_id}"),
                ("DELETE", f"/v1/files/{file_id}"),
                ("GET", f"/v1/files/{file_id}/content"),
            ]
        )
    )
    names = ["anthropic-version", "anthropic-beta", "range", "if-none-match", "content-type"]
    return Call(
        method,
        root + path,
        draw(query(["limit", "after_id", "before_id", "ids[]", "beta"])),
        draw(headers(ANTHROPIC, names)),
        draw(st.binary(max_size=200)) if method == "POST" else b"",
    )


@st.composite
def gemini_calls(draw: st.DrawFn) -> Call:
    root = draw(st.sampled_from(["", "/gemini"]))
    version = draw(st.sampled_from(["v1beta", "v1"]))
    name = draw(an_id(""))
    start_body = json.dumps({"file": {"displayName": draw(any_text), "mimeType": draw(any_text)}})
    method, path, body = draw(
        st.sampled_from(
            [
                ("GET", f"/{version}/files", b""),
                ("GET", f"/{version}/files/{name}", b""),
                ("GET", f"/{version}/files/{name}:download", b""),
                ("DELETE", f"/{version}/files/{name}", b""),
                ("POST", f"/upload/{version}/files", start_body.encode()),
            ]
        )
    )
    names = [
        "x-goog-upload-protocol",
        "x-goog-upload-command",
        "x-goog-upload-offset",
        "x-goog-upload-header-content-length",
        "x-goog-upload-header-content-type",
        "x-goog-upload-file-name",
        "range",
    ]
    params = draw(query(["pageSize", "pageToken", "alt", "upload_id", "upload_protocol"]))
    return Call(method, root + path, params, draw(headers(GEMINI, names)), body)


def anthropic_shape(body: Any) -> bool:
    return body.get("type") == "error" and {"type", "message"} <= set(body.get("error", {}))


def gemini_shape(body: Any) -> bool:
    return set(body.get("error", {})) == {"code", "message", "status"}


@pytest.mark.parametrize(
    ("calls", "shape"),
    [
        pytest.param(anthropic_calls(), anthropic_shape, id="anthropic"),
        pytest.param(gemini_calls(), gemini_shape, id="gemini"),
    ],
)
def test_fuzz_dialect_routes(fuzz_server: FileDockServer, calls: Any, shape: Any) -> None:
    count = 0

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(call=calls)
    def run(call: Call) -> None:
        nonlocal count
        count += 1
        response = client.request(
            call.method, call.path, params=call.params, headers=call.headers, content=call.content
        )
        assert response.status_code < 500, (call, response.text)
        if response.status_code >= 400 and call.method != "HEAD":
            assert shape(response.json()), (call, response.text)

    with httpx.Client(base_url=fuzz_server.url, timeout=10) as client, Timer() as timer:
        run()
    STATS.add("hypothesis", count, timer.seconds)
    assert count > 0
