"""Every ```python block of README.md runs, as a script, against a real FileDock server.

Each block is written to a file in an empty working directory (holding the input files the
examples name), with the README's address, http://127.0.0.1:8000, replaced by the test server's,
and run with this test's Python. The SDKs' base-URL variables point at the server too, so nothing
a block does can leave loopback.
"""

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import FileDockServer, clean_environment

ROOT = Path(__file__).resolve().parents[2]
README_ADDRESS = "http://127.0.0.1:8000"
INPUT_FILES = {"notes.txt": "Notes for FileDock's README examples.\n"}
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
VENDOR_VARIABLES = ("OPENAI_", "ANTHROPIC_", "GOOGLE_", "GEMINI_")


def readme_blocks() -> list[str]:
    return BLOCK.findall((ROOT / "README.md").read_text())


def block_id(block: str) -> str:
    """The block's first import from outside the standard library, for a readable test id."""
    modules = [line.split()[1] for line in block.splitlines() if line.startswith(("import ", "from "))]
    return next(m for m in modules if m.split(".")[0] not in sys.stdlib_module_names)


@pytest.fixture(scope="module")
def readme_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileDockServer]:
    server = FileDockServer(tmp_path_factory.mktemp("readme") / "data").start()
    yield server
    server.stop()


def script_environment(server: FileDockServer) -> dict[str, str]:
    env = {k: v for k, v in clean_environment().items() if not k.startswith(VENDOR_VARIABLES)}
    env.update(
        OPENAI_BASE_URL=server.openai_url,
        ANTHROPIC_BASE_URL=server.url,
        GOOGLE_GEMINI_BASE_URL=server.url,
    )
    return env


def test_readme_has_python_examples() -> None:
    assert len(readme_blocks()) >= 3


@pytest.mark.parametrize("block", [pytest.param(b, id=block_id(b)) for b in readme_blocks()])
def test_readme_python_example_runs(block: str, readme_server: FileDockServer, tmp_path: Path) -> None:
    assert README_ADDRESS in block, "an example that names no FileDock address would call the vendor"
    for name, text in INPUT_FILES.items():
        (tmp_path / name).write_text(text)
    script = tmp_path / "example.py"
    script.write_text(block.replace(README_ADDRESS, readme_server.url))
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=script_environment(readme_server),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
