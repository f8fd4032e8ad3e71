"""`app.multipart`: the pull-style multipart reader, fed from async generators of bytes."""

from collections.abc import AsyncIterator

import pytest

from app.core.errors import InvalidRequest, UnsupportedMediaType
from app.http.multipart import FORM_OVERHEAD_BYTES, MAX_FIELD_BYTES, MAX_PARTS, FormReader, Part, boundary_of

BOUNDARY = b"xYzZY"


def part(name: str, content: bytes, filename: str | None = None, content_type: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
    head = f"--{BOUNDARY.decode()}\r\nContent-Disposition: {disposition}\r\n"
    if content_type:
        head += f"Content-Type: {content_type}\r\n"
    return head.encode() + b"\r\n" + content + b"\r\n"


def form(*parts: bytes) -> bytes:
    return b"".join(parts) + b"--" + BOUNDARY + b"--\r\n"


async def chunked(body: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def read_all(body: bytes, chunk_size: int = 1 << 16) -> list[tuple[Part, bytes]]:
    """Every part with its whole content, read the way the upload route reads a form."""
    reader = FormReader(chunked(body, chunk_size), BOUNDARY)
    found = []
    async for each in reader.parts():
        found.append((each, b"".join([chunk async for chunk in reader.chunks()])))
    return found


SDK_FORM = form(
    part("purpose", b"batch"),
    part("expires_after[anchor]", b"created_at"),
    part("expires_after[seconds]", b"3600"),
    part("file", b'{"a": 1}\r\n{"b": 2}\n', filename="in.jsonl", content_type="application/octet-stream"),
)


@pytest.mark.parametrize(
    "chunk_size",
    [pytest.param(1, id="byte-by-byte"), pytest.param(7, id="small"), pytest.param(1 << 16, id="whole")],
)
async def test_form_reader_yields_parts_in_order_whatever_the_chunking(chunk_size: int) -> None:
    parts = await read_all(SDK_FORM, chunk_size)
    assert [(p.name, content) for p, content in parts] == [
        ("purpose", b"batch"),
        ("expires_after[anchor]", b"created_at"),
        ("expires_after[seconds]", b"3600"),
        ("file", b'{"a": 1}\r\n{"b": 2}\n'),
    ]


async def test_form_reader_reports_filename_and_content_type_of_the_file_part() -> None:
    file_part, _ = (await read_all(SDK_FORM))[-1]
    assert file_part == Part(name="file", filename="in.jsonl", content_type="application/octet-stream")


async def test_form_reader_text_fields_have_no_filename() -> None:
    field, _ = (await read_all(SDK_FORM))[0]
    assert (field.filename, field.content_type) == (None, None)


async def test_form_reader_decodes_utf8_filenames() -> None:
    parts = await read_all(form(part("file", b"x", filename="données ✓ 測試.txt")), chunk_size=3)
    assert parts[0][0].filename == "données ✓ 測試.txt"


async def test_form_reader_decodes_filename_star() -> None:
    disposition = "form-data; name=\"file\"; filename*=UTF-8''%E2%9C%93.txt"
    head = f"--{BOUNDARY.decode()}\r\nContent-Disposition: {disposition}\r\n\r\nx\r\n"
    parts = await read_all(form(head.encode()))
    assert parts[0][0].filename == "✓.txt"


async def test_form_reader_keeps_binary_content_byte_exact() -> None:
    payload = bytes(range(256)) * 50 + b"\r\n--" + BOUNDARY[:-1]  # looks almost like a boundary
    parts = await read_all(form(part("file", payload, filename="b.bin")), chunk_size=333)
    assert parts[0][1] == payload


async def test_form_reader_keeps_an_empty_file() -> None:
    assert (await read_all(form(part("file", b"", filename="empty.txt"))))[0][1] == b""


async def test_form_reader_streams_file_data_in_chunks() -> None:
    reader = FormReader(chunked(form(part("file", b"z" * 10_000, filename="z.bin")), 1000), BOUNDARY)
    async for _ in reader.parts():
        sizes = [len(chunk) async for chunk in reader.chunks()]
    assert sum(sizes) == 10_000
    assert len(sizes) > 1


async def test_form_reader_skips_unread_part_data() -> None:
    body = form(part("file", b"skipped" * 100, filename="a.bin"), part("purpose", b"user_data"))
    reader = FormReader(chunked(body, 50), BOUNDARY)
    names = [p.name async for p in reader.parts()]
    assert names == ["file", "purpose"]


async def test_form_reader_read_text_returns_the_field_value() -> None:
    reader = FormReader(chunked(form(part("purpose", "user_data ✓".encode())), 4), BOUNDARY)
    async for each in reader.parts():
        assert await reader.read_text(each.name) == "user_data ✓"


async def test_form_reader_read_text_refuses_overlong_fields() -> None:
    reader = FormReader(chunked(form(part("purpose", b"a" * (MAX_FIELD_BYTES + 1))), 4096), BOUNDARY)
    with pytest.raises(InvalidRequest) as caught:
        async for each in reader.parts():
            await reader.read_text(each.name)
    assert caught.value.param == "purpose"


async def test_form_reader_read_text_refuses_invalid_utf8() -> None:
    reader = FormReader(chunked(form(part("purpose", b"\xff\xfe")), 4096), BOUNDARY)
    with pytest.raises(InvalidRequest, match="not valid UTF-8"):
        async for each in reader.parts():
            await reader.read_text(each.name)


async def test_form_reader_discard_rest_reads_the_body_to_its_end() -> None:
    consumed: list[bytes] = []

    async def body() -> AsyncIterator[bytes]:
        async for chunk in chunked(SDK_FORM, 10):
            consumed.append(chunk)
            yield chunk

    reader = FormReader(body(), BOUNDARY)
    async for _ in reader.parts():
        break
    await reader.discard_rest(max_bytes=1 << 20)
    assert b"".join(consumed) == SDK_FORM


async def test_form_reader_discard_rest_stops_after_max_bytes() -> None:
    consumed: list[bytes] = []

    async def endless() -> AsyncIterator[bytes]:
        while True:
            consumed.append(b"x" * 10)
            yield consumed[-1]

    await FormReader(endless(), BOUNDARY).discard_rest(max_bytes=100)
    assert sum(map(len, consumed)) == 110  # the first chunk past the limit ends it


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(SDK_FORM[:-20], id="truncated"),
        pytest.param(SDK_FORM[: SDK_FORM.index(b"\r\n\r\n")], id="truncated-in-headers"),
        pytest.param(b"", id="empty-body"),
        pytest.param(b"this is not multipart", id="garbage"),
        pytest.param(SDK_FORM.replace(BOUNDARY, b"other"), id="wrong-boundary"),
        pytest.param(
            form(b"--" + BOUNDARY + b"\r\nContent-Type: text/plain\r\n\r\nx\r\n"), id="no-content-disposition"
        ),
        pytest.param(form(*[part(f"f{i}", b"x") for i in range(MAX_PARTS + 1)]), id="too-many-parts"),
        pytest.param(
            form(
                b"--"
                + BOUNDARY
                + b'\r\nContent-Disposition: form-data; name="'
                + b"n" * 20_000
                + b'"\r\n\r\nx\r\n'
            ),
            id="overlong-part-header",
        ),
    ],
)
async def test_form_reader_refuses_malformed_bodies(body: bytes) -> None:
    with pytest.raises(InvalidRequest, match="Invalid multipart/form-data request body"):
        await read_all(body, chunk_size=64)


