"""`app.purposes`: per-purpose extensions, the streaming JSONL check and `expires_after`."""

import os
from pathlib import Path

import pytest

from app.core.errors import InvalidRequest
from app.dialects.openai import purposes
from app.dialects.openai.purposes import JsonlChecker, check_expires_after, check_extension, check_purpose
from app.settings import Settings

THIRTY_DAYS = 2_592_000


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    """Defaults only: FILEDOCK_* variables from the shell must not leak in."""
    for name in [n for n in os.environ if n.startswith("FILEDOCK_")]:
        monkeypatch.delenv(name)
    return Settings(data_dir=tmp_path)


def feed_all(checker: JsonlChecker, *chunks: bytes) -> None:
    for chunk in chunks:
        checker.feed(chunk)
    checker.finish()


# --- JsonlChecker --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "chunks",
    [
        pytest.param([b'{"a": 1}\n{"b": 2}\n'], id="one-chunk"),
        pytest.param([b'{"a"', b": 1}\n{", b'"b": 2}', b"\n"], id="lines-split-across-chunks"),
        pytest.param([bytes([c]) for c in b'{"a": 1}\n{"b": 2}\n'], id="byte-by-byte"),
        pytest.param([b'{"a": 1}\n{"b": 2}'], id="no-final-newline"),
        pytest.param([b'{"a": 1}\r\n{"b": 2}\r\n'], id="crlf"),
        pytest.param([b'{"a": 1}\n\n   \n{"b": 2}\n'], id="blank-lines"),
        pytest.param([], id="empty-file"),
    ],
)
def test_jsonl_checker_accepts_json_objects(chunks: list[bytes]) -> None:
    feed_all(JsonlChecker(max_line_bytes=1024), *chunks)


def test_jsonl_checker_accepts_a_utf8_character_split_across_chunks() -> None:
    encoded = '{"text": "✓"}\n'.encode()
    split = encoded.index("✓".encode()) + 1
    feed_all(JsonlChecker(max_line_bytes=1024), encoded[:split], encoded[split:])


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b'{"a": "\xff"}\n', id="invalid-byte"),
        pytest.param('{"a": 1}\n'.encode("utf-16"), id="utf-16"),
        pytest.param(b'{"a": "\xc3"}', id="truncated-sequence-at-end"),
    ],
)
def test_jsonl_checker_refuses_non_utf8(content: bytes) -> None:
    with pytest.raises(InvalidRequest, match="Must be utf-8 encoded"):
        feed_all(JsonlChecker(max_line_bytes=1024), content)


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(b"[1, 2]", id="array"),
        pytest.param(b"42", id="number"),
        pytest.param(b'"text"', id="string"),
        pytest.param(b"null", id="null"),
        pytest.param(b"true", id="boolean"),
        pytest.param(b"not json", id="not-json"),
        pytest.param(b'{"a": 1', id="unclosed-object"),
        pytest.param(b'{"a": 1} {"b": 2}', id="two-objects-on-one-line"),
    ],
)
def test_jsonl_checker_refuses_lines_that_are_not_objects(line: bytes) -> None:
    with pytest.raises(InvalidRequest, match=r"line 2 is not (a JSON object|valid JSON)"):
        feed_all(JsonlChecker(max_line_bytes=1024), b'{"ok": 1}\n' + line + b"\n")


def test_jsonl_checker_checks_the_last_line_without_newline() -> None:
    checker = JsonlChecker(max_line_bytes=1024)
    checker.feed(b'{"ok": 1}\n[1]')
    with pytest.raises(InvalidRequest, match="line 2"):
        checker.finish()


def test_jsonl_checker_accepts_a_line_of_exactly_the_maximum() -> None:
    line = b'{"a": "' + b"x" * 20 + b'"}'
    feed_all(JsonlChecker(max_line_bytes=len(line)), line[:10], line[10:], b"\n")


