"""README.md and docs/configuration.md document exactly the settings `Settings` has, with its defaults."""

import re
from enum import Enum
from pathlib import Path

import pytest
from pydantic.fields import FieldInfo

from app.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCS = ["README.md", "docs/configuration.md"]
VARIABLE = re.compile(r"\bFILEDOCK_[A-Z0-9_]*[A-Z0-9]\b")
# A settings-table row: | `FILEDOCK_NAME` | … | `default` … | meaning |, with the default column third.
ROW = re.compile(r"^\|\s*`(FILEDOCK_[A-Z0-9_]+)`\s*\|[^|]*\|([^|]*)\|", re.MULTILINE)


# The `filedock files` client's own variables: documented in the README, read by no server.
CLIENT_VARIABLES = {"FILEDOCK_URL", "FILEDOCK_API_KEY"}


def setting_variables() -> set[str]:
    return {f"FILEDOCK_{name.upper()}" for name in Settings.model_fields}


def documented_variables(doc: str) -> set[str]:
    return set(VARIABLE.findall((ROOT / doc).read_text()))


def env_value(field: FieldInfo) -> str:
    """The default as one would write it in the environment variable."""
    value = field.get_default(call_default_factory=True)
    if value is None:  # unset: decided at startup, like an empty default
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, list):
        return ",".join(value)
    return str(value)


def table_defaults(doc: str) -> dict[str, str]:
    """Each table row's variable and the first `code span` of its default column ('' if none)."""
    defaults = {}
    for variable, cell in ROW.findall((ROOT / doc).read_text()):
        code = re.search(r"`([^`]*)`", cell)
        defaults[variable] = code.group(1) if code else ""
    return defaults


@pytest.mark.parametrize("doc", DOCS)
def test_docs_name_every_setting(doc: str) -> None:
    assert sorted(setting_variables() - documented_variables(doc)) == []


@pytest.mark.parametrize("doc", DOCS)
def test_docs_name_no_variable_that_settings_lacks(doc: str) -> None:
    assert sorted(documented_variables(doc) - setting_variables() - CLIENT_VARIABLES) == []


def test_client_variables_are_not_server_settings() -> None:
    assert CLIENT_VARIABLES & setting_variables() == set()


@pytest.mark.parametrize("doc", DOCS)
def test_docs_table_has_a_row_per_setting(doc: str) -> None:
    assert sorted(table_defaults(doc)) == sorted(setting_variables())


@pytest.mark.parametrize("doc", DOCS)
def test_docs_table_defaults_match_settings(doc: str) -> None:
    documented = table_defaults(doc)
    wrong = {}
    for name, field in Settings.model_fields.items():
        variable, value = f"FILEDOCK_{name.upper()}", env_value(field)
        shown = documented.get(variable, "")
        # A static default must be shown as written. A computed one (the CPU count) may be put in
        # words; an empty one is derived at startup (from the data dir) or means "none".
        must_show = field.default_factory is None and value != ""
        if (must_show or (shown and value)) and shown != value:
            wrong[variable] = (shown, value)
    assert wrong == {}
