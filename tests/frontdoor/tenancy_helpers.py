"""Shared helpers for the tenancy front-door tests: projects, keys, quotas and rate limits.

Only the standard library, pytest, httpx and tests.servers are imported: these tests also run from
the openai 2.x virtual environment, which does not have FileDock installed. The `filedock` CLI is
always run from FILEDOCK_BIN (the main .venv), as the server itself is.
"""

import json
import re
import secrets
import signal
import socket
import string
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import loopback, scaleout
from tests.servers import FILEDOCK_BIN, FileDockServer, free_port

# --- keys and projects ---------------------------------------------------------------------------

ALPHA = "sk-alpha-1"
BETA = "sk-beta-1"
PLAIN = "sk-plain"  # a bare key: project `default`
TWO_PROJECTS = f"{ALPHA}=alpha,{BETA}=beta,{PLAIN}"
WRONG = "sk-wrong-but-long-key"
GENERATED_KEY = re.compile(r"fd-[A-Za-z0-9_-]{43}")
DEFAULT_MAX_BYTES = 2_500_000_000_000
DEFAULT_MAX_FILES = 1_000_000

# One worker and no fsync: these servers start fast, and nothing here is about durability.
QUICK = {"fsync": "false", "workers": "1"}


def keys_setting(pairs: dict[str, str]) -> str:
    """FILEDOCK_API_KEYS for {key: project}."""
    return ",".join(f"{key}={project}" for key, project in pairs.items())


# --- the three dialects' auth headers ------------------------------------------------------------

ANTHROPIC_VERSION = "2023-06-01"
ERA_C_VERSION = "2026-10-21"


