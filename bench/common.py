"""Shared benchmark machinery: tools, servers on free loopback ports, RSS sampling, the table.

Servers run as subprocesses and are stopped by pid. Every phase measures FileDock and its
reference (nginx, dd) the same way, with the load generated from separate processes.
"""

import contextlib
import dataclasses
import importlib.util
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
FILEDOCK_BIN = ROOT / ".venv" / "bin" / "filedock"
MiB = 1024 * 1024
MB = 1_000_000
RSS_LIMIT_MIB = 150.0
START_DEADLINE_SECONDS = 90.0  # a shared, loaded machine starts two workers slowly
# Worker processes for FileDock and for nginx alike; `run_all --workers` sets it.
WORKERS = os.cpu_count() or 1
# Settings every FileDock server of the run gets (`run_all --server log_level=info`); a phase's own
# settings win over these.
SERVER_SETTINGS: dict[str, str] = {}


# -- setup -----------------------------------------------------------------------------------


def ensure_tools() -> None:
    """Install what the benchmark needs and the machine lacks: nginx, wrk, curl, matplotlib."""
    missing = [
        pkg for tool, pkg in (("nginx", "nginx-light"), ("wrk", "wrk"), ("curl", "curl")) if not _which(tool)
    ]
    if missing:
        print(f"installing {' '.join(missing)} from Debian's packages", flush=True)
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env)
    if importlib.util.find_spec("matplotlib") is None:
        print("installing matplotlib into the virtual environment", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "matplotlib"], check=True)


def _which(tool: str) -> str | None:
    return shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_source_file(path: Path, size: int) -> Path:
    """A file of random bytes (incompressible, unlike zeros), reused when it already exists."""
    if path.exists() and path.stat().st_size == size:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        for _ in range(size // (16 * MiB)):
            out.write(os.urandom(16 * MiB))
        out.write(os.urandom(size % (16 * MiB)))
    return path


# -- servers ---------------------------------------------------------------------------------


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


def _wait_http(
    url: str, process: subprocess.Popen[bytes], log: Path, seconds: float = START_DEADLINE_SECONDS
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode}; see {log}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=1).status_code < 500:
                return
        time.sleep(0.05)
    _stop(process)
    raise TimeoutError(f"{url} did not answer within {seconds} s; see {log}")


@dataclass
class Server:
    url: str
    pid: int
    data_dir: Path


