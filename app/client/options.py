"""Click pieces the `filedock` commands share: byte sizes with units, and the client's options."""

from collections.abc import Callable
from typing import Any, TypeVar

import click

from app.core.units import parse_size

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_URL = "http://127.0.0.1:8000"  # here, not in app.client.api: the server's CLI imports this


class ByteSize(click.ParamType[int]):
    """`10GB`, `512MiB` or plain bytes."""

    name = "size"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_size(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


BYTE_SIZE = ByteSize()


def client_options(function: F) -> F:
    """--url, --api-key and --json, on every `filedock files …` command."""
    for option in reversed(
        (
            click.option(
                "--url",
                envvar="FILEDOCK_URL",
                default=DEFAULT_URL,
                show_default=True,
                help="The FileDock server [env FILEDOCK_URL]; its OpenAI API is at <url>/v1.",
            ),
            click.option(
                "--api-key",
                envvar="FILEDOCK_API_KEY",
                help="The key to send as `Authorization: Bearer` [env FILEDOCK_API_KEY].",
            ),
            click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text."),
        )
    ):
        function = option(function)
    return function
