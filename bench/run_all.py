"""Run every benchmark phase, print the table with ratios and verdicts, and write
docs/benchmarks.md and docs/benchmarks.png.

    .venv/bin/python -m bench.run_all [--phases download,upload,metadata,memory,s3,batch] [--runs N] [--keep]
        [--server NAME=VALUE ...]

Each phase runs `--runs` times in a row (3 by default), each time measuring FileDock and its
reference side by side; the table gives the median with (min-max) over those runs.

`--server` gives every FileDock server of the run a setting (FILEDOCK_NAME=VALUE): the servers run
at log level warning unless told otherwise, and the cost of the access log and the metrics is
measured as `--server log_level=info` against `--server access_log=false --server metrics=false`.
"""

import argparse
import dataclasses
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import batch, common, download, memory, metadata, s3, upload
from bench.common import (
    OUT,
    ROOT,
    RSS_LIMIT_MIB,
    MiB,
    Row,
    combine_runs,
    ensure_tools,
    format_table,
    make_source_file,
)

COMMAND = ".venv/bin/python -m bench.run_all"
DOCS = ROOT / "docs"
SOURCE_BYTES = 256 * MiB
PHASES = "download,upload,metadata,memory,s3,batch"
RUNS = 3


def _phases(source: Path) -> dict[str, Callable[[], list[Row]]]:
    return {
        "download": lambda: download.run(source),
        "upload": lambda: upload.run(source),
        "metadata": metadata.run,
        "memory": lambda: memory.run(source),
        "s3": lambda: s3.run(source),
        "batch": batch.run,
    }


ROWS_MARK = "<!-- bench rows per phase: "
MEASURED_MARK = "<!-- bench measured per phase: "


def previous_measured() -> dict[str, str]:
    """When each phase's rows in the last docs/benchmarks.md were measured."""
    path = DOCS / "benchmarks.md"
    text = path.read_text() if path.exists() else ""
    for line in text.splitlines():
        if line.startswith(MEASURED_MARK):
            return dict(json.loads(line.removeprefix(MEASURED_MARK).removesuffix(" -->")))
    when = re.search(r"^Measured (.+? UTC)", text, re.MULTILINE)
    return dict.fromkeys(previous_rows(), when.group(1) if when else "?")


def previous_rows() -> dict[str, list[Row]]:
    """The rows of the last docs/benchmarks.md, per phase, so a run of some phases keeps the others."""
    path = DOCS / "benchmarks.md"
    if not path.exists():
        return {}
    text = path.read_text()
    for line in text.splitlines():
        if line.startswith(ROWS_MARK):
            data = json.loads(line.removeprefix(ROWS_MARK).removesuffix(" -->"))
            return {phase: [_row(row) for row in rows] for phase, rows in data.items()}
    return _rows_from_table(text)


def _row(stored: dict[str, Any]) -> Row:
    """A row as stored in the report's JSON (lists where the row has tuples)."""
    samples, references = tuple(stored.pop("samples", ())), tuple(stored.pop("reference_samples", ()))
    return Row(**stored, samples=samples, reference_samples=references)


def _rows_from_table(text: str) -> dict[str, list[Row]]:
    """Rows parsed back from a report written before the rows were stored with it."""
    rows: dict[str, list[Row]] = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) != 6 or cells[0] == "Measurement" or cells[0][:3] == "---":
            continue
        measurement, value, reference, _, target, _ = cells
        number, unit = value.split(" ", 1)
        rows.setdefault(_legacy_phase(measurement), []).append(
            Row(
                measurement,
                float(number.replace(",", "")),
                unit,
                reference=float(reference.split(" ")[0].replace(",", "")) if reference else None,
                min_ratio=float(target[2:].rstrip("×")) if target.startswith("≥") else None,
                max_value=float(target[2:].split()[0]) if target.startswith("≤") else None,
            )
        )
    return rows


def _legacy_phase(measurement: str) -> str:
    name = measurement.removeprefix("peak RSS, ")
    if name.startswith(("download 256", "download, ")):
        return "download"
    if name.startswith(("upload 256", "upload phase")):
        return "upload"
    if name.startswith(("retrieve", "list", "metadata")):
        return "metadata"
    return "memory"


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
    postgres = common.psql("SHOW server_version").split(" ")[0]
    weed = subprocess.run([str(ROOT / ".venv" / "bin" / "weed"), "version"], capture_output=True, text=True)
    words = weed.stdout.split()
    weed_version = words[2] if len(words) > 2 else "?"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    return [
        f"- CPU: {cpu}, {os.cpu_count()} cores; RAM {memory_kib / 1024 / 1024:.1f} GiB",
        f"- OS: {platform.platform()}; Python {platform.python_version()}",
        f"- References: {nginx.removeprefix('nginx version: ')} ({common.WORKERS} workers, sendfile on);"
        " `dd bs=1M conv=fsync` on the same disk",
        f"- Scale-out: PostgreSQL {postgres} on 127.0.0.1:5432; SeaweedFS {weed_version}"
        " (`weed server -s3`, one process) on loopback",
        f"- Disk under bench/out: `{' '.join(disk.split())}`",
        f"- Load average at the end (1, 5, 15 min; the machine is shared): {' '.join(load[:3])}",
        f"- Scheduler autogroups: {_autogroups()} (on, PostgreSQL's backends share one group's CPU"
        " against wrk's and FileDock's, which sets the PostgreSQL p99s; see performance.md)",
        f"- FileDock: {common.WORKERS} workers, commit {commit.stdout.strip() or '?'} plus working tree",
    ]


