"""Start real servers for tests: `filedock serve` on a free loopback port, stopped by pid.

Uses only the standard library and httpx, so the front-door tests also run from a second
virtual environment that holds another openai SDK version and not FileDock itself.
"""

import os
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests import loopback, scaleout

ROOT = Path(__file__).resolve().parents[1]
FILEDOCK_BIN = os.environ.get("FILEDOCK_BIN") or str(ROOT / ".venv" / "bin" / "filedock")
START_DEADLINE_SECONDS = 30


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    """Poll `condition` until it holds or `seconds` pass; whether it held."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def clean_environment(**settings: str) -> dict[str, str]:
    """The test process's environment without FILEDOCK_* variables, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FILEDOCK_")}
    env.update({f"FILEDOCK_{k.upper()}": str(v) for k, v in settings.items()})
    return env


@dataclass
class FileDockServer:
    data_dir: Path
    settings: dict[str, str] = field(default_factory=dict)
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    binary: str = FILEDOCK_BIN  # another installation's `filedock`, for tests of installing
    cwd: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_url(self) -> str:
        return f"{self.url}/v1"

    def start(self) -> "FileDockServer":
        self.port = free_port()
        log = open(self.data_dir.parent / f"{self.data_dir.name}-server.log", "ab")  # noqa: SIM115
        command = [self.binary, "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        self.process = subprocess.Popen(
            [*command, "--data-dir", str(self.data_dir)],
            env=self.environment(),
            cwd=self.cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready()
        return self

    def environment(self) -> dict[str, str]:
        """The server's environment: the test backend's settings, then this server's own."""
        backend = scaleout.backend().settings_for(self.data_dir) if scaleout.is_scaleout() else {}
        settings = {"log_level": "warning", "workers": "1", **backend, **self.settings}
        env = clean_environment(**settings)
        if str(settings.get("blob_url", "")).startswith("s3://"):
            env.update(scaleout.S3_CREDENTIALS)
        return env

    def sql(self, statement: str, *params: object) -> list[tuple[object, ...]]:
        """Run SQL (with `?` placeholders) on this server's database, SQLite or PostgreSQL."""
        if scaleout.is_scaleout():
            database = scaleout.backend().settings_for(self.data_dir)["database_url"].rsplit("/", 1)[1]
            return scaleout.backend().postgres.query(statement, params, database)
        with sqlite3.connect(self.data_dir / "filedock.db", timeout=10) as db:
            return db.execute(statement, params).fetchall()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_DEADLINE_SECONDS
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"filedock exited with {self.process.returncode}; see {self.log_path}")
            try:
                if loopback.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"filedock did not answer /healthz within {START_DEADLINE_SECONDS} s")

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}-server.log"

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def restart(self) -> "FileDockServer":
        self.stop()
        return self.start()

    def leftovers(self) -> list[Path] | list[str]:
        """Unfinished writes: temporary files on disk, unfinished multipart uploads on S3."""
        if scaleout.is_scaleout():
            return scaleout.backend().s3.unfinished_uploads(self._prefix())
        return sorted((self.data_dir / "blobs" / "tmp").glob("*"))

    def blob_files(self) -> list[Path] | list[str]:
        """The committed blobs: files on disk, or object keys under this server's prefix on S3."""
        if scaleout.is_scaleout():
            return [k for k in scaleout.backend().s3.keys(self._prefix()) if "/_health/" not in k]
        root = self.data_dir / "blobs"
        return sorted(p for p in root.rglob("*") if p.is_file() and p.parent.name != "tmp")

    def put_blob(self, key: str, data: bytes) -> None:
        """Write a blob behind the server's back (a planted orphan, or damage to a file's bytes)."""
        if scaleout.is_scaleout():
            scaleout.backend().s3.put(self._prefix() + key, data)
            return
        path = self.data_dir / "blobs" / key[-2:] / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def delete_blob(self, key: str) -> None:
        """Remove a blob behind the server's back."""
        if scaleout.is_scaleout():
            scaleout.backend().s3.delete(self._prefix() + key)
        else:
            (self.data_dir / "blobs" / key[-2:] / key).unlink()

    def _prefix(self) -> str:
        return scaleout.backend().settings_for(self.data_dir)["blob_url"].split("/", 3)[3] + "/"


class S3Server(FileDockServer):
    """A server with exactly its own settings and the test S3 credentials: none of the test
    backend's defaults (which force path-style addressing, for one)."""

    def environment(self) -> dict[str, str]:
        env = clean_environment(log_level="warning", workers="1", **self.settings)
        env.update(scaleout.S3_CREDENTIALS)
        return env
