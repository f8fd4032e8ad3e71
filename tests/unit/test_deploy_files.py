"""The Dockerfile and docker-compose.yml agree with the real CLI, the settings and /healthz.

No Docker engine runs here, so the files are read as text: the image's command goes through
the real click CLI (with `uvicorn.run` replaced), and the healthcheck command runs against a
stub `/healthz`.
"""

import contextlib
import fnmatch
import http.server
import json
import os
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml
from click.testing import CliRunner

from app.cli import main

ROOT = Path(__file__).resolve().parents[2]
HEALTHZ_URL = "http://127.0.0.1:8000/healthz"


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1].strip() + " "
            continue
        keyword, _, arguments = (pending + line.strip()).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def dockerfile_last(keyword: str) -> str:
    """The arguments of the last `keyword` instruction, the one Docker obeys."""
    found = [arguments for name, arguments in dockerfile_instructions() if name == keyword]
    assert found, f"the Dockerfile has no {keyword}"
    return found[-1]


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for name, arguments in dockerfile_instructions():
        if name == "ENV":
            for item in shlex.split(arguments):
                key, _, value = item.partition("=")
                env[key] = value
    return env


def image_command() -> list[str]:
    """ENTRYPOINT followed by CMD, both in exec form (so `filedock` is PID 1 and gets SIGTERM)."""
    return [*json.loads(dockerfile_last("ENTRYPOINT")), *json.loads(dockerfile_last("CMD"))]


def dockerfile_healthcheck() -> list[str]:
    _options, _, command = dockerfile_last("HEALTHCHECK").partition("CMD ")
    return list(json.loads(command))


def compose_service() -> dict[str, Any]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    service: dict[str, Any] = compose["services"]["filedock"]
    return service


def compose_healthcheck() -> list[str]:
    test = compose_service()["healthcheck"]["test"]
    assert test[0] == "CMD", "exec form: the slim image runs python directly"
    return list(test[1:])


def serve_image_command(data_dir: Path, **settings: str) -> tuple[int, dict[str, Any]]:
    """Run the image's command line through the real CLI with the image's ENV plus `settings`
    (as `docker run -e` would add them); the host and port it would serve on."""
    served: dict[str, Any] = {}
    env = {**dockerfile_env(), "FILEDOCK_DATA_DIR": str(data_dir)}  # /data is not writable here
    env.update({f"FILEDOCK_{name.upper()}": value for name, value in settings.items()})
    program, *arguments = image_command()
    assert program == "filedock"
    with (
        mock.patch.dict(os.environ),  # `serve` exports its settings; put the environment back after
        mock.patch(
            "app.server.run.serve",
            lambda settings, *args: served.update(host=settings.host, port=settings.port),
        ),
    ):
        for key in [k for k in os.environ if k.startswith("FILEDOCK_")]:
            del os.environ[key]
        os.environ.update(env)
        result = CliRunner().invoke(main, arguments, catch_exceptions=False)
    return result.exit_code, served


IMAGE_KEYS = {"api_keys": "sk-image-test=team"}  # the image binds 0.0.0.0: it needs keys to start


@contextlib.contextmanager
def stub_healthz(status: int) -> Iterator[int]:
    """A loopback HTTP server that answers /healthz with `status`; yields its port."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status if self.path == "/healthz" else 404)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def run_healthcheck(command: list[str], port: int) -> int:
    """Run a healthcheck command here, aimed at `port` instead of the container's 8000."""
    assert command[0] == "python", "the slim image has python but no curl"
    retargeted = [arg.replace("127.0.0.1:8000", f"127.0.0.1:{port}") for arg in command[1:]]
    return subprocess.run([sys.executable, *retargeted], capture_output=True, timeout=30).returncode


HEALTHCHECKS = [
    pytest.param(dockerfile_healthcheck, id="dockerfile"),
    pytest.param(compose_healthcheck, id="compose"),
]


def test_dockerfile_command_parses_with_the_real_cli(tmp_path: Path) -> None:
    exit_code, served = serve_image_command(tmp_path / "data", **IMAGE_KEYS)
    assert exit_code == 0
    assert served, "the command did not reach app.server.run.serve"


def test_dockerfile_command_refuses_open_mode_unless_allowed(tmp_path: Path) -> None:
    exit_code, served = serve_image_command(tmp_path / "data")
    assert exit_code != 0 and not served
    exit_code, served = serve_image_command(tmp_path / "data", allow_public_open_mode="true")
    assert exit_code == 0 and served


def test_dockerfile_command_serves_on_all_interfaces_at_port_8000(tmp_path: Path) -> None:
    _, served = serve_image_command(tmp_path / "data", **IMAGE_KEYS)
    assert (served["host"], served["port"]) == ("0.0.0.0", 8000)


def test_dockerfile_data_dir_is_the_volume() -> None:
    volume = dockerfile_last("VOLUME")
    volumes = json.loads(volume) if volume.startswith("[") else volume.split()
    assert volumes == [dockerfile_env()["FILEDOCK_DATA_DIR"]] == ["/data"]


def test_dockerfile_exposes_port_8000() -> None:
    assert dockerfile_last("EXPOSE").split() == ["8000"]


def test_dockerfile_runs_as_a_non_root_user() -> None:
    assert dockerfile_last("USER").split(":")[0] not in ("root", "0")


def test_dockerfile_installs_a_regular_package_and_drops_the_tree() -> None:
    # The wheel carries migrations/ (tests/deploy/test_wheel_install.py proves it); an editable
    # install would tie the image to the source tree again.
    runs = [args for name, args in dockerfile_instructions() if name == "RUN"]
    (install,) = [run for run in runs if "pip install --no-deps" in run]
    assert " -e " not in install and "--editable" not in install
    assert "rm -rf app migrations" in install


@pytest.mark.parametrize("healthcheck", HEALTHCHECKS)
def test_healthcheck_targets_healthz(healthcheck: Any) -> None:
    assert any(HEALTHZ_URL in arg for arg in healthcheck())


@pytest.mark.parametrize("healthcheck", HEALTHCHECKS)
def test_healthcheck_passes_when_healthz_answers_200(healthcheck: Any) -> None:
    with stub_healthz(200) as port:
        assert run_healthcheck(healthcheck(), port) == 0


@pytest.mark.parametrize("healthcheck", HEALTHCHECKS)
def test_healthcheck_fails_when_healthz_answers_503(healthcheck: Any) -> None:
    with stub_healthz(503) as port:
        assert run_healthcheck(healthcheck(), port) != 0


def test_dockerignore_keeps_every_copied_path() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    sources = [
        source
        for name, args in dockerfile_instructions()
        if name == "COPY"
        for source in shlex.split(args)[:-1]
    ]
    ignored = [s for s in sources if any(fnmatch.fnmatch(s, p) for p in patterns)]
    assert sources and ignored == []


def test_dockerignore_excludes_virtualenvs_data_and_git() -> None:
    patterns = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".venv-*", "data", ".git"} <= set(patterns)


def test_compose_service_builds_this_dockerfile() -> None:
    build = compose_service()["build"]
    assert (build if isinstance(build, str) else build.get("context", ".")) == "."


def test_compose_publishes_container_port_8000() -> None:
    container_ports = [str(p).rsplit(":", 1)[-1] for p in compose_service()["ports"]]
    assert container_ports == ["8000"]


def test_compose_keeps_data_in_a_named_volume() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts = [str(v).split(":") for v in compose_service()["volumes"]]
    assert [target for _, target in mounts] == ["/data"]
    assert mounts[0][0] in compose["volumes"]
