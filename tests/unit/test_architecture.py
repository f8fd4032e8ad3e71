"""The layers of app/ as docs/architecture.md draws them, checked on the imports themselves."""

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "app"


def imports_of(path: Path) -> set[str]:
    """The modules a file imports (absolute names), however it imports them."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def files_under(folder: str) -> list[Path]:
    return sorted((APP / folder).rglob("*.py")) if folder else sorted(APP.rglob("*.py"))


def test_only_the_server_layer_imports_uvicorn() -> None:
    outside = [
        str(path.relative_to(APP))
        for path in files_under("")
        if "server" not in path.relative_to(APP).parts
        and any(name == "uvicorn" or name.startswith("uvicorn.") for name in imports_of(path))
    ]
    assert outside == []


@pytest.mark.parametrize("forbidden", ["app.http", "app.dialects", "app.server", "fastapi", "starlette"])
def test_the_core_imports_no_http_and_no_dialect(forbidden: str) -> None:
    offenders = [
        str(path.relative_to(APP))
        for path in files_under("core")
        if any(name == forbidden or name.startswith(forbidden + ".") for name in imports_of(path))
    ]
    assert offenders == []


def test_metadata_and_blobs_never_import_each_other() -> None:
    crossing = [
        str(path.relative_to(APP))
        for folder, other in (("metadata", "app.blobs"), ("blobs", "app.metadata"))
        for path in files_under(folder)
        if any(name == other or name.startswith(other + ".") for name in imports_of(path))
    ]
    assert crossing == []


def test_no_dialect_imports_another() -> None:
    dialects = ("openai", "anthropic", "gemini")
    crossing = [
        f"{path.relative_to(APP)} -> {name}"
        for dialect in dialects
        for path in files_under(f"dialects/{dialect}")
        for name in imports_of(path)
        for other in dialects
        if other != dialect and name.startswith(f"app.dialects.{other}")
    ]
    assert crossing == []