@contextlib.contextmanager
def filedock(
    name: str,
    env_extra: dict[str, str] | None = None,
    *,
    prefix: Sequence[str] = (),
    start_seconds: float = START_DEADLINE_SECONDS,
    **settings: str,
) -> Iterator[Server]:
    """`filedock serve` on a free loopback port with a fresh data dir under bench/out/<name>.

    `settings` become FILEDOCK_* variables; `env_extra` (e.g. S3 credentials) is added as is;
    `prefix` runs the server under another command (valgrind), given `start_seconds` to answer.
    """
    data_dir = OUT / name
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FILEDOCK_")}
    chosen = {"log_level": "warning", "workers": str(WORKERS), **SERVER_SETTINGS, **settings}
    env.update({f"FILEDOCK_{k.upper()}": v for k, v in chosen.items()})
    env.update(env_extra or {})
    log = OUT / f"{name}-server.log"
    command = [*prefix, str(FILEDOCK_BIN), "serve", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [*command, "--data-dir", str(data_dir)], env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
    try:
        _wait_http(f"http://127.0.0.1:{port}/healthz", process, log, start_seconds)
        yield Server(f"http://127.0.0.1:{port}", process.pid, data_dir)
    finally:
        _stop(process)


POSTGRES_HOST = "127.0.0.1:5432"


def psql(sql: str, database: str = "postgres") -> str:
    """Run `sql` with psql against the local PostgreSQL (trust auth, user postgres)."""
    host, port = POSTGRES_HOST.split(":")
    command = ["psql", "-h", host, "-p", port, "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1"]
    result = subprocess.run([*command, "-qAtc", sql], capture_output=True, text=True, check=False)
    if result.returncode:
        raise RuntimeError(f"psql failed: {result.stderr.strip()}")
    return result.stdout.strip()


@contextlib.contextmanager
def postgres_database(name: str) -> Iterator[str]:
    """A fresh PostgreSQL database `filedock_bench_<name>_<hex>`, dropped afterwards; its asyncpg URL."""
    database = f"filedock_bench_{name}_{secrets.token_hex(4)}"
    psql(f"CREATE DATABASE {database}")
    try:
        yield f"postgresql+asyncpg://postgres@{POSTGRES_HOST}/{database}"
    finally:
        psql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


@contextlib.contextmanager
def seaweedfs_s3(name: str) -> Iterator[Any]:
    """SeaweedFS's S3 server on free loopback ports with a fresh bucket (tests/scaleout.py's)."""
    from tests.scaleout import SeaweedS3

    directory = OUT / f"{name}-seaweedfs"
    shutil.rmtree(directory, ignore_errors=True)
    s3 = SeaweedS3(directory).start()
    try:
        yield s3
    finally:
        s3.stop()
        shutil.rmtree(directory, ignore_errors=True)


NGINX_CONF = """\
user root;
worker_processes {workers};
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    default_type application/octet-stream;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
"""


@contextlib.contextmanager
def nginx(root: Path) -> Iterator[Server]:
    """nginx (sendfile on, access log off) serving `root` as static files, on a free port."""
    prefix = OUT / "nginx"
    prefix.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(NGINX_CONF.format(workers=WORKERS, prefix=prefix, port=port, root=root))
    log = prefix / "error.log"
    binary = _which("nginx") or "nginx"
    process = subprocess.Popen([binary, "-p", str(prefix), "-c", str(conf)], stderr=subprocess.STDOUT)
    try:
        _wait_http(f"http://127.0.0.1:{port}/", process, log)
        yield Server(f"http://127.0.0.1:{port}", process.pid, root)
    finally:
        _stop(process)


# -- memory ----------------------------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants, from /proc/<pid>/task/*/children."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        with contextlib.suppress(OSError):
            for task in os.scandir(f"/proc/{current}/task"):
                with open(f"{task.path}/children") as children:
                    todo.extend(int(child) for child in children.read().split())
    return pids


TICKS = os.sysconf("SC_CLK_TCK")
STAT_START_TIME = 19  # field indexes in `proc_stat`'s list (the process's state is 0)


def proc_stat(path: str) -> list[str]:
    """The fields of a /proc/<pid>[/task/<tid>]/stat file after the command name (which may hold
    spaces and parentheses). Raises OSError once the process has gone."""
    with open(path) as stat:
        return stat.read().rsplit(")", 1)[1].split()


def cpu_seconds(fields: list[str]) -> float:
    """User plus system CPU time from `proc_stat`'s fields."""
    return (int(fields[11]) + int(fields[12])) / TICKS


def _status_kib(pid: int, key: str) -> int:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(key):
                return int(line.split()[1])
    return 0


class RssSampler:
    """Peak RSS of a process tree while the block runs, in MiB: the whole tree and its largest process.

    Samples VmRSS every `interval` seconds and, since VmHWM is reset on entry
    (`echo 5 > /proc/<pid>/clear_refs`), also catches peaks between samples.
    """

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_kib = 0
        self.largest_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "RssSampler":
        for pid in process_tree(self.pid):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/clear_refs", "w") as refs:
                refs.write("5")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._record([_status_kib(pid, "VmHWM:") for pid in process_tree(self.pid)])

    def _run(self) -> None:
        while not self._stop.is_set():
            self._record([_status_kib(pid, "VmRSS:") for pid in process_tree(self.pid)])
            self._stop.wait(self.interval)

    def _record(self, per_process_kib: list[int]) -> None:
        self.peak_kib = max(self.peak_kib, sum(per_process_kib))
        self.largest_kib = max(self.largest_kib, *per_process_kib)

    @property
    def peak_mib(self) -> float:
        return self.peak_kib / 1024


# -- timing and results ----------------------------------------------------------------------


def median_of(runs: int, measure: Callable[[], float]) -> float:
    return statistics.median(measure() for _ in range(runs))


def run_parallel(commands: list[list[str]]) -> tuple[float, list[str]]:
    """Start every command at once; the wall time until the last exits, and their stdouts."""
    start = time.perf_counter()
    processes = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for c in commands]
    outputs = []
    for process in processes:
        out, err = process.communicate()
        if process.returncode:
            raise RuntimeError(f"{process.args} failed ({process.returncode}): {err.decode()[-400:]}")
        outputs.append(out.decode())
    return time.perf_counter() - start, outputs