async def test_form_reader_allows_the_maximum_number_of_parts() -> None:
    parts = await read_all(form(*[part(f"f{i}", b"x") for i in range(MAX_PARTS)]))
    assert len(parts) == MAX_PARTS


async def test_form_reader_takes_its_part_limit_from_the_caller() -> None:
    body = form(*[part(f"f{i}", b"x") for i in range(3)])
    reader = FormReader(chunked(body, 64), BOUNDARY, max_parts=2)
    with pytest.raises(InvalidRequest, match="more than 2 parts"):
        async for _ in reader.parts():
            pass


async def test_form_reader_reads_the_body_to_its_end_after_the_closing_boundary() -> None:
    # A client that hangs up after the closing boundary, short of its Content-Length, must
    # surface here (Starlette raises ClientDisconnect from the stream), before a file is kept.
    class Gone(Exception):
        pass

    async def then_hang_up() -> AsyncIterator[bytes]:
        yield SDK_FORM
        raise Gone

    with pytest.raises(Gone):
        async for _ in FormReader(then_hang_up(), BOUNDARY).parts():
            pass


async def test_form_reader_refuses_more_than_a_mebibyte_after_the_closing_boundary() -> None:
    body = SDK_FORM + b"e" * (2 * FORM_OVERHEAD_BYTES)
    with pytest.raises(InvalidRequest, match="after the closing boundary"):
        await read_all(body)
    assert len(await read_all(SDK_FORM + b"epilogue")) == 4  # a little is ignored, as RFC 2046 says


def test_boundary_of_returns_the_boundary() -> None:
    assert boundary_of('multipart/form-data; boundary="abc123"') == b"abc123"


def test_boundary_of_is_case_insensitive_about_the_media_type() -> None:
    assert boundary_of("Multipart/Form-Data; boundary=abc") == b"abc"


@pytest.mark.parametrize(
    "content_type",
    [
        pytest.param(None, id="missing"),
        pytest.param("application/json", id="json"),
        pytest.param("application/x-www-form-urlencoded", id="urlencoded"),
        pytest.param("multipart/mixed; boundary=abc", id="multipart-mixed"),
    ],
)
def test_boundary_of_refuses_other_media_types(content_type: str | None) -> None:
    with pytest.raises(UnsupportedMediaType):
        boundary_of(content_type)


@pytest.mark.parametrize(
    "content_type",
    [
        pytest.param("multipart/form-data", id="no-boundary"),
        pytest.param("multipart/form-data; boundary=", id="empty-boundary"),
    ],
)
def test_boundary_of_refuses_multipart_without_boundary(content_type: str) -> None:
    with pytest.raises(InvalidRequest, match="no boundary"):
        boundary_of(content_type)
