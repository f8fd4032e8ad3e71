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
import shutil
import subprocess
from pathlib import Path

import httpx

from bench import common, metadata
from bench.common import OUT

CONFIGURATIONS = {
    "off": {"log_level": "info", "access_log": "false", "metrics": "false"},
    "metrics only (warning)": {"log_level": "warning"},
    "defaults (info)": {"log_level": "info"},
}
WARM_UP = 300
START_DEADLINE_SECONDS = 300


def instructions_per_request(name: str, settings: dict[str, str], kind: str, requests: int) -> float:
    label = f"instructions-{name.split()[0]}"
    counts = OUT / f"{label}-callgrind.out"
    valgrind = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={counts}.%p"]
    with common.filedock(
        label, prefix=valgrind, start_seconds=START_DEADLINE_SECONDS, workers="1", **settings
    ) as server:
        file_ids = asyncio.run(metadata.seed(f"sqlite+aiosqlite:///{server.data_dir / 'filedock.db'}", 300))
        paths = [metadata.PATHS[kind] % file_id for file_id in file_ids[100:]]
        with httpx.Client(base_url=server.url, timeout=120) as client:
            for i in range(WARM_UP):
                client.get(paths[i % len(paths)]).raise_for_status()
            subprocess.run(
                ["callgrind_control", "-i", "on", str(server.pid)], check=True, capture_output=True
            )
            for i in range(requests):
                client.get(paths[i % len(paths)]).raise_for_status()
            subprocess.run(["callgrind_control", "-d", str(server.pid)], check=True, capture_output=True)
    return _dumped_total(Path(f"{counts}.{server.pid}.1")) / requests


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