def test_jsonl_checker_refuses_an_overlong_line_spanning_chunks() -> None:
    checker = JsonlChecker(max_line_bytes=16)
    checker.feed(b'{"a": "xxxx')
    with pytest.raises(InvalidRequest, match="line 1 is longer than 16 bytes"):
        checker.feed(b'xxxxxxxxxxxxxxxx"}\n')


def test_jsonl_checker_refuses_an_overlong_line_inside_one_chunk() -> None:
    # Whether a line is too long must not depend on where the network split the body.
    with pytest.raises(InvalidRequest, match="line 2 is longer than 16 bytes"):
        JsonlChecker(max_line_bytes=16).feed(b'{}\n{"a": "xxxxxxxxxxxxxxxxxxxx"}\n')


def test_jsonl_checker_refuses_an_overlong_unterminated_line_without_buffering_it_all() -> None:
    checker = JsonlChecker(max_line_bytes=16)
    with pytest.raises(InvalidRequest, match="longer than 16 bytes"):
        for _ in range(1000):
            checker.feed(b"x" * 8)


# --- check_expires_after ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        pytest.param(3600, 3600, id="minimum"),
        pytest.param(THIRTY_DAYS, THIRTY_DAYS, id="maximum"),
        pytest.param("86400", 86400, id="form-text"),
    ],
)
def test_check_expires_after_accepts_the_inclusive_range(seconds: object, expected: int) -> None:
    assert check_expires_after("created_at", seconds) == expected


