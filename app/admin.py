"""What `filedock keys …`, `filedock projects …` and `serve`'s start-up check do, on the database
the settings name. Each call migrates first, so they also work before the first `serve`."""

import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from app.auth import (
    check_project_name,
    hash_key,
    is_loopback,
    new_key,
    parse_configured_keys,
    resolve_open_mode,
    shown_prefix,
)
from app.metadata.engine import create_engine
from app.metadata.keys_store import KeyRecord, KeyStore
from app.metadata.migrate import upgrade_to_head_async
from app.metadata.store import MetadataStore, ProjectUsage
from app.service import project_quota
from app.settings import Settings


class AdminError(Exception):
    """A refused admin command; the message says what to do instead."""


@contextlib.asynccontextmanager
async def _database(settings: Settings) -> AsyncIterator[AsyncEngine]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    await upgrade_to_head_async(settings.database_url)
    engine = create_engine(settings.database_url, timeout_seconds=settings.storage_timeout_seconds)
    try:
        yield engine
    finally:
        await engine.dispose()


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
    async with _database(settings) as engine:
        await KeyStore(engine).insert(record)
    return key, record


async def list_keys(settings: Settings) -> list[dict[str, Any]]:
    """Every key, database and `FILEDOCK_API_KEYS` alike, without the key itself."""
    async with _database(settings) as engine:
        stored = await KeyStore(engine).all()
    configured = parse_configured_keys(settings.api_keys).values()
    return [_key_json(r, "database") for r in stored] + [_key_json(r, "env") for r in configured]


async def revoke_key(settings: Settings, key_id_or_key: str) -> KeyRecord:
    """Revoke a database key by its id (or the key itself); running servers refuse it at once."""
    digest = hash_key(key_id_or_key)
    configured = parse_configured_keys(settings.api_keys)
    if digest in configured or any(r.id == key_id_or_key for r in configured.values()):
        raise AdminError("that key comes from FILEDOCK_API_KEYS: remove it there and restart the servers")
    async with _database(settings) as engine:
        record = await KeyStore(engine).revoke(key_id_or_key, digest, int(time.time()))
    if record is None:
        raise AdminError(f"no key with id {key_id_or_key!r}: see `filedock keys list`")
    return record


async def list_projects(settings: Settings) -> list[ProjectUsage]:
    async with _database(settings) as engine:
        return await MetadataStore(engine, project_quota(settings)).all_usage()


async def set_quota(
    settings: Settings, project: str, *, max_bytes: int | None, max_files: int | None
) -> ProjectUsage:
    try:
        check_project_name(project)
    except ValueError as exc:
        raise AdminError(str(exc)) from None
    async with _database(settings) as engine:
        store = MetadataStore(engine, project_quota(settings))
        await store.set_quota(project, max_bytes=max_bytes, max_files=max_files)
        return await store.usage(project)


async def refuse_public_open_mode(settings: Settings) -> None:
    """Open mode answers anyone: refuse it on an address other hosts can reach, unless allowed."""
    if is_loopback(settings.host) or settings.allow_public_open_mode:
        return
    async with _database(settings) as engine:
        open_mode = await resolve_open_mode(settings, KeyStore(engine))
    if open_mode:
        raise AdminError(
            f"refusing to serve in open mode (any API key accepted) on {settings.host}, which is not "
            "a loopback address. Configure keys (FILEDOCK_API_KEYS, or `filedock keys create`), or "
            "set FILEDOCK_ALLOW_PUBLIC_OPEN_MODE=true to accept anyone anyway."
        )


def _key_json(record: KeyRecord, source: str) -> dict[str, Any]:
    fields = dataclasses.asdict(record)
    del fields["key_hash"]
    return {**fields, "source": source}
