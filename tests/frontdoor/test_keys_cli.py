"""`filedock keys …` and `filedock projects …` as subprocesses, against a live server: keys made or
revoked while it runs take effect on the very next request, the database never holds a key in
plain text, and project usage and quotas are reported (the tenancy contract, issue 7).

Only the standard library, pytest, httpx and tests helpers are imported; the CLI comes from
FILEDOCK_BIN, as the server does.
"""

import json
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests import loopback
from tests.frontdoor.tenancy_helpers import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_FILES,
    GENERATED_KEY,
    QUICK,
    Cli,
    anthropic_auth,
    create_openai,
    era_c_auth,
    gemini_auth,
    module_server,
    openai_auth,
    openai_ids,
    upload_anthropic,
    upload_gemini,
)
from tests.servers import FILEDOCK_BIN, FileDockServer, clean_environment

ENV_KEY = "sk-env-key-1"
KEY_FIELDS = {"id", "project", "admin", "prefix", "created_at", "revoked_at", "source"}
PROJECT_FIELDS = {"project", "bytes", "files", "max_bytes", "max_files"}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileDockServer]:
    """Two workers, so 'the next request' may land on either process."""
    yield from module_server(tmp_path_factory, "cli", api_keys=f"{ENV_KEY}=envproj", workers="2")


@pytest.fixture(scope="module")
def cli(live: FileDockServer) -> Cli:
    return Cli.of(live)


def statuses(server: FileDockServer, key: str, times: int = 6) -> set[int]:
    """The statuses of `times` requests with `key` in each dialect (list routes)."""
    seen = set()
    for _ in range(times):
        seen.add(loopback.get(f"{server.url}/openai/v1/files", headers=openai_auth(key)).status_code)
        seen.add(loopback.get(f"{server.url}/anthropic/v1/files", headers=anthropic_auth(key)).status_code)
        seen.add(loopback.get(f"{server.url}/v1/files", headers=era_c_auth(key)).status_code)
        seen.add(loopback.get(f"{server.url}/gemini/v1beta/files", headers=gemini_auth(key)).status_code)
    return seen


def test_create_prints_only_the_key(cli: Cli) -> None:
    done = cli.run("keys", "create", "--project", "printed")
    assert GENERATED_KEY.fullmatch(done.stdout.strip()), done.stdout
    assert done.stdout.count("\n") <= 1 and done.stdout.strip() == done.stdout.rstrip("\n")


def test_created_key_works_on_the_next_request(live: FileDockServer, cli: Cli) -> None:
    key = cli.create_key("made-live")
    assert statuses(live, key) == {200}
    created = create_openai(live, key, b"twelve bytes", "live.txt")
    assert openai_ids(live, key) == {created["id"]}
    assert created["id"] not in openai_ids(live, ENV_KEY)
    assert cli.projects()["made-live"] == {
        "project": "made-live",
        "bytes": 12,
        "files": 1,
        "max_bytes": DEFAULT_MAX_BYTES,
        "max_files": DEFAULT_MAX_FILES,
    }


def test_two_keys_of_one_project_share_its_files(live: FileDockServer, cli: Cli) -> None:
    first, second = cli.create_key("shared-proj"), cli.create_key("shared-proj")
    assert first != second
    created = create_openai(live, first, b"shared")
    assert openai_ids(live, second) == {created["id"]}


def test_create_makes_a_new_project(cli: Cli) -> None:
    cli.create_key("brand-new")
    project = cli.projects()["brand-new"]
    assert set(project) == PROJECT_FIELDS
    assert (project["bytes"], project["files"]) == (0, 0)
    assert (project["max_bytes"], project["max_files"]) == (DEFAULT_MAX_BYTES, DEFAULT_MAX_FILES)


