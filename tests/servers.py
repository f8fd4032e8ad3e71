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
PORT_ATTEMPTS = 3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening_inode(port: int) -> str | None:
    """The inode of the TCP socket listening on `port` on this machine, from /proc/net/tcp."""
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        if not table.exists():
            continue
        for line in table.read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                return fields[9]
    return None


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
    _log_start: int = field(default=0, repr=False)  # where the current start's log lines begin

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_url(self) -> str:
        return f"{self.url}/v1"

    def start(self) -> "FileDockServer":
        # `free_port` only finds a port free now: another test process (the SDK eras run side by
        # side) may bind it first, and this server then fails to bind while that one answers
        # /healthz on the port. So readiness also checks the listening socket is this server's,
        # and a server that lost its port starts again on another.
        for _ in range(PORT_ATTEMPTS):
            self.port = free_port()
            command = [self.binary, "serve", "--host", "127.0.0.1", "--port", str(self.port)]
            with open(self.log_path, "ab") as log:  # the server keeps its own copy of the descriptor
                self._log_start = log.tell()  # this start's lines follow
                self.process = subprocess.Popen(
                    [*command, "--data-dir", str(self.data_dir)],
                    env=self.environment(),
                    cwd=self.cwd,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            if self._wait_ready():
                return self
        raise RuntimeError(f"filedock lost its port {PORT_ATTEMPTS} times in a row; see {self.log_path}")

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

    def requests_total(self, *labels: str) -> float:
        """`filedock_http_requests_total` summed over the series holding every one of `labels`
        (`'method="POST"'`), from a scrape (which flushes the answering worker's counts first)."""
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in loopback.get(f"{self.url}/metrics").text.splitlines()
            if line.startswith("filedock_http_requests_total{") and all(label in line for label in labels)
        )

    def _wait_ready(self) -> bool:
        """Whether the server came up on its port; False if another process had taken the port."""
        deadline = time.monotonic() + START_DEADLINE_SECONDS
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                if "address already in use" in self._log_since_start():
                    return False
                raise RuntimeError(f"filedock exited with {self.process.returncode}; see {self.log_path}")
            try:
                answered = loopback.get(f"{self.url}/healthz", timeout=1).status_code == 200
            except httpx.TransportError:
                answered = False
            if answered and self._holds_port():
                return True
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"filedock did not answer /healthz within {START_DEADLINE_SECONDS} s")

    def _log_since_start(self) -> str:
        with self.log_path.open("rb") as log:
            log.seek(self._log_start)
            return log.read().decode(errors="replace")

    def _holds_port(self) -> bool:
        """Whether this server's process holds the socket listening on its port (Linux's /proc;
        elsewhere assumed)."""
        assert self.process is not None
        inode = listening_inode(self.port)
        if inode is None:
            return not Path("/proc/net/tcp").exists()
        fds = Path(f"/proc/{self.process.pid}/fd")
        try:
            links = [os.readlink(fd) for fd in fds.iterdir()]
        except OSError:  # the process is gone, or a descriptor closed while listed
            return False
        return f"socket:[{inode}]" in links

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
