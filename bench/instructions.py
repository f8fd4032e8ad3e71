"""User-space instructions per request of the whole server, counted by callgrind: the cost of
the access log and the metrics as a count that is the same whatever else the machine runs
(a shared 2-core VM moves `wrk` figures by ±15% from run to run; see docs/performance.md).

    .venv/bin/python -m bench.instructions [--requests N] [--kind retrieve|list]

Each configuration (both off, metrics only at `warning`, the defaults at `info`) gets its own
one-worker server under `valgrind --tool=callgrind --instr-atstart=no`, SQLite, 300 files; 300
keep-alive requests warm it up, then counting is switched on (`callgrind_control -i on`) for N
requests and the counts are dumped (`callgrind_control -d`). Valgrind slows the server about
fifty times: 2,000 retrieves take a minute or two per configuration. Needs Debian's valgrind.
"""

import argparse
import asyncio
import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx

from bench import metadata
from bench.common import FILEDOCK_BIN, OUT, free_port

CONFIGURATIONS = {
    "off": {"log_level": "info", "access_log": "false", "metrics": "false"},
    "metrics only (warning)": {"log_level": "warning"},
    "defaults (info)": {"log_level": "info"},
}
WARM_UP = 300
START_DEADLINE_SECONDS = 300


def instructions_per_request(name: str, settings: dict[str, str], kind: str, requests: int) -> float:
    data_dir = OUT / f"instructions-{name.split()[0]}"
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FILEDOCK_")}
    env.update({f"FILEDOCK_{k.upper()}": v for k, v in {"workers": "1", **settings}.items()})
    counts = data_dir / "callgrind.out"
    command = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={counts}.%p"]
    command += [
        str(FILEDOCK_BIN),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
    ]
    with (data_dir / "server.log").open("wb") as log:
        server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url, server)
        file_ids = asyncio.run(metadata.seed(f"sqlite+aiosqlite:///{data_dir / 'filedock.db'}", 300))
        paths = [metadata.PATHS[kind] % file_id for file_id in file_ids[100:]]
        with httpx.Client(base_url=url, timeout=120) as client:
            for i in range(WARM_UP):
                client.get(paths[i % len(paths)]).raise_for_status()
            subprocess.run(
                ["callgrind_control", "-i", "on", str(server.pid)], check=True, capture_output=True
            )
            for i in range(requests):
                client.get(paths[i % len(paths)]).raise_for_status()
            subprocess.run(["callgrind_control", "-d", str(server.pid)], check=True, capture_output=True)
    finally:
        server.terminate()
        server.wait(timeout=120)
    return _dumped_total(Path(f"{counts}.{server.pid}.1")) / requests


def _wait_ready(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server under valgrind exited with {server.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"the server under valgrind did not answer within {START_DEADLINE_SECONDS} s")


def _dumped_total(path: Path) -> int:
    """The instruction total of a callgrind dump (its `summary:` or `totals:` line)."""
    for line in path.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"{path} holds no total")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--kind", choices=sorted(metadata.PATHS), default="retrieve")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is missing: apt-get install valgrind")
    counts = {
        name: instructions_per_request(name, settings, args.kind, args.requests)
        for name, settings in CONFIGURATIONS.items()
    }
    off = counts["off"]
    print(f"| configuration | instructions per {args.kind} | ÷ off |")
    print("|---|---|---|")
    for name, count in counts.items():
        print(f"| {name} | {count:,.0f} | {count / off:.3f} |")


if __name__ == "__main__":
    main()
