"""Server-made ids: 24 base62 characters, each uniform over the alphabet."""

import pytest

from app.core import ids


def test_ids_are_24_alphabet_characters_and_differ() -> None:
    made = {ids.new_file_id() for _ in range(1000)}
    assert len(made) == 1000
    for file_id in made:
        body = file_id.removeprefix("file-")
        assert len(body) == ids.ID_BODY_LENGTH and set(body) <= set(ids.ALPHABET)
        assert ids.is_valid_file_id(file_id)


def test_random_bytes_that_would_bias_the_alphabet_are_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    # 248..255 would map onto the first 8 characters a second time: they must be passed over.
    reads = iter([bytes(range(248, 256)) * 6, bytes(range(48))])
    monkeypatch.setattr(ids.secrets, "token_bytes", lambda n: next(reads)[:n])
    assert ids.new_blob_key() == ids.ALPHABET[:24]
