"""The PostgreSQL reader of hot-path queries: asyncpg directly, imported only where the database
is PostgreSQL (`app.metadata.readers`)."""

from collections.abc import Mapping
from typing import Any, cast

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool
from sqlalchemy.sql.expression import Executable

from app.metadata.engine import Compiled, Rows, asyncpg_timeouts, compile_once, database_errors


class AsyncpgReader:
    """Reads PostgreSQL through a small asyncpg pool of its own, outside SQLAlchemy.

    Through the engine, a read cost three round trips (BEGIN, the query, the pool's ROLLBACK),
    a greenlet switch per step and SQLAlchemy's result processing: about 0.3 ms of CPU against
    0.06 ms here. Each statement runs on its own in autocommit, a READ COMMITTED snapshot taken
    when it starts, so it sees every commit acknowledged before it, as a read transaction did.
    asyncpg prepares each statement once per connection and reuses it, and these connections
    reuse its plan too (`HOT_READ_SETTINGS`).
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._dialect = engine.dialect
        assert isinstance(engine.pool, QueuePool)  # as `create_engine` makes it for PostgreSQL
        self._timeout = engine.pool.timeout()  # FILEDOCK_STORAGE_TIMEOUT_SECONDS, as the engine's
        connect_args = engine.dialect.create_connect_args(engine.url)[1]  # host, user, ssl…
        # SQLAlchemy's option for its statement cache, which a URL may carry and asyncpg refuses:
        # here it sizes asyncpg's (0, for a pooler that cannot keep prepared statements, as there).
        if "prepared_statement_cache_size" in connect_args:
            connect_args["statement_cache_size"] = connect_args.pop("prepared_statement_cache_size")
        self._connect_args: dict[str, Any] = {
            **connect_args,
            **asyncpg_timeouts(self._timeout),
            "server_settings": HOT_READ_SETTINGS,
        }
        self._pool: asyncpg.Pool[asyncpg.Record] | None = None
        self._compiled: dict[int, Compiled] = {}

    async def rows(self, statement: Executable, params: Mapping[str, Any]) -> Rows:
        compiled = compile_once(self._compiled, statement, self._dialect)
        values = {**compiled.constants, **params}
        with database_errors(asyncpg.PostgresError, asyncpg.InterfaceError):
            pool = self._pool or await self._open()
            try:
                async with pool.acquire(timeout=self._timeout) as connection:
                    rows = await connection.fetch(compiled.sql, *(values[n] for n in compiled.positions))
                    return cast(Rows, rows)  # a Record indexes and iterates like a tuple
            except (asyncpg.InterfaceError, asyncpg.PostgresConnectionError, ConnectionError):
                # A PostgreSQL restart kills every connection: drop them all at once rather
                # than fail one request per dead connection (the engine's pool does the same).
                await pool.expire_connections()
                raise

    async def _open(self) -> "asyncpg.Pool[asyncpg.Record]":
        pool = await asyncpg.create_pool(
            **self._connect_args,
            min_size=1,
            max_size=READ_POOL_SIZE,
            max_inactive_connection_lifetime=300,
            reset=_keep_session,
        )
        if self._pool is not None:  # another request opened one meanwhile
            await pool.close()
            return self._pool
        self._pool = pool
        return pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


async def _keep_session(_connection: "asyncpg.Connection[asyncpg.Record]") -> None:
    """Skip asyncpg's reset on release (`RESET ALL`, `UNLISTEN *`…, one more round trip): the
    reads change no session state and leave no transaction open."""


READ_POOL_SIZE = 4

# PostgreSQL plans a prepared statement afresh at each execution for as long as its generic
# plan's estimated cost stays well above the custom plans'. A list page's `LIMIT $n` makes the
# generic estimate some 24 times the custom one (a tenth of the table assumed), so every page
# was planned again: 0.25-0.5 ms of the backend's CPU, twice the query's own run. The reader
# runs only FileDock's fixed hot statements, whose generic plans use the same indexes as the
# custom ones (tests/backends/test_pg_hot_reads.py). PostgreSQL 12 or newer.
HOT_READ_SETTINGS = {"plan_cache_mode": "force_generic_plan"}
