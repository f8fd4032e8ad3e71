"""Programs the tests drive that a fresh machine may lack (Chromium, nginx), installed from
Debian's packages when first asked for. A failed install fails the test; it never skips.

`make test` runs several test processes at once, and two of them may ask for the same program
at the same moment; apt refuses a second `apt-get update` while one runs ("Could not get lock
/var/lib/apt/lists/lock"). So one process installs while the others wait on a file lock, then
find the program there; apt run by anything else on the machine is waited out.
"""

import fcntl
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

LOCK = Path(tempfile.gettempdir()) / "filedock-tests-apt.lock"
APT_LOCK_SECONDS = 300  # how long to wait for apt run by something else
SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin", "/usr/bin"])


def debian_program(program: str, package: str) -> str:
    """The path of `program`, after installing `package` if it is missing."""
    found = shutil.which(program, path=SEARCH_PATH)
    if found:
        return found
    with LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test process may be installing it right now
        if not shutil.which(program, path=SEARCH_PATH):
            _install(package, program)
    found = shutil.which(program, path=SEARCH_PATH)
    assert found, f"apt-get installed {package}, yet no {program} is on the PATH or in /usr/sbin"
    return found


def _install(package: str, program: str) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    lock = ["-o", "DPkg::Lock::Timeout=300"]
    for command in (["apt-get", *lock, "update", "-qq"], ["apt-get", *lock, "install", "-y", "-qq", package]):
        deadline = time.monotonic() + APT_LOCK_SECONDS
        while True:
            result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            if result.returncode == 0:
                break
            if "Could not get lock" in result.stderr and time.monotonic() < deadline:
                time.sleep(2)  # DPkg::Lock::Timeout covers dpkg's lock, not apt-get update's
                continue
            pytest.fail(f"{program} is missing and `{' '.join(command)}` failed:\n{result.stderr[-2000:]}")
