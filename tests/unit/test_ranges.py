"""`app.headers`' Range and ETag helpers: pure functions, tested without a server."""

import pytest

from app.http.headers import (
    MalformedRange,
    UnsatisfiableRange,
    if_none_match_hits,
    if_range_allows,
    parse_range,
    quoted_etag,
)

ETAG = '"abc123"'


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param("bytes=0-99", (0, 100), id="a-b"),
        pytest.param("bytes=10-10", (10, 11), id="one-byte"),
        pytest.param("bytes=50-500", (50, 100), id="end-clipped"),
        pytest.param("bytes=90-", (90, 100), id="open-ended"),
        pytest.param("bytes=-10", (90, 100), id="suffix"),
        pytest.param("bytes=-1000", (0, 100), id="suffix-longer-than-file"),
        pytest.param("Bytes=1-2", (1, 3), id="unit-case-insensitive"),
        pytest.param(" bytes = 1 - 2 ", (1, 3), id="spaces"),
    ],
)
def test_parse_range_returns_start_and_exclusive_end(header: str, expected: tuple[int, int]) -> None:
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("bytes=0-1,3-4", id="multi-range"),
        pytest.param("bytes=5-2", id="end-before-start"),
        pytest.param("bytes=-", id="empty-range"),
        pytest.param("bytes=a-b", id="not-numbers"),
        pytest.param("bytes=-+5", id="signed"),
        pytest.param("items=0-1", id="other-unit"),
        pytest.param("bytes 0-1", id="no-equals"),
        pytest.param("", id="empty"),
    ],
)
def test_parse_range_rejects_malformed_headers(header: str) -> None:
    with pytest.raises(MalformedRange) as caught:
        parse_range(header, 100)
    assert caught.value.value == header


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=100-200", "bytes=-0", "bytes=0-"])
def test_parse_range_rejects_ranges_outside_the_file(header: str) -> None:
    size = 0 if header == "bytes=0-" else 100
    with pytest.raises(UnsatisfiableRange) as caught:
        parse_range(header, size)
    assert caught.value.size == size


def test_parse_range_gives_an_empty_slice_for_a_suffix_of_an_empty_file() -> None:
    assert parse_range("bytes=-5", 0) == (0, 0)


def test_quoted_etag_wraps_the_hash_in_quotes() -> None:
    assert quoted_etag("abc123") == ETAG


@pytest.mark.parametrize("header", [ETAG, f"W/{ETAG}", f'"x", {ETAG}', "*"])
def test_if_none_match_hits_our_etag(header: str) -> None:
    assert if_none_match_hits(header, ETAG)


def test_if_none_match_misses_other_etags() -> None:
    assert not if_none_match_hits('"x", W/"y"', ETAG)


def test_if_range_allows_our_exact_etag() -> None:
    assert if_range_allows(f" {ETAG} ", ETAG)


@pytest.mark.parametrize("header", [f"W/{ETAG}", '"other"', "Wed, 21 Oct 2015 07:28:00 GMT"])
def test_if_range_refuses_weak_tags_other_tags_and_dates(header: str) -> None:
    assert not if_range_allows(header, ETAG)


def test_no_etag_while_the_hash_is_unknown() -> None:
    assert quoted_etag(None) is None


@pytest.mark.parametrize("header", [ETAG, '""', "*"])
def test_if_range_refuses_everything_without_an_etag(header: str) -> None:
    assert not if_range_allows(header, None)


def test_if_none_match_without_an_etag_hits_only_the_star() -> None:
    assert if_none_match_hits("*", None)
    assert not if_none_match_hits(ETAG, None)