def test_keys_list_shows_a_prefix_never_the_key(cli: Cli) -> None:
    before = int(time.time())
    key = cli.create_key("listed", admin=True)
    plain = cli.create_key("listed")
    done = cli.run("keys", "list", "--json")
    assert key not in done.stdout and plain not in done.stdout
    assert key[3:] not in done.stdout
    listed = cli.list_keys()
    for entry in listed:
        assert set(entry) == KEY_FIELDS, entry
        assert entry["source"] in ("database", "env")
        assert entry["id"] and (entry["source"] == "env" or entry["id"].startswith("key_")), entry
    [admin] = [k for k in listed if k["source"] == "database" and key.startswith(k["prefix"])]
    [normal] = [k for k in listed if k["source"] == "database" and plain.startswith(k["prefix"])]
    assert admin["id"] != normal["id"]
    assert (admin["project"], admin["admin"], admin["revoked_at"]) == ("listed", True, None)
    assert (normal["project"], normal["admin"], normal["revoked_at"]) == ("listed", False, None)
    assert admin["prefix"].startswith("fd-") and len(admin["prefix"]) < len(key)
    assert before - 5 <= admin["created_at"] <= int(time.time()) + 5
    [env] = [k for k in listed if k["source"] == "env"]
    assert (env["project"], env["admin"], env["revoked_at"]) == ("envproj", False, None)
    text = cli.run("keys", "list")
    assert key not in text.stdout and plain not in text.stdout


@pytest.mark.parametrize("by", ["id", "full-key"])
def test_revoked_key_is_401_on_the_next_request(live: FileDockServer, cli: Cli, by: str) -> None:
    key = cli.create_key("revoked-" + by)
    create_openai(live, key, b"kept")
    assert statuses(live, key) == {200}
    key_id = cli.key_id(key)
    cli.revoke(key_id if by == "id" else key)
    assert statuses(live, key) == {401}
    upload = loopback.post(
        f"{live.url}/openai/v1/files",
        headers=openai_auth(key),
        files={"file": ("a.txt", b"x")},
        data={"purpose": "user_data"},
    )
    assert upload.status_code == 401
    [entry] = [k for k in cli.list_keys() if k["id"] == key_id]
    assert isinstance(entry["revoked_at"], int)
    assert cli.projects()["revoked-" + by]["files"] == 1  # revoking a key keeps its project's files


def test_revoking_an_unknown_id_fails_with_a_message(cli: Cli) -> None:
    done = cli.run("keys", "revoke", "key_doesnotexist", check=False)
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert output.strip() and "Traceback" not in output, output


def test_revoking_an_env_key_fails_and_it_keeps_working(live: FileDockServer, cli: Cli) -> None:
    [env] = [k for k in cli.list_keys() if k["source"] == "env"]
    for target in (ENV_KEY, env["id"]):
        done = cli.run("keys", "revoke", target, check=False)
        assert done.returncode != 0
        output = done.stdout + done.stderr
        assert "FILEDOCK_API_KEYS" in output and "Traceback" not in output, output
    assert statuses(live, ENV_KEY, times=2) == {200}


@pytest.mark.embedded_only("reads the SQLite file's bytes")
def test_the_database_never_holds_a_plaintext_key(live: FileDockServer, cli: Cli) -> None:
    key = cli.create_key("hashed")
    admin = cli.create_key("hashed", admin=True)
    create_openai(live, key, b"x")
    revoked = cli.create_key("hashed")
    cli.revoke(revoked)
    secrets = [key, admin, revoked, ENV_KEY]
    files = sorted(live.data_dir.glob("filedock.db*"))
    assert files
    for path in files:
        raw = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in raw, (path.name, secret[:6])
            body = secret.removeprefix("fd-").encode()
            assert body not in raw, (path.name, secret[:6])
    with sqlite3.connect(live.data_dir / "filedock.db", timeout=10) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for row in db.execute(f'SELECT * FROM "{table}"'):
                for cell in row:
                    for secret in secrets:
                        assert secret not in str(cell), (table, secret[:6])


def test_projects_list_counts_live_files_of_every_dialect(live: FileDockServer, cli: Cli) -> None:
    key = cli.create_key("usage")
    first = create_openai(live, key, b"a" * 10)
    assert upload_anthropic(live, key, b"b" * 20).status_code == 200
    assert upload_gemini(live, key, b"c" * 30).status_code == 200
    usage = cli.projects()["usage"]
    assert (usage["bytes"], usage["files"]) == (60, 3)
    listed = loopback.get(f"{live.url}/openai/v1/files", headers=openai_auth(key)).json()["data"]
    assert sum(f["bytes"] for f in listed) == usage["bytes"]
    loopback.delete(f"{live.url}/openai/v1/files/{first['id']}", headers=openai_auth(key)).raise_for_status()
    usage = cli.projects()["usage"]
    assert (usage["bytes"], usage["files"]) == (50, 2)


