"""Webhooks: a project's endpoints, the events told to them, and their delivery from the outbox.

An event enters the outbox (`app.metadata.webhooks_store`) in the transaction of the change it
reports: `new_event` builds it, and the store's `insert_events(connection, events)` records it
inside any transaction; `WebhookService.emit` records one on its own. Each endpoint that asked
for the event's type gets its own delivery row.

`WebhookDeliverer`, one per server process, claims due rows, signs each body as Standard
Webhooks do (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<HMAC-SHA256>`, which the
openai SDK's `client.webhooks.unwrap` verifies) and sends it through a `Sender`. A 2xx answer
delivers it; anything else is retried, the wait doubling from `webhook_backoff_seconds`, until
`webhook_retry_hours` after the event, when the delivery is given up as failed.

Outbound requests are a security boundary: a webhook URL must be http(s), and unless
`webhook_allow_private` is set it may not name or resolve to a private, loopback or link-local
address. The URL is checked when an endpoint is created or changed, and its addresses again at
each attempt (DNS may have changed since), by the `Sender`, through `public_addresses`.
"""

import asyncio
import base64
import contextlib
import copy
import hashlib
import hmac
import ipaddress
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol
from urllib.parse import urlsplit

from app.core import ids
from app.core.errors import InvalidRequest, NotFound, TargetRefused, WebhookEndpointNotFound
from app.core.records import DeliveryRecord, DueDelivery, Event, WebhookEndpointRecord
from app.metadata.webhooks_store import WebhookStore
from app.settings import Settings

log = logging.getLogger("filedock.webhooks")

BATCH_EVENT_TYPES = ("batch.completed", "batch.failed", "batch.expired", "batch.cancelled")
FILE_EVENT_TYPES = ("file.created", "file.deleted", "file.expired")  # FileDock's own
EVENT_TYPES = BATCH_EVENT_TYPES + FILE_EVENT_TYPES
MAX_ENDPOINTS_PER_PROJECT = 100
MAX_URL_LENGTH = 2048
MAX_NAME_LENGTH = 256
KEEP_OLD_SECRET_SECONDS = 86400
CLAIM_BATCH = 16
FINISHED_RETENTION_SECONDS = 7 * 86400  # delivered and failed rows stay this long for the operator
RESOLVE_TIMEOUT_SECONDS = 5.0


def new_event(project: str, event_type: str, data: Mapping[str, str], now: int) -> Event:
    """An event to put in the outbox, e.g. `new_event(p, "batch.completed", {"id": batch_id}, now)`."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"FileDock does not emit {event_type!r}")
    return Event(ids.new_event_id(), project, event_type, now, dict(data))


def new_secret() -> str:
    """`whsec_` and 32 random bytes in base64, as Standard Webhooks and the SDK expect."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_hint(secret: str) -> str:
    return f"whsec_****{secret[-4:]}"


def signature_headers(
    delivery_id: str, timestamp: int, body: str, signing_secrets: Sequence[str]
) -> dict[str, str]:
    """The Standard Webhooks headers: one `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` per
    secret, the key being the base64 after `whsec_`."""
    signed = f"{delivery_id}.{timestamp}.{body}".encode()
    signatures = [
        "v1,"
        + base64.b64encode(
            hmac.new(base64.b64decode(s.removeprefix("whsec_")), signed, hashlib.sha256).digest()
        ).decode()
        for s in signing_secrets
    ]
    return {
        "webhook-id": delivery_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signatures),
        "content-type": "application/json",
    }


# ---- targets: which URLs FileDock may call ----


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # lower case, IPv6 without brackets
    port: int


