"""`pip install .` gives a working `filedock`: a wheel built from a copy of the tree (deleted once
built), installed into a fresh virtual environment, migrates and serves from an unrelated directory.

The dependencies come from .venv's site-packages through a `.pth` line, so nothing is downloaded
but the build backend. Only the fresh environment's own site-packages is a site directory: the
`.pth` files of .venv (its editable install of this tree among them) are not run there, so `app`
can only come from the wheel.
"""

import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import FileDockServer, clean_environment

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "alembic.ini", "app", "migrations")


def build_wheel(scratch: Path) -> Path:
    source = scratch / "source"
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, source / name)
    dist = scratch / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(dist), str(source)],
        check=True,
        capture_output=True,
    )
    shutil.rmtree(source)  # the installed copy must not lean on the tree it was built from
    (wheel,) = dist.glob("filedock-*.whl")
    return wheel


def fresh_venv(directory: Path, wheel: Path) -> Path:
    """A venv holding only the wheel, with .venv's site-packages appended for the dependencies."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(directory)], check=True)
    python = directory / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(purelib) / "_filedock_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps", str(wheel)],
        check=True,
        capture_output=True,
    )
    return directory


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    scratch = tmp_path_factory.mktemp("wheel")
    return fresh_venv(scratch / "venv", build_wheel(scratch))


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """A working directory with nothing of FileDock's in it."""
    directory = tmp_path / "elsewhere"
    directory.mkdir()
    return directory


def run(venv: Path, cwd: Path, *command: str) -> subprocess.CompletedProcess[str]:
    env = clean_environment()
    env.pop("PYTHONPATH", None)
    return subprocess.run(
        [str(venv / "bin" / command[0]), *command[1:]],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_installed_wheel_runs_its_own_copy_of_app_and_migrations(installed: Path, elsewhere: Path) -> None:
    probe = "import app, app.metadata.migrate as m; print(app.__file__); print(m.migrations_dir())"
    result = run(installed, elsewhere, "python", "-c", probe)
    assert result.returncode == 0, result.stderr
    package, migrations = (Path(line) for line in result.stdout.split())
    assert package.is_relative_to(installed) and migrations.is_relative_to(installed)
    assert (migrations / "versions").is_dir()


def test_installed_wheel_migrates_from_another_directory(installed: Path, elsewhere: Path) -> None:
    result = run(installed, elsewhere, "filedock", "migrate", "--data-dir", "data")
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout
    assert (elsewhere / "data" / "filedock.db").is_file()


@pytest.fixture
def served(installed: Path, elsewhere: Path) -> Iterator[FileDockServer]:
    server = FileDockServer(
        elsewhere / "data", binary=str(installed / "bin" / "filedock"), cwd=elsewhere
    ).start()
    yield server
    server.stop()


def test_installed_wheel_serves_an_upload_back_byte_exact(served: FileDockServer) -> None:
    payload = bytes(range(256)) * 64
    with httpx.Client(base_url=served.openai_url, timeout=30) as http:
        created = http.post(
            "/files", data={"purpose": "user_data"}, files={"file": ("notes.bin", payload)}
        ).raise_for_status()
        downloaded = http.get(f"/files/{created.json()['id']}/content").raise_for_status()
    assert downloaded.content == payload