def test_set_quota_is_listed_and_enforced_without_a_restart(live: FileDockServer, cli: Cli) -> None:
    key = cli.create_key("capped")
    cli.set_quota("capped", max_bytes=100, max_files=5)
    projects = cli.projects()
    assert (projects["capped"]["max_bytes"], projects["capped"]["max_files"]) == (100, 5)
    assert (projects["usage"]["max_bytes"], projects["usage"]["max_files"]) == (
        DEFAULT_MAX_BYTES,
        DEFAULT_MAX_FILES,
    )
    create_openai(live, key, b"x" * 60)
    refused = loopback.post(
        f"{live.url}/openai/v1/files",
        headers=openai_auth(key),
        files={"file": ("b.txt", b"y" * 60)},
        data={"purpose": "user_data"},
    )
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["code"] == "storage_limit_exceeded"
    cli.set_quota("capped", max_bytes=1000)
    assert cli.projects()["capped"]["max_bytes"] == 1000
    create_openai(live, key, b"y" * 60)


def test_data_dir_may_come_from_the_environment(live: FileDockServer, cli: Cli) -> None:
    key = cli.create_key("env-dir")
    env = {**cli.env, "FILEDOCK_DATA_DIR": str(live.data_dir)}
    done = subprocess.run(
        [FILEDOCK_BIN, "keys", "list", "--json"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    assert any(key.startswith(k["prefix"]) and k["project"] == "env-dir" for k in listed)


# --- open mode and database keys --------------------------------------------------------------


def test_a_key_made_in_open_mode_maps_at_once_and_ends_open_mode_at_restart(
    make_server: Callable[..., FileDockServer],
) -> None:
    server = make_server(**QUICK)  # no keys: open mode
    cli = Cli.of(server)
    key = cli.create_key("late")
    created = create_openai(server, key, b"late")
    assert created["id"] not in openai_ids(server, "sk-anyone")  # open mode: anyone is `default`
    assert created["id"] in openai_ids(server, key)
    assert loopback.get(f"{server.url}/openai/v1/files").status_code == 200  # still open until restarted
    server.restart()  # a database key now exists: auto mode is no longer open
    assert loopback.get(f"{server.url}/openai/v1/files", headers=openai_auth("sk-anyone")).status_code == 401
    assert loopback.get(f"{server.url}/openai/v1/files").status_code == 401
    assert openai_ids(server, key) == {created["id"]}
    cli.revoke(key)
    assert loopback.get(f"{server.url}/openai/v1/files", headers=openai_auth(key)).status_code == 401


# --- which database, and not a new one by mistake --------------------------------------------


@pytest.mark.embedded_only("the refusal is about a data dir without a SQLite file")
def test_keys_refuse_a_data_dir_without_a_database(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "typo", clean_environment())
    refused = cli.run("keys", "create", "--project", "p", check=False)
    assert refused.returncode == 1 and refused.stdout == ""
    assert "--create" in refused.stderr and str(tmp_path / "typo" / "filedock.db") in refused.stderr
    assert not (tmp_path / "typo" / "filedock.db").exists()
    assert cli.run("projects", "list", check=False).returncode == 1
    key = cli.create_key("p", create=True)
    assert [k["project"] for k in cli.list_keys() if key.startswith(k["prefix"])] == ["p"]


def test_admin_commands_name_their_database_with_the_password_masked(live: FileDockServer, cli: Cli) -> None:
    url = live.environment().get("FILEDOCK_DATABASE_URL", "")
    [line] = [
        line for line in cli.run("projects", "list").stderr.splitlines() if line.startswith("database: ")
    ]
    if url:  # PostgreSQL: user@host/db shown, the password not
        password = url.split("://", 1)[1].split("@", 1)[0].partition(":")[2]
        assert url.rsplit("/", 1)[1] in line and (not password or password not in line)
    else:
        assert line.endswith(str(live.data_dir / "filedock.db"))


def test_set_quota_takes_units(cli: Cli) -> None:
    cli.run("projects", "set-quota", "units", "--max-bytes", "10GB")
    assert cli.projects()["units"]["max_bytes"] == 10_000_000_000
    cli.run("projects", "set-quota", "units", "--max-bytes", "512MiB")
    assert cli.projects()["units"]["max_bytes"] == 512 * 1024 * 1024
    refused = cli.run("projects", "set-quota", "units", "--max-bytes", "lots", check=False)
    assert refused.returncode == 2 and "512MiB" in refused.stderr