def parse_target(url: str) -> Target:
    """The URL's scheme, host and port; `InvalidRequest` (param `url`) if it is not one to call."""
    if len(url) > MAX_URL_LENGTH or any(c.isspace() or ord(c) < 0x20 or c == "\x7f" for c in url):
        raise InvalidRequest(
            f"url must be an http(s) URL of at most {MAX_URL_LENGTH} characters.", param="url"
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidRequest("url is not a valid URL.", param="url") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise InvalidRequest("url must start with https:// or http://.", param="url")
    if not parts.hostname:
        raise InvalidRequest("url must name a host.", param="url")
    if parts.username is not None or parts.password is not None:
        raise InvalidRequest("url must not carry credentials (user:password@).", param="url")
    return Target(scheme, parts.hostname, port or (443 if scheme == "https" else 80))


def address_refusal(address: str) -> str | None:
    """Why FileDock may not call `address` (an IP address), or None if it is a public one."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for test, words in (
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_private, "a private address"),
        (ip.is_unspecified or ip.is_multicast or ip.is_reserved or not ip.is_global, "not a public address"),
    ):
        if test:
            return f"{ip} is {words}"
    return None


def _ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def resolve(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to (itself, if it is one). `OSError` if it does not resolve."""
    if _ip_literal(host):
        return [host]
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _refuse_loopback_name(host: str) -> None:
    if host == "localhost" or host.endswith(".localhost"):
        raise TargetRefused(f"{host} is a loopback name")


def _refuse_private(host: str, addresses: Sequence[str]) -> None:
    for address in addresses:
        refusal = address_refusal(address)
        if refusal is not None:
            raise TargetRefused(f"{host} resolves to {address}; {refusal}" if host != address else refusal)


async def public_addresses(target: Target) -> list[str]:
    """The addresses to connect to for `target`: every one it resolves to must be public, or
    `TargetRefused` says which is not (a name with one private address among several is refused)."""
    _refuse_loopback_name(target.host)
    try:
        addresses = await resolve(target.host, target.port)
    except (OSError, TimeoutError) as exc:
        raise TargetRefused(f"{target.host} does not resolve ({exc or 'timed out'})") from None
    _refuse_private(target.host, addresses)
    return addresses


async def check_endpoint_url(url: str, *, allow_private: bool) -> str:
    """Refuse, with a 400, a URL FileDock may not call. A name that does not resolve yet is
    accepted: each attempt resolves and checks it again."""
    target = parse_target(url)
    if allow_private:
        return url
    try:
        _refuse_loopback_name(target.host)
        try:
            addresses = await resolve(target.host, target.port)
        except (OSError, TimeoutError):
            return url
        _refuse_private(target.host, addresses)
    except TargetRefused as exc:
        raise InvalidRequest(
            f"url is not allowed: {exc.reason}. Webhooks go only to public addresses unless the "
            "server sets FILEDOCK_WEBHOOK_ALLOW_PRIVATE=true.",
            param="url",
            code="invalid_url",
        ) from None
    return url


# ---- sending ----


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to: the receiver's status, or why there was none."""

    status_code: int | None = None
    error: str | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    def describe(self) -> str:
        return f"HTTP {self.status_code}" if self.status_code is not None else str(self.error)


class Sender(Protocol):
    """Sends one signed body (an http(s) POST), enforcing the target rules at each attempt."""

    async def send(self, url: str, headers: Mapping[str, str], body: bytes) -> Outcome: ...


# ---- endpoints ----


@dataclass(frozen=True)
class EndpointChanges:
    """An update: None leaves a field as it is."""

    name: str | None = None
    url: str | None = None
    event_types: Sequence[str] | None = None


def check_name(name: str) -> str:
    if not name.strip() or len(name) > MAX_NAME_LENGTH:
        raise InvalidRequest(f"name must be 1 to {MAX_NAME_LENGTH} characters.", param="name")
    return name


def check_event_types(event_types: Sequence[str]) -> tuple[str, ...]:
    if not event_types:
        raise InvalidRequest("event_types must name at least one event type.", param="event_types")
    unknown = [t for t in event_types if t not in EVENT_TYPES]
    if unknown:
        raise InvalidRequest(
            f"FileDock does not emit {', '.join(map(repr, unknown))}; it emits {', '.join(EVENT_TYPES)}.",
            param="event_types",
        )
    return tuple(dict.fromkeys(event_types))


class WebhookService:
    """The endpoints of one project (`for_project`), and the events of every project."""

    def __init__(
        self, settings: Settings, store: WebhookStore, sender: Sender, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings
        self.store = store
        self.sender = sender
        self._clock = clock
        self.project = ""

    def for_project(self, project: str) -> "WebhookService":
        scoped = copy.copy(self)
        scoped.project = project
        return scoped

    def now(self) -> int:
        return int(self._clock())

    async def emit(self, project: str, event_type: str, data: Mapping[str, str]) -> Event:
        """Record an event for every endpoint of `project` that asked for `event_type`, in a
        transaction of its own. Inside another transaction, use `new_event` and the store's
        `insert_events(connection, [event])` instead."""
        event = new_event(project, event_type, data, self.now())
        await self.store.record_events([event])
        return event

    async def create(self, name: str, url: str, event_types: Sequence[str]) -> WebhookEndpointRecord:
        record = WebhookEndpointRecord(
            id=ids.new_webhook_endpoint_id(),
            project=self.project,
            name=check_name(name),
            url=await check_endpoint_url(url, allow_private=self.settings.webhook_allow_private),
            event_types=check_event_types(event_types),
            secret=new_secret(),
            previous_secret=None,
            previous_secret_expires_at=None,
            created_at=self.now(),
            updated_at=self.now(),
        )
        if await self.store.count_endpoints(self.project) >= MAX_ENDPOINTS_PER_PROJECT:
            raise InvalidRequest(f"A project may have at most {MAX_ENDPOINTS_PER_PROJECT} webhook endpoints.")
        await self.store.insert_endpoint(record)
        log.info("webhook endpoint %s created in project %s for %s", record.id, self.project, record.url)
        return record

    async def get(self, endpoint_id: str) -> WebhookEndpointRecord:
        record = None
        if ids.is_valid_webhook_endpoint_id(endpoint_id):
            record = await self.store.get_endpoint(self.project, endpoint_id)
        if record is None:
            raise WebhookEndpointNotFound(endpoint_id)
        return record

    async def list_endpoints(
        self, *, after: str | None, limit: int
    ) -> tuple[list[WebhookEndpointRecord], bool]:
        page = await self.store.list_endpoints(self.project, after=after, limit=limit)
        if page is None:
            raise NotFound("Resource not found.", param="after")
        return page

    async def update(self, endpoint_id: str, changes: EndpointChanges) -> WebhookEndpointRecord:
        record = await self.get(endpoint_id)
        updated = record
        if changes.name is not None:
            updated = replace(updated, name=check_name(changes.name))
        if changes.url is not None:
            allow_private = self.settings.webhook_allow_private
            updated = replace(updated, url=await check_endpoint_url(changes.url, allow_private=allow_private))
        if changes.event_types is not None:
            updated = replace(updated, event_types=check_event_types(changes.event_types))
        if updated == record:
            return record  # an unchanged update does not advance updated_at
        return await self._store(replace(updated, updated_at=self.now()))

    async def rotate_secret(self, endpoint_id: str, *, keep_old_for_a_day: bool) -> WebhookEndpointRecord:
        record = await self.get(endpoint_id)
        now = self.now()
        rotated = replace(
            record,
            secret=new_secret(),
            previous_secret=record.secret if keep_old_for_a_day else None,
            previous_secret_expires_at=now + KEEP_OLD_SECRET_SECONDS if keep_old_for_a_day else None,
            updated_at=now,
        )
        log.info("webhook endpoint %s: signing secret rotated", record.id)
        return await self._store(rotated)

    async def _store(self, record: WebhookEndpointRecord) -> WebhookEndpointRecord:
        if not await self.store.update_endpoint(record):
            raise WebhookEndpointNotFound(record.id)
        return record

    async def delete(self, endpoint_id: str) -> None:
        if not (
            ids.is_valid_webhook_endpoint_id(endpoint_id)
            and await self.store.delete_endpoint(self.project, endpoint_id)
        ):
            raise WebhookEndpointNotFound(endpoint_id)
        log.info("webhook endpoint %s deleted with its deliveries", endpoint_id)

    async def deliveries(self, endpoint_id: str, *, limit: int) -> list[DeliveryRecord]:
        record = await self.get(endpoint_id)
        return await self.store.list_deliveries(record.id, limit=limit)

    async def test(self, endpoint_id: str, event_type: str) -> Outcome:
        """Send a sample event of `event_type` now, outside the outbox, and return the answer."""
        record = await self.get(endpoint_id)
        check_event_types([event_type])
        sample_id = ("file-" if event_type.startswith("file.") else "batch_") + ids.new_blob_key()
        event = new_event(self.project, event_type, {"id": sample_id}, self.now())
        body = event.body()
        headers = signature_headers(
            ids.new_delivery_id(), self.now(), body, record.signing_secrets(self.now())
        )
        outcome = await self.sender.send(record.url, headers, body.encode())
        log.info("webhook endpoint %s: test %s answered %s", record.id, event_type, outcome.describe())
        if outcome.status_code is None:
            raise InvalidRequest(f"The test delivery failed: {outcome.error}", code="webhook_delivery_failed")
        return outcome


# ---- delivering ----


class WebhookDeliverer:
    """Delivers the outbox: claims due rows (shared safely with other processes and replicas),
    sends them, and records each attempt. `run_forever` runs in every server process."""

    def __init__(
        self, settings: Settings, store: WebhookStore, sender: Sender, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings
        self.store = store
        self.sender = sender
        self._clock = clock
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        # Longer than any attempt can take, so a live owner's lease never runs out mid-attempt.
        self.lease_seconds = 2 * settings.webhook_timeout_seconds + RESOLVE_TIMEOUT_SECONDS + 30
        self._last_purge = 0.0

    async def deliver_due(self) -> int:
        """One round: attempt every delivery due now (up to a batch); how many were attempted."""
        now = self._clock()
        due = await self.store.claim_due(self.owner, now, now + self.lease_seconds, CLAIM_BATCH)
        await asyncio.gather(*(self._attempt(delivery) for delivery in due))
        return len(due)

    async def _attempt(self, delivery: DueDelivery) -> None:
        endpoint, now = delivery.endpoint, self._clock()
        headers = signature_headers(delivery.id, int(now), delivery.body, endpoint.signing_secrets(now))
        outcome = await self.sender.send(endpoint.url, headers, delivery.body.encode())
        attempts, now = delivery.attempts + 1, self._clock()
        result = {
            "last_attempt_at": now,
            "last_status_code": outcome.status_code,
            "last_error": outcome.error,
        }
        what = f"webhook {delivery.id} ({delivery.event_type}) to {endpoint.id}, attempt {attempts}"
        if outcome.delivered:
            log.info("%s: delivered, %s", what, outcome.describe())
            await self._finish(delivery, status="delivered", next_attempt_at=None, delivered_at=now, **result)
            return
        delay = self.backoff(attempts)
        if now + delay > delivery.created_at + self.settings.webhook_retry_hours * 3600:
            log.warning("%s: %s; retries exhausted, the delivery failed", what, outcome.describe())
            await self._finish(delivery, status="failed", next_attempt_at=None, **result)
            return
        log.warning("%s: %s; retrying in %.1f s", what, outcome.describe(), delay)
        await self._finish(delivery, status="pending", next_attempt_at=now + delay, **result)

    async def _finish(self, delivery: DueDelivery, **outcome: object) -> None:
        if not await self.store.finish_attempt(delivery.seq, self.owner, **outcome):
            log.warning("webhook %s: the lease ran out before its attempt was recorded", delivery.id)

    def backoff(self, attempts: int) -> float:
        """The wait after the `attempts`-th failed attempt: doubling, capped."""
        first, cap = self.settings.webhook_backoff_seconds, self.settings.webhook_max_backoff_seconds
        return float(min(first * 2 ** min(attempts - 1, 40), cap))

    async def run_forever(self, interval: float) -> None:
        while True:
            try:
                await self._purge_now_and_then()
                if await self.deliver_due() >= CLAIM_BATCH:
                    continue  # more may be due: no pause
            except Exception:  # the deliverer must outlive a failing database; it retries
                log.exception("webhook delivery failed; retrying in %.1f s", interval)
            await asyncio.sleep(interval)

    async def _purge_now_and_then(self) -> None:
        now = self._clock()
        if now - self._last_purge >= 3600:
            await self.store.purge_finished(int(now) - FINISHED_RETENTION_SECONDS)
            self._last_purge = now

    async def release_leases(self) -> None:
        """On shutdown: hand this process's claimed rows back, so a restart sends them at once."""
        with contextlib.suppress(Exception):
            await self.store.release_leases(self.owner, self._clock())
