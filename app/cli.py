"""The `filedock` command: `serve`, `migrate` and `gc`. The only code that reads the environment."""

import asyncio
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import uvicorn
from pydantic import ValidationError

from app import __version__
from app.settings import Settings

APP_FACTORY = "app.cli:app_from_environment"
HTTP_PROTOCOL = "app.http_receive:FileDockHttpToolsProtocol"  # httptools, batched bodies, zero-copy downloads


def app_from_environment() -> Any:
    """The ASGI app for uvicorn worker processes, configured from `FILEDOCK_*` variables."""
    from app.main import create_app

    return create_app(Settings())


def _settings(**overrides: Any) -> Settings:
    try:
        return Settings(**{key: value for key, value in overrides.items() if value is not None})
    except ValidationError as exc:
        raise click.UsageError(f"invalid setting: {exc}") from exc


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="filedock")
def main() -> None:
    """FileDock: a self-hosted server for the OpenAI Files API.

    Every option can also be set with a FILEDOCK_* environment variable (for example
    FILEDOCK_DATA_DIR); options given on the command line win.
    """


@main.command()
@click.option("--host", help="Address to bind [env FILEDOCK_HOST; default 127.0.0.1].")
@click.option("--port", type=int, help="Port to bind [env FILEDOCK_PORT; default 8000].")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for the SQLite database and blobs [env FILEDOCK_DATA_DIR; default ./data].",
)
@click.option("--workers", type=int, help="Worker processes [env FILEDOCK_WORKERS; default: CPU count].")
@click.option("--log-level", help="debug, info, warning or error [env FILEDOCK_LOG_LEVEL; default info].")
def serve(
    host: str | None, port: int | None, data_dir: Path | None, workers: int | None, log_level: str | None
) -> None:
    """Migrate the database, then serve the API until interrupted."""
    settings = _settings(host=host, port=port, data_dir=data_dir, workers=workers, log_level=log_level)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    _export(settings)  # worker processes rebuild the same settings from the environment
    # Migrate once, in a child process: the supervisor of several workers then never imports
    # the app, SQLAlchemy or Alembic, and stays small.
    subprocess.run([sys.executable, "-m", "app.cli", "migrate", "--quiet"], check=True)
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        http=HTTP_PROTOCOL,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        proxy_headers=False,
    )


@main.command()
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for the SQLite database [env FILEDOCK_DATA_DIR; default ./data].",
)
@click.option("--quiet", is_flag=True, help="Print nothing on success.")
def migrate(data_dir: Path | None, quiet: bool) -> None:
    """Apply database migrations up to the newest, then exit."""
    settings = _settings(data_dir=data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    from app.metadata.migrate import upgrade_to_head

    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(message)s")
    upgrade_to_head(settings.database_url)
    if not quiet:
        click.echo(f"database at {settings.database_url} is up to date")


@main.command()
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for the SQLite database and blobs [env FILEDOCK_DATA_DIR; default ./data].",
)
@click.option(
    "--grace-seconds",
    type=click.IntRange(min=0),
    help="Only remove blobs at least this old [env FILEDOCK_GC_GRACE_SECONDS; default 3600].",
)
def gc(data_dir: Path | None, grace_seconds: int | None) -> None:
    """Expire Uploads and files, then remove blobs that no row names (debris of crashes).

    Safe while servers run and from several replicas at once. Keep the grace period longer
    than any single upload takes, or an upload in progress may lose its blob.
    """
    settings = _settings(data_dir=data_dir, gc_grace_seconds=grace_seconds)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from app.maintenance import run_gc

    report = asyncio.run(run_gc(settings))
    if report is None:
        click.echo("another replica is running maintenance now; nothing done")
        return
    click.echo(f"gc: {report.removed} unreferenced blobs removed of {report.examined} examined")


def _export(settings: Settings) -> None:
    for name in ("host", "port", "data_dir", "database_url", "blob_url", "workers", "log_level"):
        os.environ[f"FILEDOCK_{name.upper()}"] = str(getattr(settings, name))


if __name__ == "__main__":
    main()
