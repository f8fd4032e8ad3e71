"""Where a 256 MiB upload's CPU goes, beside `dd conv=fsync` of the same bytes: the floor that two
cores put under the upload's wall time.

    .venv/bin/python -m bench.upload_cpu [--uploads N] [--workers N]

One worker unless told otherwise (with several, their event loops are summed); the raw
streaming client of `bench.upload` runs in this process, so its CPU is this process's during the
request. The server's CPU is read from /proc per thread just before and just after each
request: the event loop's thread, and the others (the blob writes and the fsync). Each upload
waits for the one before it to be hashed (the hash runs after the response and would otherwise
land in the next upload's window). `dd`'s CPU comes from its rusage.

Wall time on two cores is at least (client + server CPU) / 2, and at least the event loop's
own CPU, which no other core can take over. docs are not written; the figures go into
docs/performance.md by hand, with this command.
"""

import argparse
import os
import resource
import statistics
import subprocess
import time
from pathlib import Path

import httpx

from bench import upload
from bench.common import MB, OUT, MiB, cpu_seconds, filedock, make_source_file, proc_stat, process_tree

HASH_WAIT_SECONDS = 1.0  # 256 MiB hash in well under this


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of the server tree so far: its event loops' threads (a process's first thread)
    and every other thread, summed."""
    totals = {"event loop": 0.0, "other threads": 0.0}
    for process in process_tree(pid):
        for task in os.listdir(f"/proc/{process}/task"):
            kind = "event loop" if task == str(process) else "other threads"
            totals[kind] += cpu_seconds(proc_stat(f"/proc/{process}/task/{task}/stat"))
    return totals


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def dd_run(source: Path, target: Path) -> tuple[float, float]:
    """Wall and CPU seconds of `upload.dd_command`."""
    start = time.perf_counter()
    process = subprocess.Popen(upload.dd_command(source, target))
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    target.unlink()
    if status:
        raise RuntimeError(f"dd failed: {status}")
    return wall, usage.ru_utime + usage.ru_stime


def measure(source: Path, uploads: int, workers: int) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {
        name: [] for name in ("wall", "client", "event loop", "other threads", "dd wall", "dd cpu")
    }
    with filedock("upload-cpu", workers=str(workers)) as server:
        upload.upload_httpx(server.url, source)  # warm-up: imports, first connection
        for _ in range(uploads):
            time.sleep(HASH_WAIT_SECONDS)
            before, client_before, start = thread_cpu(server.pid), own_cpu(), time.perf_counter()
            file_id = upload.upload_httpx(server.url, source)
            figures["wall"].append(time.perf_counter() - start)
            figures["client"].append(own_cpu() - client_before)
            after = thread_cpu(server.pid)
            for kind in before:
                figures[kind].append(after[kind] - before[kind])
            httpx.delete(f"{server.url}/v1/files/{file_id}").raise_for_status()
            dd_wall, dd_cpu = dd_run(source, server.data_dir / "dd.bin")
            figures["dd wall"].append(dd_wall)
            figures["dd cpu"].append(dd_cpu)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1, help="FileDock workers (the tree is measured)")
    args = parser.parse_args()
    source = make_source_file(OUT / "source-256.bin", 256 * MiB)
    figures = measure(source, args.uploads, args.workers)
    median = {name: statistics.median(values) for name, values in figures.items()}
    print("seconds per upload, min / median / max:")
    for name, values in figures.items():
        print(f"{name:>14}: {min(values):.3f} / {median[name]:.3f} / {max(values):.3f}")
    cpu = median["client"] + median["event loop"] + median["other threads"]
    floor = max(cpu / 2, median["event loop"])
    size_mb = source.stat().st_size / MB
    print(f"upload {size_mb / median['wall']:.0f} MB/s, dd {size_mb / median['dd wall']:.0f} MB/s")
    print(f"CPU per upload {cpu:.3f} s: on 2 cores the wall is at least {floor:.3f} s,")
    best, measured = median["dd wall"] / floor, median["dd wall"] / median["wall"]
    print(f"at most {best:.2f}x of this dd; measured {measured:.2f}x")


if __name__ == "__main__":
    main()
