"""Who is calling: API keys, the projects they belong to, open mode and the per-key rate limit.

Every dialect takes the key from its own headers (`app.http.credentials`) and asks the
`Authenticator` for the caller's project; from there on every query is scoped to it. Keys
come from two places:
- `FILEDOCK_API_KEYS` (`key=project` pairs), hashed into memory at start-up;
- `filedock keys create`, stored in the database as SHA-256 hashes and looked up on each
  request, so a key created or revoked on one replica counts on every replica at once.
A plain SHA-256 is enough for generated keys (256 random bits: nothing to brute-force); a
slow password hash would only add milliseconds to every request.
"""

import hashlib
import ipaddress
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from app.core.errors import InvalidRequest, RateLimited, Unauthenticated
from app.core.records import DEFAULT_PROJECT, KeyRecord
from app.metadata.keys_store import KeyStore
from app.settings import OpenMode, Settings

KEY_PREFIX = "fd-"
PROJECT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
PROJECT_HEADER = "openai-project"  # what the openai SDK sends for `project=`; used by every dialect
MAX_RATE_BUCKETS = 100_000  # open mode accepts any key: bound the limiter's memory


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def check_project_name(name: str) -> str:
    if not PROJECT_NAME.fullmatch(name):
        raise ValueError(
            f"invalid project name {name!r}: use 1 to 64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return name


def parse_configured_keys(entries: list[str]) -> dict[str, KeyRecord]:
    """`FILEDOCK_API_KEYS` entries (`key=project` or a bare `key`) by key hash.

    A key may itself contain `=` (base64 padding): only a valid project name after the last
    `=` makes it a pair.
    """
    records = {}
    for entry in entries:
        key, _, project = entry.rpartition("=")
        if not key or not PROJECT_NAME.fullmatch(project):
            key, project = entry, DEFAULT_PROJECT
        digest = hash_key(key)
        records[digest] = KeyRecord(f"env_{digest[:12]}", digest, shown_prefix(key), project, False, 0)
    return records


def shown_prefix(key: str) -> str:
    """The start of a key, to tell keys apart in listings; nothing of a short, guessable key."""
    return key[:7] if len(key) >= 24 else key[:2] if len(key) >= 12 else ""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to anything


@dataclass(frozen=True)
class Caller:
    project: str
    identity: str  # what the rate limit counts by: the key's id, or its hash in open mode


class RateLimiter:
    """A generic cell rate algorithm per identity: `per_minute` requests spread over a minute,
    with bursts up to `per_minute`. Per process: with N workers a key gets up to N times it."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 60.0 / per_minute
        self.burst = 60.0  # seconds of credit: `per_minute` requests at once
        self._clock = clock
        self._theoretical_arrival: dict[str, float] = {}

    def check(self, identity: str) -> None:
        now = self._clock()
        arrival = max(self._theoretical_arrival.get(identity, now), now) + self.interval
        wait = arrival - now - self.burst
        if wait > 0:
            raise RateLimited(
                f"Rate limit reached for requests: {int(60 / self.interval)} per minute per API key. "
                f"Please try again in {wait:.1f}s.",
                retry_after_seconds=wait,
            )
        if len(self._theoretical_arrival) >= MAX_RATE_BUCKETS:
            self._forget_idle(now)
        self._theoretical_arrival[identity] = arrival

    def _forget_idle(self, now: float) -> None:
        self._theoretical_arrival = {k: t for k, t in self._theoretical_arrival.items() if t > now}


class Authenticator:
    def __init__(self, settings: Settings, keys: KeyStore, *, open_mode: bool) -> None:
        self.keys = keys
        self.open_mode = open_mode
        self._configured = parse_configured_keys(settings.api_keys)
        per_minute = settings.rate_limit_per_minute
        self._limiter = RateLimiter(per_minute) if per_minute else None

    @classmethod
    async def start(cls, settings: Settings, keys: KeyStore) -> "Authenticator":
        return cls(settings, keys, open_mode=await resolve_open_mode(settings, keys))

    async def caller(self, key: str, acting_for: str | None) -> Caller | None:
        """The caller a key stands for, or None when the key is missing or unknown (and not open).

        `acting_for` (the `OpenAI-Project` header) lets an admin key act in another project.
        """
        digest = hash_key(key)
        record = self._configured.get(digest)
        if record is None and key:  # even in open mode: a key made meanwhile acts in its project
            record = await self.keys.active(digest)
        if record is None:
            if not self.open_mode:
                return None
            caller = Caller(DEFAULT_PROJECT, "open_" + digest[:16])  # the header is ignored in open mode
        else:
            caller = Caller(_acting_project(record, acting_for), record.id)
        if self._limiter is not None:
            self._limiter.check(caller.identity)
        return caller


async def resolve_open_mode(settings: Settings, keys: KeyStore) -> bool:
    if settings.open_mode is not OpenMode.AUTO:
        return settings.open_mode is OpenMode.ON
    return not settings.api_keys and not await keys.any_active()


def _acting_project(record: KeyRecord, acting_for: str | None) -> str:
    if not acting_for or acting_for == record.project:
        return record.project
    if not record.admin:
        raise Unauthenticated(
            f"OpenAI-Project header should match project for API key: this key belongs to project "
            f"{record.project!r}, not {acting_for!r}."
        )
    if not PROJECT_NAME.fullmatch(acting_for):
        raise InvalidRequest(f"Invalid OpenAI-Project header {acting_for!r}.")
    return acting_for


def masked(key: str) -> str:
    return f"{key[:3]}****{key[-2:]}" if len(key) > 8 else "****"
