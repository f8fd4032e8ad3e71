"""What `filedock keys …`, `filedock projects …`, `filedock gc`, `filedock verify` and `serve`'s
start-up check do, on the stores the settings name. Each call migrates first (`open_stores`), so
they also work before the first `serve`; `require_database` keeps them from creating an empty
database where the operator meant an existing one."""

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from app.core.errors import FileDockError
from app.core.maintenance import GcReport, Maintenance
from app.core.records import KeyRecord, ProjectUsage
from app.core.tenancy import (
    check_project_name,
    hash_key,
    is_loopback,
    new_key,
    parse_configured_keys,
    resolve_open_mode,
    shown_prefix,
)
from app.core.verify import Finding, Verifier, VerifyOptions, VerifyReport
from app.settings import Settings
from app.stores import open_stores


class AdminError(Exception):
    """A refused admin command; the message says what to do instead."""


def describe_database(settings: Settings) -> str:
    """The database URL with its password masked, for telling the operator what is acted on."""
    return make_url(settings.database_url).render_as_string(hide_password=True)


def sqlite_path(settings: Settings) -> Path | None:
    """The SQLite database file, or None for another database."""
    url = make_url(settings.database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


def require_database(settings: Settings, *, create: bool) -> None:
    """Refuse to create an empty SQLite database unless asked: a wrong --data-dir would
    otherwise get keys and quotas that no server ever reads."""
    path = sqlite_path(settings)
    if path is None or create or path.exists():
        return
    raise AdminError(
        f"there is no FileDock database at {path}: point --data-dir (or FILEDOCK_DATA_DIR, "
        "FILEDOCK_DATABASE_URL) at the server's, or pass --create to start a new one there"
    )


async def create_key(settings: Settings, project: str, *, admin: bool) -> tuple[str, KeyRecord]:
    """A new key for `project` (created if new): the key itself, shown once, and its record."""
    try:
        check_project_name(project)
    except ValueError as exc:
        raise AdminError(str(exc)) from None
    key = new_key()
    record = KeyRecord(
        id="key_" + hash_key(key)[:20],
        key_hash=hash_key(key),
        prefix=shown_prefix(key),
        project=project,
        admin=admin,
        created_at=int(time.time()),
    )
    async with open_stores(settings) as stores:
        await stores.keys.insert(record)
    return key, record


async def list_keys(settings: Settings) -> list[dict[str, Any]]:
    """Every key, database and `FILEDOCK_API_KEYS` alike, without the key itself."""
    async with open_stores(settings) as stores:
        stored = await stores.keys.all()
    configured = parse_configured_keys(settings.api_keys).values()
    return [_key_json(r, "database") for r in stored] + [_key_json(r, "env") for r in configured]


async def revoke_key(settings: Settings, key_id_or_key: str) -> KeyRecord:
    """Revoke a database key by its id (or the key itself); running servers refuse it at once."""
    digest = hash_key(key_id_or_key)
    configured = parse_configured_keys(settings.api_keys)
    if digest in configured or any(r.id == key_id_or_key for r in configured.values()):
        raise AdminError("that key comes from FILEDOCK_API_KEYS: remove it there and restart the servers")
    async with open_stores(settings) as stores:
        record = await stores.keys.revoke(key_id_or_key, digest, int(time.time()))
    if record is None:
        raise AdminError(f"no key with id {key_id_or_key!r}: see `filedock keys list`")
    return record


async def list_projects(settings: Settings) -> list[ProjectUsage]:
    async with open_stores(settings) as stores:
        return await stores.metadata.all_usage()


async def set_quota(
    settings: Settings, project: str, *, max_bytes: int | None, max_files: int | None
) -> ProjectUsage:
    try:
        check_project_name(project)
    except ValueError as exc:
        raise AdminError(str(exc)) from None
    async with open_stores(settings) as stores:
        await stores.metadata.set_quota(project, max_bytes=max_bytes, max_files=max_files)
        return await stores.metadata.usage(project)


async def refuse_public_open_mode(settings: Settings) -> None:
    """Open mode answers anyone: refuse it on an address other hosts can reach, unless allowed."""
    if is_loopback(settings.host) or settings.allow_public_open_mode:
        return
    async with open_stores(settings) as stores:
        open_mode = await resolve_open_mode(settings, stores.keys)
    if open_mode:
        raise AdminError(
            f"refusing to serve in open mode (any API key accepted) on {settings.host}, which is not "
            "a loopback address. Configure keys (FILEDOCK_API_KEYS, or `filedock keys create`), or "
            "set FILEDOCK_ALLOW_PUBLIC_OPEN_MODE=true to accept anyone anyway."
        )


async def auth_summary(settings: Settings) -> tuple[bool, int]:
    """Whether the server will run in open mode, and how many active keys are configured (from
    FILEDOCK_API_KEYS and the database), for the start-up banner."""
    async with open_stores(settings) as stores:
        open_mode = await resolve_open_mode(settings, stores.keys)
        stored = await stores.keys.all()
    active = sum(1 for record in stored if record.revoked_at is None)
    return open_mode, active + len(parse_configured_keys(settings.api_keys))


async def run_gc(settings: Settings) -> GcReport | None:
    """`filedock gc`: one maintenance round with gc; None if another replica is running one."""
    async with open_stores(settings) as stores:
        maintenance = Maintenance(stores.files, stores.uploads, stores.maintenance)
        return await maintenance.run_round(gc_grace_seconds=settings.gc_grace_seconds)


async def run_verify(
    settings: Settings, options: VerifyOptions, on_finding: Callable[[Finding], None]
) -> VerifyReport:
    """`filedock verify`: every finding to `on_finding` as it comes; the totals."""
    async with open_stores(settings) as stores:
        verifier = Verifier(stores.files, stores.maintenance, options)
        try:
            async for finding in verifier.run():
                on_finding(finding)
        except FileDockError as exc:
            raise AdminError(f"verify stopped: {exc}") from exc
        return verifier.report


def _key_json(record: KeyRecord, source: str) -> dict[str, Any]:
    fields = dataclasses.asdict(record)
    del fields["key_hash"]
    return {**fields, "source": source}
