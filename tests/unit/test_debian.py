"""tests/debian.py: test processes that need the same missing program at once install it once."""

import os
import threading
import time
from pathlib import Path

import pytest

from tests import debian


def test_a_program_asked_for_at_once_is_installed_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(debian, "SEARCH_PATH", str(tmp_path))
    monkeypatch.setattr(debian, "LOCK", tmp_path / "apt.lock")
    installs: list[str] = []

    def install(package: str, program: str) -> None:  # stands in for apt-get: slow, then there
        installs.append(package)
        time.sleep(0.3)
        path = tmp_path / program
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)

    monkeypatch.setattr(debian, "_install", install)
    found: list[str] = []
    askers = [
        threading.Thread(target=lambda: found.append(debian.debian_program("prog", "pkg"))) for _ in range(3)
    ]
    for asker in askers:
        asker.start()
    for asker in askers:
        asker.join()
    assert installs == ["pkg"]
    assert found == [str(tmp_path / "prog")] * 3
    assert os.access(found[0], os.X_OK)
