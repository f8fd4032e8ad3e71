"""`app.ids`: one core id rendered per dialect and parsed back; foreign ids never parse."""

import pytest

from app.core import ids
from app.dialects.anthropic import ids as anthropic_ids
from app.dialects.gemini import ids as gemini_ids


def test_gemini_id_round_trips_and_is_lowercase_alphanumeric() -> None:
    for _ in range(200):
        core = ids.new_file_id()
        gemini = gemini_ids.to_gemini_id(core)
        assert len(gemini) == 28 and gemini.isalnum() and gemini == gemini.lower()
        assert gemini_ids.from_gemini_id(gemini) == core
        assert gemini_ids.from_gemini_id("files/" + gemini) == core


def test_anthropic_id_round_trips() -> None:
    core = ids.new_file_id()
    assert anthropic_ids.to_anthropic_id(core) == "file_" + core.removeprefix("file-")
    assert anthropic_ids.from_anthropic_id(anthropic_ids.to_anthropic_id(core)) == core


@pytest.mark.parametrize(
    "value", ["file-AAAAAAAAAAAAAAAAAAAAAAAA", "file_id", "z" * 28, "0" * 27, "A" * 28, "../etc/passwd", ""]
)
def test_foreign_ids_do_not_parse_as_gemini(value: str) -> None:
    assert gemini_ids.from_gemini_id(value) is None


@pytest.mark.parametrize("value", ["file-AAAAAAAAAAAAAAAAAAAAAAAA", "file_id", "file_" + "A" * 25, "0" * 28])
def test_foreign_ids_do_not_parse_as_anthropic(value: str) -> None:
    assert anthropic_ids.from_anthropic_id(value) is None
