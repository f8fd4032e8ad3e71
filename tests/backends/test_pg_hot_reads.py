"""The hot reads on PostgreSQL (retrieve, list pages, cursors, key lookups) reuse one generic
plan per statement, and each of those plans reaches its rows through an index.

Without `plan_cache_mode = force_generic_plan` on the reader's connections, PostgreSQL planned
every list page afresh (`app/metadata/pg_reader.py`). A generic plan is chosen without the
parameters' values, so the database holds enough rows, in two projects and three purposes of
unequal size, that a plan scanning a whole table would be the planner's choice, not one an
almost empty table invites.
"""

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.records import KeyRecord
from app.metadata.engine import create_engine
from app.metadata.keys_store import KeyStore
from app.metadata.migrate import upgrade_to_head_async
from app.metadata.readers import dispose, reader_for
from app.metadata.store import MetadataStore
from tests import scaleout

ROWS = 20_000
NOW = 10**9
SEED = [
    # Every tenth file in project "other"; purposes user_data, assistants (a third), batch (1%).
    f"""INSERT INTO files (id, project, filename, purpose, bytes, created_at, expires_at, status,
        status_details, mime_type, sha256, blob_key)
    SELECT 'file-' || g, CASE WHEN g % 10 = 0 THEN 'other' ELSE 'default' END, 'f.txt',
        CASE WHEN g % 100 = 1 THEN 'batch' WHEN g % 3 = 0 THEN 'assistants' ELSE 'user_data' END,
        1, g, CASE WHEN g % 7 = 0 THEN {NOW} + g END, 'processed', NULL, 'text/plain', NULL, 'k' || g
    FROM generate_series(1, {ROWS}) AS g""",
    f"""INSERT INTO file_tombstones (id, project, seq, created_at, deleted_at)
    SELECT 'file-gone-' || g, 'default', {ROWS} + g, g, g FROM generate_series(1, {ROWS // 10}) AS g""",
    f"""INSERT INTO api_keys (id, key_hash, prefix, project, admin, created_at, revoked_at)
    SELECT 'key' || g, md5(g::text) || md5(g::text), 'sk-', 'default', false, g, NULL
    FROM generate_series(1, {ROWS // 10}) AS g""",
]
OUR_TABLES = re.compile(r"\b(files|file_tombstones|api_keys)\b")


@pytest.fixture
async def engine(services: scaleout.ScaleOutBackend) -> AsyncIterator[AsyncEngine]:
    url = services.postgres.url(services.postgres.create_database())
    await upgrade_to_head_async(url)
    engine = create_engine(url, durable=False, timeout_seconds=10)
    async with engine.begin() as connection:
        for statement in SEED:
            await connection.execute(text(statement))
        await connection.execute(text("ANALYZE files, file_tombstones, api_keys"))
    yield engine
    await dispose(engine)


async def every_hot_read(engine: AsyncEngine) -> None:
    """Each read the reader serves, in each shape, twice: the second run could reuse a plan."""
    files, keys = MetadataStore(engine), KeyStore(engine)
    await keys.insert(KeyRecord("key-x", "f" * 64, "sk-", "default", admin=False, created_at=1))
    for _ in range(2):
        found = await files.get_file("default", "file-11", NOW)
        assert found is not None and found.purpose == "user_data"
        assert await files.get_file("other", "file-11", NOW) is None
        for purpose in (None, "batch"):
            for after in (None, "file-5001", "file-gone-3"):
                for order in ("desc", "asc"):
                    page, _ = await files.list_files(
                        "default", purpose=purpose, after=after, limit=20, order=order, now=NOW
                    )
                    assert page and all(r.project == "default" for r in page)
                    assert purpose is None or {r.purpose for r in page} == {purpose}
        # Past the oldest file: an empty page, so the cursor's own position is looked up.
        oldest = "file-1"
        empty = await files.list_files("default", purpose=None, after=oldest, limit=20, order="desc", now=NOW)
        assert empty == ([], False)
        assert (await keys.active("f" * 64)) is not None
        assert await keys.active("0" * 64) is None


async def test_hot_reads_reuse_generic_plans_that_scan_indexes(engine: AsyncEngine) -> None:
    await every_hot_read(engine)
    reader = reader_for(engine)  # its one connection: the reads above ran one at a time
    columns = "name, statement, parameter_types, generic_plans, custom_plans"
    prepared = await reader.rows(text(f"SELECT {columns} FROM pg_prepared_statements"), {})
    ours = [row for row in prepared if OUR_TABLES.search(row[1]) and "pg_prepared_statements" not in row[1]]
    assert len(ours) >= 11, [row[1] for row in prepared]  # retrieve, position, key, eight list shapes
    for name, statement, parameter_types, generic_plans, custom_plans in ours:
        assert (custom_plans, generic_plans > 0) == (0, True), statement
        nulls = ", ".join(["NULL"] * len(parameter_types))
        [[plan]] = await reader.rows(text(f'EXPLAIN (FORMAT JSON) EXECUTE "{name}"({nulls})'), {})
        scans = set(_node_types(json.loads(plan)[0]["Plan"]))
        assert "Seq Scan" not in scans and scans & {"Index Scan", "Index Only Scan"}, (statement, scans)


async def test_a_url_sizing_sqlalchemys_statement_cache_reaches_the_reader(
    services: scaleout.ScaleOutBackend,
) -> None:
    # SQLAlchemy documents `?prepared_statement_cache_size=0` for poolers like PgBouncer; the
    # reader's asyncpg pool refused it (TypeError) until the reader translated it.
    url = services.postgres.url(services.postgres.create_database())
    await upgrade_to_head_async(url)
    engine = create_engine(f"{url}?prepared_statement_cache_size=0", durable=False, timeout_seconds=10)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(SEED[0]))
        found = await MetadataStore(engine).get_file("default", "file-11", NOW)
        assert found is not None and found.id == "file-11"
        [[cached]] = await reader_for(engine).rows(text("SELECT count(*) FROM pg_prepared_statements"), {})
        assert cached == 0  # asyncpg's cache off, as SQLAlchemy's is
    finally:
        await dispose(engine)


def _node_types(node: dict[str, Any]) -> list[str]:
    return [node["Node Type"], *(t for child in node.get("Plans", []) for t in _node_types(child))]
