"""Hypothesis fuzzing of the Anthropic and Gemini routes, which have no OpenAPI schema (their
sub-apps publish none): random ids, query parameters, headers and bodies on every route, on the
bare root and under each prefix; and every place the OpenAI face parses JSON a client sent
(Uploads bodies, the `expires_after` form field, batch file lines), which schemathesis cannot
reach. Never a 5xx, and every error is in the dialect's own JSON."""

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

# JSON documents that break naive parsers: deep nesting (RecursionError), numbers over Python's
# 4300-digit int limit, NaN and Infinity, duplicate keys, very long strings and lone surrogates.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | any_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3),
    max_leaves=8,
).map(json.dumps)
depth = st.sampled_from([127, 128, 129, 1000, 5000, 100_000])
hostile_json = st.one_of(
    depth.map(lambda n: "[" * n + "]" * n),
    depth.map(lambda n: "[" * n),
    depth.map(lambda n: '{"a":' * n + "1" + "}" * n),
    st.sampled_from([4300, 4301, 5000, 100_000]).map(lambda n: "9" * n),
    st.sampled_from([100, 101, 400]).map(lambda n: "0." + "1" * n),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999999", '"\\ud800"', '"\\udc80x"']),
    json_values.map(lambda v: '{"a": ' + v + ', "a": ' + v + "}"),  # duplicate keys
    st.sampled_from([1000, 60_000]).map(lambda n: '"' + "x" * n + '"'),  # very long strings
    json_values,
)


def in_object(name: str, value: str) -> str:
    """`value` as a field of an otherwise valid-looking object, or the whole document."""
    return '{"' + name + '": ' + value + "}"


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
    plain = json.dumps({"file": {"displayName": draw(any_text), "mimeType": draw(any_text)}})
    start_field = draw(st.sampled_from(["sizeBytes", "displayName", "mimeType"]))
    document = draw(hostile_json)
    start_body = draw(
        st.sampled_from(
            [
                plain,
                document,
                in_object("file", document),
                in_object("file", in_object(start_field, document)),
            ]
        )
    )
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
    base = GEMINI
    if method == "POST" and draw(st.booleans()):  # a start request, so its JSON body is read
        base = {**GEMINI, "x-goog-upload-protocol": "resumable", "x-goog-upload-command": "start"}
    return Call(method, root + path, params, draw(headers(base, names)), body)


@st.composite
def openai_json_calls(draw: st.DrawFn) -> Call:
    """Every place the OpenAI face parses JSON a client sent: bodies, a form field, batch lines."""
    root = draw(st.sampled_from(["/v1", "/openai/v1"]))
    upload_id = draw(st.sampled_from(["upload_" + "A" * 24, draw(an_id("upload_"))]))
    document = draw(hostile_json)
    upload_field = draw(st.sampled_from(["filename", "purpose", "bytes", "mime_type", "expires_after"]))
    kind = draw(st.sampled_from(["create", "complete", "expires_after", "batch"]))
    json_headers = {"content-type": "application/json"}
    if kind == "create":
        body = draw(st.sampled_from([document, in_object(upload_field, document)]))
        return Call(
            "POST", f"{root}/uploads", headers=json_headers, content=body.encode("utf-8", "surrogatepass")
        )
    if kind == "complete":
        body = draw(st.sampled_from([document, in_object("part_ids", document), in_object("md5", document)]))
        return Call(
            "POST",
            f"{root}/uploads/{upload_id}/complete",
            headers=json_headers,
            content=body.encode("utf-8", "surrogatepass"),
        )
    if kind == "expires_after":
        fields = [
            ("purpose", b"user_data"),
            ("expires_after", document.encode("utf-8", "surrogatepass")[:65536]),
        ]
        return multipart_call(f"{root}/files", fields, "a.txt", b"hello")
    line = document.encode("utf-8", "surrogatepass")
    return multipart_call(
        f"{root}/files", [("purpose", b"batch")], "b.jsonl", b'{"custom_id": "1"}\n' + line + b"\n"
    )


def multipart_call(path: str, fields: list[tuple[str, bytes]], filename: str, content: bytes) -> Call:
    boundary = "fuzz-boundary"
    body = b""
    for name, value in [*fields, ("file", content)]:
        disposition = f'Content-Disposition: form-data; name="{name}"'
        if name == "file":
            disposition += f'; filename="{filename}"'
        body += f"--{boundary}\r\n{disposition}\r\n\r\n".encode() + value + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return Call(
        "POST", path, headers={"content-type": f"multipart/form-data; boundary={boundary}"}, content=body
    )


def openai_shape(body: Any) -> bool:
    return set(body.get("error", {})) == {"message", "type", "param", "code"}


def anthropic_shape(body: Any) -> bool:
    return body.get("type") == "error" and {"type", "message"} <= set(body.get("error", {}))


def gemini_shape(body: Any) -> bool:
    return set(body.get("error", {})) == {"code", "message", "status"}


@pytest.mark.parametrize(
    ("calls", "shape"),
    [
        pytest.param(anthropic_calls(), anthropic_shape, id="anthropic"),
        pytest.param(gemini_calls(), gemini_shape, id="gemini"),
        pytest.param(openai_json_calls(), openai_shape, id="openai-json"),
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
