"""Where a command's CPU goes, by kind of process: for `make test`, its FileDock servers, CLI calls,
pytest processes, PostgreSQL, SeaweedFS, Chromium.

    .venv/bin/python -m bench.suite_cpu -- make test

Runs the command and every 0.1 s reads the CPU so far of every process on the machine from
/proc; each process counts with the last figure seen, so one that lives less than that is missed
and the sum falls a little short of the command's own account (its children's rusage, printed
beside it). Processes that are not the command's (other services on the machine) are listed
too, under their own names: on a shared machine they are part of what the command competed
with. FileDock's servers and CLI calls are also summed per test, named by the pytest temporary
directory their `--data-dir` is in. Nothing is written; the figures go into docs by hand.
"""

import argparse
import collections
import os
import re
import resource
import subprocess
import sys
import time
from dataclasses import dataclass

from bench.common import STAT_START_TIME, cpu_seconds, proc_stat

INTERVAL_SECONDS = 0.1
SHOWN_TESTS = 20
_PYTEST_DIR = re.compile(r"pytest-\d+|popen-gw\d+")  # a session's, or an xdist worker's, tmp root


@dataclass
class Process:
    kind: str
    test: str  # the pytest directory of a FileDock process's data dir, or ""
    cpu: float = 0.0  # since the command started: a process already running counts from then
    before: float = 0.0  # its CPU when the command started


def kind_of(argv: list[str], environ: bytes) -> str:
    """A readable kind for a process, from its command line (and, for FileDock, its backend)."""
    line = " ".join(argv)
    backend = " (PostgreSQL + S3)" if b"FILEDOCK_DATABASE_URL=postgresql" in environ else ""
    script = next((i for i, arg in enumerate(argv[:2]) if arg.endswith("/filedock")), None)
    serving = script is not None and " serve" in line
    if serving or "app.cli worker" in line or "app.server.supervisor" in line:
        return "FileDock server" + backend
    if script is not None:
        words = [arg for arg in argv[script + 1 : script + 3] if not arg.startswith("-") and "/" not in arg]
        return f"FileDock CLI: {' '.join(words)}"  # the command, not its paths
    for needle, kind in (  # the first that matches: a test's path in an argument says "pytest" too
        ("weed", "SeaweedFS"),
        ("postgres", "PostgreSQL"),
        ("chrom", "Chromium"),
        ("tests.upstream", "test upstreams"),
        ("nginx", "nginx"),
        ("mypy", "mypy"),
        ("ruff", "ruff"),
        ("bin/pip", "pip"),
        ("exec(eval(sys.stdin.readline()))", "pytest"),  # an xdist worker
        ("pytest", "pytest"),
    ):
        if needle in line.lower():
            return kind
    return f"other: {os.path.basename(argv[0]) if argv else '(kernel thread)'}"


def owning_test(argv: list[str]) -> str:
    """The test directory (`tmp_path` or a `mktemp` name, its counter dropped) of a --data-dir."""
    if "--data-dir" not in argv[:-1]:
        return ""
    parts = argv[argv.index("--data-dir") + 1].split("/")
    roots = [i for i, part in enumerate(parts[:-1]) if _PYTEST_DIR.fullmatch(part)]
    return re.sub(r"\d+$", "", parts[roots[-1] + 1]) if roots else ""


def sample(processes: dict[tuple[str, str], Process], own: int, *, baseline: bool = False) -> None:
    """Every process's CPU since the command started; `baseline`: the sample taken before it."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == own:
            continue
        try:
            fields = proc_stat(f"/proc/{pid}/stat")
            key = (pid, fields[STAT_START_TIME])  # the start time tells a reused pid apart
            so_far = cpu_seconds(fields)
            if key not in processes:
                with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                    argv = cmdline.read().decode(errors="replace").split("\0")[:-1]
                kind = kind_of(argv, _environ(pid))
                test = owning_test(argv) if kind.startswith("FileDock") else ""
                processes[key] = Process(kind, test, before=so_far if baseline else 0.0)
        except OSError:  # ended while being read
            continue
        processes[key].cpu = so_far - processes[key].before


def _environ(pid: str) -> bytes:
    try:
        with open(f"/proc/{pid}/environ", "rb") as env:
            return env.read()
    except PermissionError:  # another user's process: its kind still shows in its command line
        return b""


def report(processes: dict[tuple[str, str], Process], wall: float) -> None:
    by_kind: collections.Counter[str] = collections.Counter()
    count: collections.Counter[str] = collections.Counter()
    by_test: collections.Counter[str] = collections.Counter()
    for process in processes.values():
        by_kind[process.kind] += process.cpu
        count[process.kind] += 1
        if process.test:
            by_test[f"{process.test} ({process.kind.split(':')[0]})"] += process.cpu
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"wall {wall:.0f} s; the command's CPU (rusage) {usage.ru_utime + usage.ru_stime:.0f} s;")
    print(f"seen in /proc: {sum(by_kind.values()):.0f} s over {len(processes)} processes\n")
    print(f"{'CPU s':>8} {'procs':>6}  kind")
    for kind, cpu in by_kind.most_common():
        if cpu >= 0.5:
            print(f"{cpu:8.1f} {count[kind]:6d}  {kind}")
    print(f"\nFileDock processes by test (the {SHOWN_TESTS} dearest):")
    for test, cpu in by_test.most_common(SHOWN_TESTS):
        print(f"{cpu:8.1f}  {test}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to measure after --")
    processes: dict[tuple[str, str], Process] = {}
    sample(processes, os.getpid(), baseline=True)
    start = time.monotonic()
    child = subprocess.Popen(command)
    while child.poll() is None:
        sample(processes, os.getpid())
        time.sleep(INTERVAL_SECONDS)
    report(processes, time.monotonic() - start)
    sys.exit(child.returncode)


if __name__ == "__main__":
    main()
