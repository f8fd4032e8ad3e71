"""Byte sizes with units, as `--max-bytes` and `--part-size` take them and `files ls` shows them."""

import pytest

from app.core.units import human_size, parse_size


@pytest.mark.parametrize(
    ("text", "size"),
    [
        pytest.param("4096", 4096, id="bytes"),
        pytest.param("10GB", 10_000_000_000, id="decimal"),
        pytest.param("512MiB", 512 * 1024 * 1024, id="binary"),
        pytest.param("1.5 kib", 1536, id="fraction-and-case"),
        pytest.param("3tb", 3 * 10**12, id="lower-case"),
    ],
)
def test_parse_size_reads_units(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "ten", "5 parsecs", "-1", "1e9"])
def test_parse_size_refuses_what_is_not_a_size(text: str) -> None:
    with pytest.raises(ValueError, match="512MiB"):
        parse_size(text)


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (50 * 1024 * 1024, "50.0 MiB"),
        (3 * 1024**5, "3.0 PiB"),
    ],
)
def test_human_size_picks_the_largest_unit(size: int, shown: str) -> None:
    assert human_size(size) == shown
