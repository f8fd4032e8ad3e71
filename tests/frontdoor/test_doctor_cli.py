"""`filedock doctor` as a subprocess: all checks pass on a live server's stores, and a missing or
out-of-date database is one line saying what to run, with exit status 1.

Only the standard library, pytest and tests helpers are imported; the CLI comes from FILEDOCK_BIN.
"""

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.frontdoor.tenancy_helpers import QUICK, Cli
from tests.servers import FileDockServer, clean_environment

CHECKS = ["configuration", "database", "migrations", "clock", "blob store", "free space"]


def test_doctor_passes_on_a_live_server(make_server: Callable[..., FileDockServer]) -> None:
    server = make_server(**QUICK)
    done = Cli.of(server).run("doctor")
    assert [line.split(":")[0] for line in done.stdout.splitlines()] == CHECKS
    assert all(line.split(":", 1)[1].split()[0] == "ok" for line in done.stdout.splitlines()), done.stdout
    assert server.blob_files() == []  # the probe blob is gone again


@pytest.mark.embedded_only("a data dir without a SQLite file")
def test_doctor_says_to_migrate_a_missing_database(tmp_path: Path) -> None:
    done = Cli(tmp_path / "empty", clean_environment()).run("doctor", check=False)
    assert done.returncode == 1
    [problem] = [line for line in done.stdout.splitlines() if "PROBLEM" in line]
    assert problem.startswith("database:") and "filedock migrate" in problem
    assert not (tmp_path / "empty" / "filedock.db").exists()


@pytest.mark.embedded_only("edits the SQLite file's migration version")
def test_doctor_says_to_migrate_an_old_schema(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "old", clean_environment())
    cli.run("migrate", "--quiet")
    with sqlite3.connect(tmp_path / "old" / "filedock.db") as db:
        db.execute("UPDATE alembic_version SET version_num = '0001'")
    done = cli.run("doctor", check=False)
    assert done.returncode == 1
    [problem] = [line for line in done.stdout.splitlines() if "PROBLEM" in line]
    assert problem.startswith("migrations:") and "0001" in problem and "filedock migrate" in problem
