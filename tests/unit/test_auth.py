"""`app.auth`: parsing configured keys, loopback addresses and the rate limiter's arithmetic."""

import pytest

from app.core.errors import RateLimited
from app.core.tenancy import RateLimiter, hash_key, is_loopback, new_key, parse_configured_keys, shown_prefix


def test_configured_keys_pair_with_projects_and_bare_keys_belong_to_default() -> None:
    parsed = parse_configured_keys(["sk-a=alpha", "sk-plain", "c2VjcmV0=="])
    by_key = {key: parsed[hash_key(key)].project for key in ("sk-a", "sk-plain", "c2VjcmV0==")}
    assert by_key == {"sk-a": "alpha", "sk-plain": "default", "c2VjcmV0==": "default"}


def test_configured_keys_are_kept_only_as_hashes() -> None:
    parsed = parse_configured_keys(["sk-secret-value=alpha"])
    assert "sk-secret-value" not in repr(parsed)


def test_generated_keys_are_random_and_long() -> None:
    first, second = new_key(), new_key()
    assert first != second and first.startswith("fd-") and len(first) == 46
    assert shown_prefix(first) == first[:7] and shown_prefix("short") == ""


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.9.9.9", True), ("::1", True), ("[::1]", True), ("localhost", True),
     ("0.0.0.0", False), ("::", False), ("10.0.0.5", False), ("example.com", False)],
)  # fmt: skip
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_rate_limiter_allows_a_burst_then_spaces_requests() -> None:
    now = [1000.0]
    limiter = RateLimiter(per_minute=6, clock=lambda: now[0])
    for _ in range(6):
        limiter.check("key")
    with pytest.raises(RateLimited) as refused:
        limiter.check("key")
    assert refused.value.retry_after_seconds == pytest.approx(10.0)
    limiter.check("other-key")  # each key has its own budget
    now[0] += 10.0
    limiter.check("key")  # one interval later, one more request
    with pytest.raises(RateLimited):
        limiter.check("key")
