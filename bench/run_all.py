"""Run every benchmark phase, print the table with ratios and verdicts, and write
docs/benchmarks.md and docs/benchmarks.png.

    .venv/bin/python -m bench.run_all [--phases download,upload,metadata,memory] [--keep]
"""

import argparse
import datetime
import os
import platform
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from bench import common, download, memory, metadata, upload
from bench.common import OUT, ROOT, RSS_LIMIT_MIB, MiB, Row, ensure_tools, format_table, make_source_file

COMMAND = ".venv/bin/python -m bench.run_all"
DOCS = ROOT / "docs"
SOURCE_BYTES = 256 * MiB


def _phases(source: Path) -> dict[str, Callable[[], list[Row]]]:
    return {
        "download": lambda: download.run(source),
        "upload": lambda: upload.run(source),
        "metadata": metadata.run,
        "memory": lambda: memory.run(source),
    }


def machine_info() -> list[str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    memory_kib = int(Path("/proc/meminfo").read_text().split()[1])
    load = Path("/proc/loadavg").read_text().split()
    nginx = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
    disk = subprocess.run(["df", "-hT", str(OUT)], capture_output=True, text=True).stdout.splitlines()[-1]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    return [
        f"- CPU: {cpu}, {os.cpu_count()} cores; RAM {memory_kib / 1024 / 1024:.1f} GiB",
        f"- OS: {platform.platform()}; Python {platform.python_version()}",
        f"- References: {nginx.removeprefix('nginx version: ')} ({common.WORKERS} workers, sendfile on);"
        " `dd bs=1M conv=fsync` on the same disk",
        f"- Disk under bench/out: `{' '.join(disk.split())}`",
        f"- Load average at the end (1, 5, 15 min; the machine is shared): {' '.join(load[:3])}",
        f"- FileDock: {common.WORKERS} workers, commit {commit.stdout.strip() or '?'} plus working tree",
    ]


def write_chart(rows: list[Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    speed = [r for r in rows if r.unit == "MB/s" and r.reference is not None]
    rss = [r for r in rows if r.measurement.startswith("peak RSS")]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 9), constrained_layout=True)
    positions = range(len(speed))
    top.bar([p - 0.2 for p in positions], [r.value for r in speed], 0.4, label="FileDock")
    top.bar([p + 0.2 for p in positions], [r.reference or 0 for r in speed], 0.4, label="nginx / dd")
    top.set_xticks(list(positions), [r.measurement for r in speed], rotation=12, fontsize=8)
    top.set_ylabel("MB/s")
    top.set_title("Throughput (higher is better)")
    top.legend()
    bottom.barh([r.measurement.removeprefix("peak RSS, ") for r in rss], [r.value for r in rss])
    bottom.axvline(RSS_LIMIT_MIB, color="red", linestyle="--", label=f"target {RSS_LIMIT_MIB:g} MiB")
    bottom.set_xlabel("MiB")
    bottom.set_title("Server peak RSS per phase (lower is better)")
    bottom.invert_yaxis()
    bottom.legend()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(rows: list[Row], table: str) -> None:
    failed = [r.measurement for r in rows if r.passed is False]
    verdict = "All targets met." if not failed else f"{len(failed)} target(s) missed: {', '.join(failed)}."
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = "\n".join(
        [
            "# Benchmarks",
            "",
            f"Measured {when} with `{COMMAND}` (see `bench/`). MB/s are 10^6 bytes per second;",
            "ratios are FileDock ÷ reference, measured side by side in the same run. Downloads are",
            "`curl` processes writing to /dev/null; uploads are separate client processes;",
            "metadata load is `wrk` with 16 connections; RSS is the server process tree's peak",
            "(sampled VmRSS and VmHWM reset at the start of each phase).",
            "",
            "## Machine",
            "",
            *machine_info(),
            "",
            "## Results",
            "",
            table,
            "",
            verdict,
            "",
            "![Throughput and peak RSS](benchmarks.png)",
            "",
        ]
    )
    (DOCS / "benchmarks.md").write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--phases", default="download,upload,metadata,memory")
    parser.add_argument("--workers", type=int, default=common.WORKERS, help="FileDock and nginx workers")
    parser.add_argument("--keep", action="store_true", help="keep the large files under bench/out")
    args = parser.parse_args()
    common.WORKERS = args.workers
    ensure_tools()
    source = make_source_file(OUT / "source-256MiB.bin", SOURCE_BYTES)
    phases = _phases(source)
    rows: list[Row] = []
    try:
        for name in args.phases.split(","):
            print(f"== {name}", flush=True)
            rows += phases[name]()
    finally:
        if not args.keep:
            source.unlink(missing_ok=True)
            for name in phases:
                shutil.rmtree(OUT / name, ignore_errors=True)
    table = format_table(rows)
    print(table)
    DOCS.mkdir(exist_ok=True)
    write_chart(rows, DOCS / "benchmarks.png")
    write_report(rows, table)
    print(f"wrote {DOCS / 'benchmarks.md'} and {DOCS / 'benchmarks.png'}")


if __name__ == "__main__":
    main()