def openai_auth(key: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"} if key is not None else {}


def anthropic_auth(key: str | None) -> dict[str, str]:
    headers = {"anthropic-version": ANTHROPIC_VERSION}
    return {**headers, "x-api-key": key} if key is not None else headers


def era_c_auth(key: str | None) -> dict[str, str]:
    """Anthropic SDK 2.x: `Authorization: Bearer` and the 2026 version header."""
    headers = {"anthropic-version": ERA_C_VERSION}
    return {**headers, "authorization": f"Bearer {key}"} if key is not None else headers


def gemini_auth(key: str | None) -> dict[str, str]:
    return {"x-goog-api-key": key} if key is not None else {}


# --- ids -------------------------------------------------------------------------------------------

_ALPHABET = string.ascii_letters + string.digits
_BASE36 = string.digits + string.ascii_lowercase


def unknown_file_id() -> str:
    """A well-formed OpenAI file id that was never issued."""
    return "file-" + "".join(secrets.choice(_ALPHABET) for _ in range(24))


def unknown_upload_id() -> str:
    return "upload_" + "".join(secrets.choice(_ALPHABET) for _ in range(24))


def to_anthropic_id(file_id: str) -> str:
    return "file_" + file_id.removeprefix("file-")


def to_gemini_id(file_id: str) -> str:
    """The bare Gemini id of an OpenAI file id (the 24 base62 characters as 28 base36 digits)."""
    number = 0
    for char in file_id.removeprefix("file-"):
        number = number * 62 + _ALPHABET.index(char)
    digits = []
    for _ in range(28):
        number, digit = divmod(number, 36)
        digits.append(_BASE36[digit])
    return "".join(reversed(digits))


# --- requests --------------------------------------------------------------------------------------


def upload_openai(
    server: FileDockServer,
    key: str | None,
    data: bytes = b"hello",
    name: str = "a.txt",
    *,
    extra_headers: dict[str, str] | None = None,
    expect: int | None = 200,
) -> httpx.Response:
    response = loopback.post(
        f"{server.url}/openai/v1/files",
        headers={**openai_auth(key), **(extra_headers or {})},
        files={"file": (name, data, "text/plain")},
        data={"purpose": "user_data"},
        timeout=30,
    )
    if expect is not None:
        assert response.status_code == expect, response.text
    return response


def create_openai(
    server: FileDockServer, key: str | None, data: bytes = b"hello", name: str = "a.txt"
) -> Any:
    return upload_openai(server, key, data, name).json()


def upload_anthropic(
    server: FileDockServer, key: str | None, data: bytes = b"hello", name: str = "a.txt"
) -> httpx.Response:
    return loopback.post(
        f"{server.url}/anthropic/v1/files",
        headers=anthropic_auth(key),
        files={"file": (name, data, "text/plain")},
        timeout=30,
    )


def gemini_start(
    server: FileDockServer, key: str | None, size: int, *, use_query: bool = False, prefix: str = "/gemini"
) -> httpx.Response:
    headers = {
        "x-goog-upload-protocol": "resumable",
        "x-goog-upload-command": "start",
        "x-goog-upload-header-content-length": str(size),
        "x-goog-upload-header-content-type": "text/plain",
    }
    params = {}
    if use_query and key is not None:
        params["key"] = key
    else:
        headers.update(gemini_auth(key))
    return loopback.post(
        f"{server.url}{prefix}/upload/v1beta/files",
        headers=headers,
        params=params,
        json={"file": {"displayName": "g.txt"}},
        timeout=30,
    )


def gemini_chunk(
    url: str, data: bytes, offset: int, command: str = "upload, finalize", **headers: str
) -> httpx.Response:
    sent = {"x-goog-upload-command": command, "x-goog-upload-offset": str(offset), **headers}
    return loopback.post(url, headers=sent, content=data, timeout=30)


def upload_gemini(server: FileDockServer, key: str | None, data: bytes = b"hello") -> httpx.Response:
    """A whole resumable upload; the start reply when it is refused, else the finalize reply."""
    started = gemini_start(server, key, len(data))
    if started.status_code != 200:
        return started
    return gemini_chunk(started.headers["x-goog-upload-url"], data, 0)


def openai_ids(server: FileDockServer, key: str | None, **headers: str) -> set[str]:
    return {f["id"] for f in openai_files(server, key, **headers)}


def openai_files(server: FileDockServer, key: str | None, **headers: str) -> list[dict[str, Any]]:
    response = loopback.get(
        f"{server.url}/openai/v1/files",
        headers={**openai_auth(key), **headers},
        params={"limit": 10000},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    files: list[dict[str, Any]] = response.json()["data"]
    return files


def anthropic_ids(server: FileDockServer, key: str | None, **headers: str) -> set[str]:
    response = loopback.get(
        f"{server.url}/anthropic/v1/files",
        headers={**anthropic_auth(key), **headers},
        params={"limit": 1000},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return {f["id"] for f in response.json()["data"]}


def gemini_names(server: FileDockServer, key: str | None, **headers: str) -> set[str]:
    response = loopback.get(
        f"{server.url}/gemini/v1beta/files",
        headers={**gemini_auth(key), **headers},
        params={"pageSize": 100},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return {f["name"] for f in response.json().get("files", [])}


def comparable(response: httpx.Response, *ids: str) -> tuple[int, Any]:
    """Status and JSON body, with the given ids replaced by `<ID>` and request ids dropped."""
    text = response.text
    for value in ids:
        text = text.replace(value, "<ID>")
    body: Any = json.loads(text) if text else None
    if isinstance(body, dict):
        body.pop("request_id", None)
    return response.status_code, body


def assert_same_as_unknown(
    other: httpx.Response, unknown: httpx.Response, other_id: str, unknown_id: str, status: int = 404
) -> None:
    """Another project's id gets exactly the reply a never-issued id gets (bar the id itself)."""
    assert other.status_code == status, other.text
    assert comparable(other, other_id) == comparable(unknown, unknown_id)
    assert other.headers.get("content-type") == unknown.headers.get("content-type")


# --- dialect error shapes --------------------------------------------------------------------------


def openai_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    return error


def anthropic_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == "error", body
    assert "request_id" in body
    error: dict[str, Any] = body["error"]
    assert isinstance(error["message"], str) and error["message"]
    return error


def gemini_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == status, error
    assert isinstance(error["message"], str) and error["message"]
    return error


def assert_quota_error(dialect: str, response: httpx.Response) -> None:
    """The contract's over-quota reply of each dialect."""
    if dialect == "openai":
        error = openai_error(response, 400)
        assert (error["type"], error["code"]) == ("invalid_request_error", "storage_limit_exceeded")
        assert error["message"].startswith("Storage limit exceeded for this project"), error
    elif dialect == "anthropic":
        error = anthropic_error(response, 400)
        assert error["type"] == "invalid_request_error", error
        assert error["details"]["error_code"] == "storage_quota_exceeded", error
    else:
        assert gemini_error(response, 400)["status"] == "FAILED_PRECONDITION"


# --- the CLI ---------------------------------------------------------------------------------------


@dataclass
class Cli:
    """`filedock <args> --data-dir D` in the environment of a server (or of a data dir)."""

    data_dir: Path
    env: dict[str, str]

    @classmethod
    def of(cls, server: FileDockServer) -> "Cli":
        return cls(server.data_dir, server.environment())

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [FILEDOCK_BIN, *args, "--data-dir", str(self.data_dir)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check:
            assert done.returncode == 0, (
                f"filedock {' '.join(args)} exited {done.returncode}: {done.stdout}{done.stderr}"
            )
        return done

    def create_key(self, project: str, *, admin: bool = False, create: bool = False) -> str:
        flags = [*(["--admin"] if admin else []), *(["--create"] if create else [])]
        out = self.run("keys", "create", "--project", project, *flags).stdout
        lines = out.splitlines()
        assert len(lines) == 1, out
        assert GENERATED_KEY.fullmatch(lines[0]), out
        return lines[0]

    def list_keys(self) -> list[dict[str, Any]]:
        listed: list[dict[str, Any]] = json.loads(self.run("keys", "list", "--json").stdout)
        return listed

    def key_id(self, key: str) -> str:
        [entry] = [k for k in self.list_keys() if k["source"] == "database" and key.startswith(k["prefix"])]
        return str(entry["id"])

    def revoke(self, key_or_id: str) -> None:
        self.run("keys", "revoke", key_or_id)

    def projects(self) -> dict[str, dict[str, Any]]:
        listed = json.loads(self.run("projects", "list", "--json").stdout)
        return {p["project"]: p for p in listed}

    def set_quota(self, project: str, *, max_bytes: int | None = None, max_files: int | None = None) -> None:
        args = ["projects", "set-quota", project]
        if max_bytes is not None:
            args += ["--max-bytes", str(max_bytes)]
        if max_files is not None:
            args += ["--max-files", str(max_files)]
        self.run(*args)


# --- servers ---------------------------------------------------------------------------------------


def module_server(factory: pytest.TempPathFactory, name: str, **settings: str) -> Iterator[FileDockServer]:
    server = FileDockServer(factory.mktemp(name) / "data", {**QUICK, **settings}).start()
    yield server
    server.stop()


@dataclass
class ServeProcess:
    """`filedock serve --host H`, which FileDockServer cannot do (it always binds 127.0.0.1)."""

    data_dir: Path
    host: str
    settings: dict[str, str]
    process: subprocess.Popen[str] | None = None
    port: int = 0

    def environment(self) -> dict[str, str]:
        return FileDockServer(self.data_dir, {**QUICK, **self.settings}).environment()

    def launch(self) -> subprocess.Popen[str]:
        self.port = free_port_on(self.host)
        command = [FILEDOCK_BIN, "serve", "--host", self.host, "--port", str(self.port)]
        self.process = subprocess.Popen(
            [*command, "--data-dir", str(self.data_dir)],
            env=self.environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        return self.process

    def exit_within(self, seconds: float = 30) -> tuple[int | None, str]:
        """(exit code, output) if it exits in time, else (None, "") and it keeps running."""
        assert self.process is not None
        try:
            output, _ = self.process.communicate(timeout=seconds)
        except subprocess.TimeoutExpired:
            return None, ""
        return self.process.returncode, output

    def answers(self, seconds: float = 30) -> bool:
        """True once /healthz answers 200 on loopback; False if the process exits first."""
        assert self.process is not None
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                if (
                    loopback.get(f"http://{self.probe_host}:{self.port}/healthz", timeout=1).status_code
                    == 200
                ):
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        return False

    @property
    def probe_host(self) -> str:
        return "127.0.0.1" if self.host in ("0.0.0.0", "localhost") else self.host

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()


def free_port_on(host: str) -> int:
    if host in ("127.0.0.1", "localhost"):
        return free_port()
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


# --- storage inspection ----------------------------------------------------------------------------


def blob_names(server: FileDockServer) -> set[str]:
    return {str(path).rsplit("/", 1)[-1] for path in server.blob_files()}


def row_blob_keys(server: FileDockServer) -> set[str]:
    """The blob keys that file and part rows name."""
    rows = server.sql("SELECT blob_key FROM files UNION ALL SELECT blob_key FROM upload_parts")
    return {str(row[0]) for row in rows}


def is_embedded() -> bool:
    return not scaleout.is_scaleout()
