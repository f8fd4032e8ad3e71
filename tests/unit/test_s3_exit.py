"""A process that exits just after an obstore call exits cleanly.

obstore's threads hand each result back to the event loop and need the GIL once more after the
awaiting coroutine has resumed; a process that starts finalizing in that moment was killed by
SIGABRT (with nothing on stderr) about once in 20 exits, which failed `filedock doctor` in CI.
The race cannot be forced from Python, so this exits many times: without the atexit grace in
app/blobs/s3.py this test failed 5 runs of 5 (each exit aborted about one time in 20); with it,
it passed every run, and 200 `filedock doctor` runs against SeaweedFS exited cleanly.
"""

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

EXITS = 24
SCRIPT = """
import asyncio

import obstore
from obstore.store import MemoryStore

import app.blobs.s3  # noqa: F401  (what registers the grace at exit)

async def main() -> None:
    store = MemoryStore()
    await asyncio.gather(*(obstore.put_async(store, f"k{i}", b"x") for i in range(2000)))

asyncio.run(main())
"""


def _exit() -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)


def test_a_process_exits_cleanly_right_after_obstore_answers() -> None:
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda _: _exit(), range(EXITS)))
    failed = [(run.returncode, run.stderr[-300:]) for run in runs if run.returncode != 0 or run.stderr]
    assert not failed, f"{len(failed)} of {EXITS} exits failed: {failed[:3]}"
