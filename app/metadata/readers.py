"""The readers of hot-path queries (retrieve, list, the key lookup), one per engine: inline
SQLite, asyncpg directly for PostgreSQL (`app.metadata.pg_reader`), or the engine itself."""

import sqlite3
import weakref
from collections.abc import Mapping
from typing import Any, Protocol

from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.expression import Executable

from app.metadata.engine import Compiled, Rows, compile_once, database_errors


class Reader(Protocol):
    """Runs one read-only statement and returns its rows as tuples."""

    async def rows(self, statement: Executable, params: Mapping[str, Any]) -> Rows: ...

    async def close(self) -> None: ...


# One reader per engine, shared by every store on it, so a process holds one read pool.
_readers: "weakref.WeakKeyDictionary[AsyncEngine, Reader]" = weakref.WeakKeyDictionary()


def reader_for(engine: AsyncEngine) -> Reader:
    reader = _readers.get(engine)
    if reader is None:
        reader = _readers[engine] = _new_reader(engine)
    return reader


def _new_reader(engine: AsyncEngine) -> Reader:
    if engine.dialect.driver == "asyncpg":
        from app.metadata.pg_reader import AsyncpgReader  # asyncpg only where PostgreSQL is used

        return AsyncpgReader(engine)
    if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        return InlineSqliteReader(str(engine.url.database))
    return EngineReader(engine)


class EngineReader:
    """Reads through the async engine: an in-memory SQLite database, which only it can open."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def rows(self, statement: Executable, params: Mapping[str, Any]) -> Rows:
        with database_errors():
            async with self._engine.connect() as connection:
                return (await connection.execute(statement, params)).all()

    async def close(self) -> None:
        pass  # the engine's own pool


class InlineSqliteReader:
    """Reads SQLite right on the event loop, through one plain `sqlite3` connection per process.

    A point read or a 100-row page from a WAL database takes tens of microseconds; going
    through aiosqlite costs several thread hand-offs (cursor, execute, fetch, close, rollback)
    that take far longer under load. In WAL mode readers never wait for writers, so the loop
    does not stall; a busy database (a rare checkpoint or recovery) fails fast as a 503.
    Each statement is its own read transaction, so it sees every commit made before it.
    """

    def __init__(self, path: str) -> None:
        self._connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._connection.execute("PRAGMA query_only=ON")
        self._connection.execute(f"PRAGMA busy_timeout={INLINE_BUSY_TIMEOUT_MS}")
        self._compiled: dict[int, Compiled] = {}

    async def rows(self, statement: Executable, params: Mapping[str, Any]) -> Rows:
        compiled = compile_once(self._compiled, statement, _NAMED_SQLITE)
        with database_errors():
            return self._connection.execute(compiled.sql, {**compiled.constants, **params}).fetchall()

    async def close(self) -> None:
        self._connection.close()


INLINE_BUSY_TIMEOUT_MS = 200
_NAMED_SQLITE = sqlite_dialect.dialect(paramstyle="named")


async def dispose(engine: AsyncEngine) -> None:
    """Close the engine's pool and its hot-path reader's connections."""
    reader = _readers.pop(engine, None)
    if reader is not None:
        await reader.close()
    await engine.dispose()