@pytest.mark.parametrize(
    ("seconds", "code"),
    [
        pytest.param(3599, "integer_below_min_value", id="below-minimum"),
        pytest.param(0, "integer_below_min_value", id="zero"),
        pytest.param(-3600, "integer_below_min_value", id="negative"),
        pytest.param("-3600", "integer_below_min_value", id="negative-text"),
        pytest.param(THIRTY_DAYS + 1, "integer_above_max_value", id="above-maximum"),
        pytest.param(10**30, "integer_above_max_value", id="huge"),
    ],
)
def test_check_expires_after_refuses_out_of_range_seconds(seconds: object, code: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        check_expires_after("created_at", seconds)
    assert (caught.value.param, caught.value.code) == ("expires_after.seconds", code)


@pytest.mark.parametrize(
    "seconds",
    [
        pytest.param(None, id="missing"),
        pytest.param(True, id="boolean"),
        pytest.param(3600.0, id="float"),
        pytest.param("3600.5", id="decimal-text"),
        pytest.param("an hour", id="words"),
        pytest.param("", id="empty-text"),
        pytest.param([3600], id="list"),
        pytest.param({"s": 3600}, id="object"),
    ],
)
def test_check_expires_after_refuses_non_integer_seconds(seconds: object) -> None:
    with pytest.raises(InvalidRequest) as caught:
        check_expires_after("created_at", seconds)
    assert (caught.value.param, caught.value.code) == ("expires_after.seconds", "invalid_type")


@pytest.mark.parametrize(
    "anchor",
    [
        pytest.param("updated_at", id="other-field"),
        pytest.param(None, id="missing"),
        pytest.param("", id="empty"),
        pytest.param("Created_At", id="case"),
    ],
)
def test_check_expires_after_refuses_anchors_other_than_created_at(anchor: str | None) -> None:
    with pytest.raises(InvalidRequest) as caught:
        check_expires_after(anchor, 3600)
    assert (caught.value.param, caught.value.code) == ("expires_after.anchor", "invalid_value")


def test_check_expires_after_checks_the_anchor_first() -> None:
    with pytest.raises(InvalidRequest) as caught:
        check_expires_after("updated_at", "nonsense")
    assert caught.value.param == "expires_after.anchor"


# --- check_extension and check_purpose ---------------------------------------------------------


@pytest.mark.parametrize(
    ("purpose", "filename"),
    [
        pytest.param("batch", "in.jsonl", id="batch-jsonl"),
        pytest.param("batch", "IN.JSONL", id="batch-upper-case"),
        pytest.param("fine-tune", "train.jsonl", id="fine-tune-jsonl"),
        pytest.param("evals", "eval.jsonl", id="evals-jsonl"),
        pytest.param("batch", "upload", id="batch-bare-bytes"),
        pytest.param("fine-tune", "upload", id="fine-tune-bare-bytes"),
        pytest.param("vision", "cat.PNG", id="vision-png"),
        pytest.param("vision", "cat.webp", id="vision-webp"),
        pytest.param("assistants", "notes.txt", id="assistants-txt"),
        pytest.param("assistants", "paper.pdf", id="assistants-pdf"),
        pytest.param("user_data", "anything.bin", id="user-data-bin"),
        pytest.param("user_data", "upload", id="user-data-no-extension"),
    ],
)
def test_check_extension_accepts_the_purposes_formats(
    settings: Settings, purpose: str, filename: str
) -> None:
    check_extension(purpose, filename, settings)


@pytest.mark.parametrize(
    ("purpose", "filename", "message"),
    [
        pytest.param("batch", "in.txt", "Invalid file format for Batch API. Must be .jsonl", id="batch-txt"),
        pytest.param("batch", "in.json", "Invalid file format for Batch API", id="batch-json"),
        pytest.param("batch", "in.jsonl.txt", "Must be .jsonl", id="batch-double-extension"),
        pytest.param("fine-tune", "train.csv", "Invalid file format for Fine-Tuning API", id="fine-tune-csv"),
        pytest.param("evals", "eval.json", "Invalid file format for Fine-Tuning API", id="evals-json"),
        pytest.param("vision", "cat.pdf", "[.pdf] are not supported for purpose 'vision'", id="vision-pdf"),
        pytest.param(
            "assistants", "x.exe", "[.exe] are not supported for purpose 'assistants'", id="assistants-exe"
        ),
        pytest.param("assistants", "Makefile", "[none] are not supported", id="assistants-no-extension"),
    ],
)
def test_check_extension_refuses_other_formats(
    settings: Settings, purpose: str, filename: str, message: str
) -> None:
    with pytest.raises(InvalidRequest, match=message.replace("[", r"\[").replace(".", r"\.")):
        check_extension(purpose, filename, settings)


def test_check_extension_uses_the_configured_assistants_extensions(settings: Settings) -> None:
    custom = settings.model_copy(update={"assistants_extensions": [".exe"]})
    check_extension("assistants", "tool.exe", custom)
    with pytest.raises(InvalidRequest):
        check_extension("assistants", "notes.txt", custom)


def test_check_extension_accepts_any_assistants_file_when_the_list_is_empty(settings: Settings) -> None:
    check_extension("assistants", "tool.exe", settings.model_copy(update={"assistants_extensions": []}))


@pytest.mark.parametrize("purpose", [pytest.param(p, id=p) for p in purposes.CREATABLE_PURPOSES])
def test_check_purpose_accepts_creatable_purposes(purpose: str) -> None:
    assert check_purpose(purpose) == purpose


@pytest.mark.parametrize(
    ("purpose", "code"),
    [
        pytest.param(None, "missing_required_parameter", id="missing"),
        pytest.param("", "missing_required_parameter", id="empty"),
        pytest.param("batch_output", None, id="server-only"),
        pytest.param("Batch", None, id="case"),
        pytest.param("nope", None, id="unknown"),
    ],
)
def test_check_purpose_refuses_others(purpose: str | None, code: str | None) -> None:
    with pytest.raises(InvalidRequest) as caught:
        check_purpose(purpose)
    assert (caught.value.param, caught.value.code) == ("purpose", code)


def test_size_limit_of_batch_is_the_smaller_limit(settings: Settings) -> None:
    small = settings.model_copy(update={"max_file_bytes": 100, "max_batch_file_bytes": 500})
    assert purposes.size_limit("batch", small) == 100
    assert purposes.size_limit("batch", settings) == settings.max_batch_file_bytes
