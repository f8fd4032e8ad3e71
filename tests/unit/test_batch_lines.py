"""Reading a batch's input line by line, and the checks each line and the whole file get."""

import json
from collections.abc import AsyncIterator

import pytest

from app.core.batch_lines import InputCheck, LineTooLong, embedding_inputs, parse_request, read_lines
from app.core.records import BatchLineError

CHAT = "/v1/chat/completions"


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def collect(*parts: bytes, limit: int = 100) -> list[tuple[int, bytes]]:
    return [item async for item in read_lines(chunks(*parts), limit)]


async def test_read_lines_joins_lines_split_across_chunks_and_keeps_blank_ones() -> None:
    assert await collect(b"ab", b"c\n\nde", b"f") == [(1, b"abc"), (2, b""), (3, b"def")]


async def test_read_lines_refuses_a_line_over_the_limit_with_its_number() -> None:
    with pytest.raises(LineTooLong) as caught:
        await collect(b"ok\n", b"x" * 50, b"x" * 60, limit=100)
    assert caught.value.line == 2


def line(**fields: object) -> bytes:
    base: dict[str, object] = {"custom_id": "a", "method": "POST", "url": CHAT, "body": {"model": "m"}}
    return json.dumps({**base, **fields}).encode()


def test_parse_request_names_the_first_fault_and_its_param() -> None:
    fault = parse_request(7, line(custom_id=3), CHAT)
    assert fault == BatchLineError(
        "invalid_type", "Invalid type for 'custom_id': expected a string.", 7, "custom_id"
    )


@pytest.mark.parametrize(
    ("value", "count"),
    [("one", 1), (["a", "b", "c"], 3), ([1, 2, 3], 1), ([[1, 2], [3]], 2)],
    ids=["string", "strings", "tokens", "token-lists"],
)
def test_embedding_inputs_counts_each_input_once(value: object, count: int) -> None:
    assert embedding_inputs({"input": value}) == count


def test_input_check_of_a_blank_file_is_empty_file() -> None:
    check = InputCheck(CHAT)
    check.feed(1, b"  ")
    assert [e.code for e in check.finish()] == ["empty_file"]


def test_input_check_takes_the_model_of_the_first_request() -> None:
    check = InputCheck(CHAT)
    check.feed(1, line(custom_id="a", body={"model": "first"}))
    check.feed(2, line(custom_id="b", body={"model": "second"}))
    assert (check.finish(), check.model, check.requests) == ([], "first", 2)
