"""`app.headers`: Content-Disposition parsing (multipart parts in) and encoding (downloads out)."""

import pytest

from app.core.policy import display_filename
from app.http.headers import content_disposition, parse_disposition_params


def test_parse_disposition_params_reads_name_and_filename() -> None:
    params = parse_disposition_params('form-data; name="file"; filename="a.jsonl"')
    assert params == {"name": "file", "filename": "a.jsonl"}


def test_parse_disposition_params_reads_unquoted_tokens() -> None:
    assert parse_disposition_params("form-data; name=purpose")["name"] == "purpose"


def test_parse_disposition_params_lowercases_parameter_names() -> None:
    assert parse_disposition_params('form-data; NAME="file"; FileName="a.txt"') == {
        "name": "file",
        "filename": "a.txt",
    }


def test_parse_disposition_params_keeps_raw_utf8() -> None:
    # The openai SDK sends non-ASCII names as raw UTF-8 inside filename="…".
    params = parse_disposition_params('form-data; name="file"; filename="données ✓ 測試.txt"')
    assert params["filename"] == "données ✓ 測試.txt"


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        pytest.param("say %22hi%22.txt", 'say "hi".txt', id="quote"),
        pytest.param("a%0Db%0Ac.txt", "a\rb\nc.txt", id="cr-lf-upper"),
        pytest.param("a%0db%0ac.txt", "a\rb\nc.txt", id="cr-lf-lower"),
        pytest.param("100%25.txt", "100%25.txt", id="other-escapes-untouched"),
        pytest.param("%2522.txt", "%2522.txt", id="no-double-decoding"),
    ],
)
def test_parse_disposition_params_decodes_form_escapes(raw: str, decoded: str) -> None:
    assert parse_disposition_params(f'form-data; name="file"; filename="{raw}"')["filename"] == decoded


def test_parse_disposition_params_unescapes_backslashes_in_quoted_strings() -> None:
    params = parse_disposition_params(r'form-data; name="file"; filename="a\"b\\c.txt"')
    assert params["filename"] == 'a"b\\c.txt'


def test_parse_disposition_params_keeps_semicolons_inside_quotes() -> None:
    params = parse_disposition_params('form-data; name="file"; filename="a; b=c.txt"')
    assert params["filename"] == "a; b=c.txt"


def test_parse_disposition_params_decodes_filename_star() -> None:
    params = parse_disposition_params(
        "form-data; name=\"file\"; filename*=UTF-8''donn%C3%A9es%20%E2%9C%93.txt"
    )
    assert params["filename"] == "données ✓.txt"


def test_parse_disposition_params_decodes_filename_star_with_language() -> None:
    params = parse_disposition_params("form-data; name=\"file\"; filename*=utf-8'fr'%C3%A9t%C3%A9.txt")
    assert params["filename"] == "été.txt"


def test_parse_disposition_params_decodes_latin1_filename_star() -> None:
    params = parse_disposition_params("form-data; name=\"file\"; filename*=ISO-8859-1''%E9t%E9.txt")
    assert params["filename"] == "été.txt"


def test_parse_disposition_params_falls_back_to_utf8_for_unknown_charsets() -> None:
    params = parse_disposition_params("form-data; name=\"file\"; filename*=no-such-charset''%C3%A9.txt")
    assert params["filename"] == "é.txt"


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(
            'form-data; name="file"; filename="plain.txt"; filename*=UTF-8\'\'%E2%9C%93.txt', id="star-last"
        ),
        pytest.param(
            'form-data; name="file"; filename*=UTF-8\'\'%E2%9C%93.txt; filename="plain.txt"', id="star-first"
        ),
    ],
)
def test_parse_disposition_params_prefers_filename_star(value: str) -> None:
    assert parse_disposition_params(value)["filename"] == "✓.txt"


def test_parse_disposition_params_without_filename_has_none() -> None:
    assert "filename" not in parse_disposition_params('form-data; name="file"')


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        pytest.param("a.txt", "a.txt", id="plain"),
        pytest.param("../../etc/passwd", "passwd", id="relative-path"),
        pytest.param("/abs/dir/name.txt", "name.txt", id="absolute-path"),
        pytest.param("C:\\dir\\win.txt", "win.txt", id="windows-path"),
        pytest.param("a\x00b\x1fc\x7f.txt", "abc.txt", id="control-characters"),
        pytest.param("  spaced.txt  ", "spaced.txt", id="surrounding-spaces"),
        pytest.param("données ✓.txt", "données ✓.txt", id="unicode"),
    ],
)
def test_display_filename_keeps_the_last_path_component(raw: str, shown: str) -> None:
    assert display_filename(raw) == shown


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(None, id="no-filename"),
        pytest.param("", id="empty"),
        pytest.param(".", id="dot"),
        pytest.param("..", id="dot-dot"),
        pytest.param("dir/", id="trailing-slash"),
        pytest.param("\x00\x01", id="only-control-characters"),
    ],
)
def test_display_filename_falls_back_to_the_default(raw: str | None) -> None:
    assert display_filename(raw) == "upload"
    assert display_filename(raw, default="other") == "other"


def test_content_disposition_is_plain_for_ascii_names() -> None:
    assert content_disposition("report.pdf") == 'attachment; filename="report.pdf"'


def test_content_disposition_adds_filename_star_for_unicode_names() -> None:
    header = content_disposition("données ✓.txt")
    assert header == "attachment; filename=\"donn_es _.txt\"; filename*=UTF-8''donn%C3%A9es%20%E2%9C%93.txt"


@pytest.mark.parametrize(
    "name",
    [
        pytest.param('say "hi".txt', id="quote"),
        pytest.param("back\\slash.txt", id="backslash"),
        pytest.param("a\r\nSet-Cookie: x=1", id="header-injection"),
    ],
)
def test_content_disposition_never_puts_quotes_backslashes_or_newlines_in_the_fallback(name: str) -> None:
    header = content_disposition(name)
    fallback = header.split('filename="')[1].split('"')[0]
    assert not set(fallback) & {'"', "\\", "\r", "\n"}
    assert "\r" not in header and "\n" not in header


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("données ✓ 測試.txt", id="unicode"),
        pytest.param('say "hi".txt', id="quote"),
        pytest.param("100% sure; really.txt", id="percent-semicolon"),
        pytest.param("emoji 🚀.bin", id="astral-plane"),
    ],
)
def test_content_disposition_round_trips_through_the_parser(name: str) -> None:
    assert parse_disposition_params(content_disposition(name))["filename"] == name