@dataclass(frozen=True)
class Row:
    """One line of the results table; `reference` is the same measurement on nginx or dd.

    A row combined from several runs of its phase (`combine_runs`) keeps each run's value and
    reference in `samples` and `reference_samples`; its ratio is then the median of the per-run
    ratios, each FileDock figure over the reference measured beside it."""

    measurement: str
    value: float
    unit: str
    reference: float | None = None
    min_ratio: float | None = None
    max_value: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    samples: tuple[float, ...] = ()
    reference_samples: tuple[float, ...] = ()

    @property
    def ratios(self) -> list[float]:
        pairs = zip(self.samples, self.reference_samples, strict=False)
        return [value / reference for value, reference in pairs if reference]

    @property
    def ratio(self) -> float | None:
        if self.ratios:
            return statistics.median(self.ratios)
        return self.value / self.reference if self.reference else None

    @property
    def target(self) -> str:
        if self.min_ratio is not None:
            return f"≥ {self.min_ratio:g}×"
        if self.max_value is not None:
            return f"≤ {self.max_value:g} {self.unit}"
        return ""

    @property
    def passed(self) -> bool | None:
        if self.min_ratio is not None:
            return self.ratio is not None and self.ratio >= self.min_ratio
        if self.max_value is not None:
            return self.value <= self.max_value
        return None


def rss_row(phase: str, sampler: RssSampler) -> Row:
    largest = f"largest process {sampler.largest_kib / 1024:.0f} MiB"
    return Row(f"peak RSS, {phase} ({largest})", sampler.peak_mib, "MiB", max_value=RSS_LIMIT_MIB)


def _fmt(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"


def _spread(values: list[float] | tuple[float, ...], fmt: Callable[[float], str]) -> str:
    """ " (min-max)" over several runs, with an en dash; nothing for a single run."""
    return f" ({fmt(min(values))}–{fmt(max(values))})" if len(values) > 1 else ""


def format_table(rows: list[Row]) -> str:
    """The results: each figure is the median over the runs, with (min-max) when there were several."""
    lines = [
        "| Measurement | FileDock | Reference | Ratio | Target | Result |",
        "|---|---:|---:|---:|---|---|",
    ]
    for row in rows:
        verdict = {True: "pass", False: "**FAIL**", None: ""}[row.passed]
        ratio = ""
        if row.ratio is not None:
            ratio = f"{row.ratio:.2f}×{_spread(row.ratios, lambda r: f'{r:.2f}')}"
        reference = ""
        if row.reference is not None:
            reference = f"{_fmt(row.reference)} {row.unit}{_spread(row.reference_samples, _fmt)}"
        value = f"{_fmt(row.value)} {row.unit}{_spread(row.samples, _fmt)}"
        lines.append(f"| {row.measurement} | {value} | {reference} | {ratio} | {row.target} | {verdict} |")
    return "\n".join(lines)


def combine_runs(runs: list[list[Row]]) -> list[Row]:
    """One row per measurement from several runs of a phase (which yield the same rows in the
    same order): the median for speeds and latencies, the largest for a peak RSS (a peak is only
    as good as its worst run)."""
    combined = []
    for same in zip(*runs, strict=True):
        first, values = same[0], [row.value for row in same]
        references = [row.reference for row in same if row.reference is not None]
        peak = first.measurement.startswith("peak RSS")
        worst = max(same, key=lambda row: row.value)
        combined.append(
            dataclasses.replace(
                worst if peak else first,
                value=max(values) if peak else statistics.median(values),
                reference=statistics.median(references) if references else None,
                samples=tuple(values),
                reference_samples=tuple(references) if len(references) == len(same) else (),
            )
        )
    return combined