def _autogroups() -> str:
    """Whether the kernel shares CPU between sessions first (`sched_autogroup_enabled`)."""
    try:
        enabled = Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip()
    except OSError:
        return "unknown"
    return "on" if enabled == "1" else "off"


def write_chart(rows: list[Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    speed = [r for r in rows if r.unit == "MB/s" and r.reference is not None]
    rss = [r for r in rows if r.measurement.startswith("peak RSS")]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 12), constrained_layout=True)
    positions = range(len(speed))
    top.bar([p - 0.2 for p in positions], [r.value for r in speed], 0.4, label="FileDock")
    top.bar(
        [p + 0.2 for p in positions], [r.reference or 0 for r in speed], 0.4, label="nginx / dd / direct S3"
    )
    top.set_xticks(list(positions), [textwrap.fill(r.measurement, 17) for r in speed], fontsize=7)
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


def write_report(
    rows: list[Row],
    table: str,
    by_phase: dict[str, list[Row]],
    measured: dict[str, str],
    ran: list[str],
    runs: int,
) -> None:
    """`measured`: when each phase's rows were measured; those of phases not in `ran` are carried over."""
    failed = [r.measurement for r in rows if r.passed is False]
    verdict = "All targets met." if not failed else f"{len(failed)} target(s) missed: {', '.join(failed)}."
    when = measured[ran[0]]
    command = COMMAND if ",".join(ran) == PHASES else f"{COMMAND} --phases {','.join(ran)}"
    if runs != RUNS:
        command += f" --runs {runs}"
    command += "".join(f" --server {name}={value}" for name, value in common.SERVER_SETTINGS.items())
    carried = [f"{name} ({measured.get(name, '?')})" for name in by_phase if name not in ran]
    text = "\n".join(
        [
            "# Benchmarks",
            "",
            f"Measured {when} with `{command}` (see `bench/`). Each phase ran {runs} times; a",
            "figure is the median over those runs, with (min–max), and a peak RSS the largest. MB/s",
            "are 10^6 bytes per second; a ratio is the median of the per-run ratios of FileDock to",
            "the reference measured side by side with it in the same run. Downloads are",
            "`curl` processes writing to /dev/null; uploads are separate client processes;",
            "metadata load is `wrk` with 16 connections; RSS is the server process tree's peak",
            "(sampled VmRSS and VmHWM reset at the start of each phase). Metadata runs on SQLite",
            "and on PostgreSQL; the S3 phase runs FileDock on PostgreSQL + a SeaweedFS S3 server",
            "and compares it with obstore (the app's S3 client) putting and getting the same bytes",
            "to and from the same bucket directly.",
            "",
            *(
                [f"Rows of phases not in this run are carried over: {', '.join(carried)}.", ""]
                if carried
                else []
            ),
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
            "What each figure means, what was done to get it and what stands between FileDock and",
            "each missed target: [performance.md](performance.md).",
            "",
            "![Throughput and peak RSS](benchmarks.png)",
            "",
            ROWS_MARK
            + json.dumps(
                {k: [dataclasses.asdict(r) for r in v] for k, v in by_phase.items()}, ensure_ascii=False
            )
            + " -->",
            MEASURED_MARK + json.dumps({name: measured.get(name, when) for name in by_phase}) + " -->",
            "",
        ]
    )
    (DOCS / "benchmarks.md").write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--phases", default=PHASES)
    parser.add_argument("--workers", type=int, default=common.WORKERS, help="FileDock and nginx workers")
    parser.add_argument("--runs", type=int, default=RUNS, help="runs of each phase (median, min, max)")
    parser.add_argument("--keep", action="store_true", help="keep the large files under bench/out")
    parser.add_argument(
        "--server", action="append", default=[], metavar="NAME=VALUE", help="a FILEDOCK_NAME setting"
    )
    args = parser.parse_args()
    common.WORKERS = args.workers
    common.SERVER_SETTINGS.update(_server_settings(args.server))
    ensure_tools()
    source = make_source_file(OUT / "source-256MiB.bin", SOURCE_BYTES)
    phases = _phases(source)
    by_phase, measured = previous_rows(), previous_measured()
    ran = args.phases.split(",")
    try:
        for name in ran:
            runs = []
            for run in range(1, args.runs + 1):
                print(f"== {name}, run {run} of {args.runs}", flush=True)
                runs.append(phases[name]())
                print(format_table(runs[-1]), flush=True)
            by_phase[name] = combine_runs(runs)
    finally:
        if not args.keep:
            source.unlink(missing_ok=True)
            for name in phases:
                shutil.rmtree(OUT / name, ignore_errors=True)
    print(format_table([row for name in ran for row in by_phase[name]]))
    by_phase = {name: by_phase[name] for name in phases if name in by_phase}
    rows = [row for phase_rows in by_phase.values() for row in phase_rows]
    table = format_table(rows)
    DOCS.mkdir(exist_ok=True)
    write_chart(rows, DOCS / "benchmarks.png")
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    measured.update(dict.fromkeys(ran, now))
    write_report(rows, table, by_phase, measured, ran, args.runs)
    print(f"wrote {DOCS / 'benchmarks.md'} and {DOCS / 'benchmarks.png'}")


def _server_settings(pairs: list[str]) -> dict[str, str]:
    settings = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals or not name:
            raise SystemExit(f"--server takes NAME=VALUE, not {pair!r}")
        settings[name.strip().lower().removeprefix("filedock_")] = value
    return settings


if __name__ == "__main__":
    main()
