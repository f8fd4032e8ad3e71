"""The SQLite side of `filedock backup` and `restore`: a consistent copy of a live database, and
the blob keys a copy names, streamed.

`sqlite3.Connection.backup` copies every page in one step inside a read transaction, so the copy
is one committed state of the database however many servers write to it meanwhile (WAL readers
never block writers, so they do not wait for the backup either).
"""

import sqlite3
from collections.abc import Iterator
from pathlib import Path

from app.core.errors import StorageUnavailable

BUSY_TIMEOUT_MS = 30_000


def copy_database(source: Path, destination: Path) -> None:
    """Copy the SQLite database at `source` to a new file `destination`, consistently, online."""
    try:
        reader = sqlite3.connect(f"{source.absolute().as_uri()}?mode=rw", uri=True)  # never creates one
        try:
            reader.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            writer = sqlite3.connect(destination)
            try:
                reader.backup(writer)
            finally:
                writer.close()
        finally:
            reader.close()
    except sqlite3.Error as exc:
        raise StorageUnavailable(f"could not copy the database {source} to {destination}: {exc}") from exc


def named_blob_keys(database: Path) -> Iterator[str]:
    """Every blob key a file or an Upload's Part in `database` names, streamed from the cursor."""
    connection = sqlite3.connect(f"{database.absolute().as_uri()}?mode=ro", uri=True)
    try:
        yield from (key for (key,) in connection.execute("SELECT blob_key FROM files"))
        yield from (key for (key,) in connection.execute("SELECT blob_key FROM upload_parts"))
    except sqlite3.Error as exc:
        raise StorageUnavailable(f"could not read {database}: {exc}") from exc
    finally:
        connection.close()
