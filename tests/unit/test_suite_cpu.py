"""How `bench/suite_cpu.py` names the processes of a test run."""

from bench.suite_cpu import kind_of, owning_test

SERVE = ["/repo/.venv/bin/python3.11", "/repo/.venv/bin/filedock", "serve", "--host", "127.0.0.1"]
DATA_DIR = ["--data-dir", "/tmp/pytest-of-ci/pytest-7/popen-gw1/quota0/data"]


def test_servers_and_cli_calls_are_told_apart_and_by_backend() -> None:
    assert kind_of([*SERVE, *DATA_DIR], b"") == "FileDock server"
    on_postgres = b"FILEDOCK_DATABASE_URL=postgresql+asyncpg://x\0"
    assert kind_of(SERVE, on_postgres) == "FileDock server (PostgreSQL + S3)"
    assert kind_of(["/usr/bin/python3", "-m", "app.cli", "worker", "--fd", "3"], b"") == "FileDock server"
    cli = ["/repo/.venv/bin/python3.11", "/repo/.venv/bin/filedock", "projects", "list", *DATA_DIR]
    assert kind_of(cli, b"") == "FileDock CLI: projects list"
    backup = ["/repo/.venv/bin/python3.11", "/repo/.venv/bin/filedock", "backup", "/tmp/x/backup", *DATA_DIR]
    assert kind_of(backup, b"") == "FileDock CLI: backup"


def test_a_pytest_path_in_an_argument_does_not_make_a_process_pytest() -> None:
    chromium = ["/usr/lib/chromium/chromium", "--user-data-dir=/tmp/pytest-of-ci/pytest-7/docs0"]
    assert kind_of(chromium, b"") == "Chromium"
    assert kind_of(["python", "-u", "-c", "import sys;exec(eval(sys.stdin.readline()))"], b"") == "pytest"
    assert kind_of(["/usr/sbin/redis-server", "127.0.0.1:6379"], b"") == "other: redis-server"


def test_a_data_dir_names_its_test_without_the_counter() -> None:
    assert owning_test(DATA_DIR) == "quota"
    assert owning_test(["--data-dir", "/tmp/pytest-of-ci/pytest-7/test_files_survive_a_re3/data"]) == (
        "test_files_survive_a_re"
    )
    assert owning_test(["--data-dir", "/srv/filedock"]) == ""
    assert owning_test(["serve"]) == ""
