"""The `filedock` command: `serve`, `migrate`, `gc`, `keys`, `projects`, and `files` (a client of a
running server, in `app.client`). The only code that reads the environment."""

import asyncio
import importlib
import json
import logging
import logging.config
import os
import sys
import traceback
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from pydantic import ValidationError

from app import __version__
from app.client.options import BYTE_SIZE
from app.settings import Settings

APP_FACTORY = "app.cli:app_from_environment"
T = TypeVar("T")


def app_from_environment() -> Any:
    """The ASGI app for each server worker process, configured from `FILEDOCK_*` variables; the
    worker's HTTP protocol gets its limits and shutdown grace from the same settings, before any
    connection. The start-up check (`_preflight_in_child`) has migrated the database: workers never import
    Alembic."""
    from app.main import create_app
    from app.server import shutdown
    from app.server.protocol import HeaderLimits, configure

    settings = Settings()
    configure(HeaderLimits(settings.max_header_bytes, settings.header_timeout_seconds))
    shutdown.configure(settings.shutdown_grace_seconds)
    return create_app(settings, migrate=False)


class _LazyGroup(click.Group):
    """A group whose listed subcommands are imported when run (click's documented pattern): a
    server process never imports `filedock files`' HTTP client (httpx, tqdm)."""

    def __init__(self, *args: Any, lazy_subcommands: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_subcommands = lazy_subcommands  # name: "module:attribute"

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy_subcommands])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.lazy_subcommands:
            return super().get_command(ctx, cmd_name)
        module, _, attribute = self.lazy_subcommands[cmd_name].partition(":")
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command


def _settings(**overrides: Any) -> Settings:
    try:
        return Settings(**{key: value for key, value in overrides.items() if value is not None})
    except ValidationError as exc:
        problems = "; ".join(_setting_problem(error) for error in exc.errors())
        raise click.UsageError(f"invalid setting {problems}") from None


def _setting_problem(error: Any) -> str:
    """`FILEDOCK_LOG_LEVEL='loud': Input should be 'debug', …` from one pydantic error."""
    name = "FILEDOCK_" + "_".join(str(part) for part in error["loc"]).upper() if error["loc"] else "settings"
    shown = repr(error["input"]) if isinstance(error["input"], str | int | float) else ""
    return f"{name}={shown[:80]}: {error['msg']}" if shown else f"{name}: {error['msg']}"


def _make_data_dir(settings: Settings) -> None:
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise click.ClickException(f"cannot create the data directory {settings.data_dir}: {exc}") from None


@click.group(
    cls=_LazyGroup,
    lazy_subcommands={"files": "app.client.commands:files"},
    context_settings={"help_option_names": ["-h", "--help"]},
)
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
@click.option(
    "--log-level", help="debug, info, warning, error or critical [env FILEDOCK_LOG_LEVEL; default info]."
)
def serve(
    host: str | None, port: int | None, data_dir: Path | None, workers: int | None, log_level: str | None
) -> None:
    """Migrate the database, then serve the API until interrupted."""
    settings = _settings(host=host, port=port, data_dir=data_dir, workers=workers, log_level=log_level)
    _make_data_dir(settings)
    _export(settings)  # worker processes rebuild the same settings from the environment
    metrics_dir = _fresh_metrics_dir(settings)  # before the app's import: see _fresh_metrics_dir
    if settings.workers == 1:
        # This process will serve: imported now, the app (SQLAlchemy, the stores) is inherited
        # by the start-up check's child below instead of imported there a second time (0.5 s of
        # CPU of a start's 1.7 here).
        import app.main  # noqa: F401
    # Migrate and open the stores once, in a child process: the supervisor of several workers then
    # never imports the app, SQLAlchemy or Alembic, and stays small. A store that cannot be used
    # stops the start here, with one line and a non-zero status, whatever the number of workers.
    status = _preflight_in_child(settings)
    if status < 0:
        raise click.ClickException(f"the start-up check was killed by signal {-status}")
    if status != 0:
        sys.exit(status)
    from app.server.run import serve as run_server

    run_server(settings, APP_FACTORY, [sys.executable, "-m", "app.cli", "worker"], metrics_dir)


def _fresh_metrics_dir(settings: Settings) -> Path:
    """Workers count into files under `<data_dir>/.metrics`, emptied at each start, so that a
    scrape of any one of them reports the sums of all (prometheus-client's multiprocess mode).
    Set before `app.metrics` is imported: prometheus-client picks the mode at its import."""
    import shutil

    directory = settings.data_dir.absolute() / ".metrics"
    shutil.rmtree(directory, ignore_errors=True)
    try:
        directory.mkdir(parents=True)
    except OSError as exc:  # a data directory this user cannot write to, before the stores' checks
        raise click.ClickException(f"cannot create the metrics directory {directory}: {exc}") from None
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    return directory


@main.command(hidden=True)
@click.option("--fd", type=int, required=True, help="The listening socket, inherited.")
def worker(fd: int) -> None:
    """One worker process of `serve`, started by its supervisor (app/server/supervisor.py)."""
    from app.server.run import serve_worker

    serve_worker(_settings(), APP_FACTORY, fd)


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
    _make_data_dir(settings)
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
    from app.admin import run_gc

    report = asyncio.run(run_gc(settings))
    if report is None:
        click.echo("another replica is running maintenance now; nothing done")
        return
    click.echo(f"gc: {report.removed} unreferenced blobs removed of {report.examined} examined")


def _preflight_in_child(settings: Settings) -> int:
    """Migrate quietly, open the blob store and write to it, and refuse open mode on a public
    address, in a forked child: it starts from what this process has imported (the settings,
    click), not from a new interpreter. Any failure is one line, `Error: …`, and exit status 1.
    The child's exit status (negative: the signal that killed it)."""
    sys.stdout.flush()  # or the child would write what is buffered a second time
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: it never returns into the caller
        status = 1
        try:
            _check_before_serving(settings)
            status = 0
        except click.ClickException as exc:
            exc.show()
            status = exc.exit_code
        except KeyboardInterrupt:
            status = 130
        except BaseException:  # a bug: its traceback, as the interpreter would print it
            traceback.print_exc()
        finally:
            _leave(status)
    _, wait_status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(wait_status)


def _leave(status: int) -> NoReturn:
    """Exit without the interpreter's teardown, which has nothing left to do here. After an S3
    failure, obstore's Tokio threads sometimes abort the process (SIGABRT) while Python finalizes,
    which turned one clear `Error:` line into exit status 250 in about one run of eight."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def _check_before_serving(settings: Settings) -> None:
    from app.logs import logging_config

    logging.config.dictConfig(logging_config(settings.log_level, settings.log_format))
    from app.blobs import BlobStoreError, check_blob_store
    from app.metadata.migrate import upgrade_to_head

    try:
        upgrade_to_head(settings.database_url)
    except Exception as exc:  # whatever stops the database from answering or migrating
        raise click.ClickException(
            f"cannot migrate the database at {_shown_url(settings.database_url)} "
            f"({type(exc).__name__}: {_first_line(exc)}); check FILEDOCK_DATABASE_URL"
        ) from None
    try:
        asyncio.run(check_blob_store(settings))
    except BlobStoreError as exc:
        raise click.ClickException(str(exc)) from None
    from app.admin import refuse_public_open_mode

    _run_admin(refuse_public_open_mode(settings))
    _log_banner(settings)


def _log_banner(settings: Settings) -> None:
    """What is about to serve, once, before the workers start: in the start-up check, the one
    process of `serve` that has the database open."""
    from app.admin import auth_summary

    open_mode, keys = _run_admin(auth_summary(settings))
    fields = {
        "version": __version__,
        "bind": f"{settings.host}:{settings.port}",
        "workers": settings.workers,
        "data_dir": str(settings.data_dir.absolute()),
        "database": _shown_url(settings.database_url),
        "blob_store": _shown_blob_url(settings.blob_url),
        "auth": "open" if open_mode else "keys",
        "keys": keys,
        "shutdown_grace_seconds": settings.shutdown_grace_seconds,
    }
    auth = "open mode (any key, or none)" if open_mode else f"{keys} API keys"
    logging.getLogger("filedock").info(
        "FileDock %s serving http://%s:%d with %d workers; %s",
        __version__,
        settings.host,
        settings.port,
        settings.workers,
        auth,
        extra={"fields": fields},
    )


def _shown_blob_url(blob_url: str) -> str:
    """The blob URL without any credentials in it (S3 keys travel in the environment anyway)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(blob_url)
    if parts.password is None and parts.username is None:
        return blob_url
    host = parts.hostname or ""
    return urlunsplit(parts._replace(netloc=f"***@{host}" + (f":{parts.port}" if parts.port else "")))


def _shown_url(database_url: str) -> str:
    """The URL without its password, for messages."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(database_url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(an unparseable URL)"


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else "no detail"


def _data_dir_option(function: Callable[..., None]) -> Callable[..., None]:
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Directory holding the SQLite database [env FILEDOCK_DATA_DIR; default ./data].",
    )(function)


def _database_options(function: Callable[..., None]) -> Callable[..., None]:
    """--data-dir, and --create: without it a command refuses to start a new, empty database."""
    function = click.option(
        "--create", is_flag=True, help="Create the database if the data dir has none (a new install)."
    )(function)
    return _data_dir_option(function)


def _admin_settings(data_dir: Path | None, create: bool | None, **overrides: Any) -> Settings:
    """The settings of an admin command, after saying on stderr which database it acts on.
    `create` None: the command checks the database itself."""
    settings = _settings(data_dir=data_dir, **overrides)
    from app.admin import AdminError, describe_database, require_database

    click.echo(f"database: {describe_database(settings)}", err=True)
    try:
        if create is not None:
            require_database(settings, create=create)
    except AdminError as exc:
        raise click.ClickException(str(exc)) from None
    return settings


@main.group()
def keys() -> None:
    """Manage API keys. Each key belongs to one project; servers see changes at once."""


@keys.command("create")
@click.option("--project", required=True, help="The project (tenant) the key acts in; created if new.")
@click.option("--admin", is_flag=True, help="May act for any project via the OpenAI-Project header.")
@_database_options
def create_key(project: str, admin: bool, data_dir: Path | None, create: bool) -> None:
    """Create a key and print it. It is stored hashed: this is the only time it is shown."""
    from app.admin import create_key as creating

    key, record = _run_admin(creating(_admin_settings(data_dir, create), project, admin=admin))
    click.echo(key)
    click.echo(f"created {record.id} in project {record.project!r}; store the key now", err=True)


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_database_options
def list_keys(as_json: bool, data_dir: Path | None, create: bool) -> None:
    """List keys (never the keys themselves), from the database and FILEDOCK_API_KEYS."""
    from app.admin import list_keys as listing

    rows = _run_admin(listing(_admin_settings(data_dir, create)))
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        state = "revoked" if row["revoked_at"] else "active"
        role = " admin" if row["admin"] else ""
        click.echo(
            f"{row['id']}  {row['prefix'] or '-':8} {row['project']:20} {state}{role} ({row['source']})"
        )


@keys.command("revoke")
@click.argument("key_id")
@_database_options
def revoke_key(key_id: str, data_dir: Path | None, create: bool) -> None:
    """Revoke a key by its id (or the key itself); the next request with it gets 401."""
    from app.admin import revoke_key as revoke

    record = _run_admin(revoke(_admin_settings(data_dir, create), key_id))
    click.echo(f"revoked {record.id} (project {record.project!r})")


@main.group()
def projects() -> None:
    """Show projects' usage and set their quotas."""


@projects.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_database_options
def list_projects(as_json: bool, data_dir: Path | None, create: bool) -> None:
    """Each project's usage and effective quota."""
    from app.admin import list_projects as listing

    usages = _run_admin(listing(_admin_settings(data_dir, create)))
    rows = [
        {
            "project": u.name,
            "bytes": u.bytes,
            "files": u.files,
            "max_bytes": u.max_bytes,
            "max_files": u.max_files,
        }
        for u in usages
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        used = f"{row['bytes']}/{row['max_bytes']} bytes  {row['files']}/{row['max_files']} files"
        click.echo(f"{row['project']:20} {used}")


@projects.command("set-quota")
@click.argument("project")
@click.option(
    "--max-bytes", type=BYTE_SIZE, help="Bytes of live files the project may hold (10GB, 512MiB, 4096)."
)
@click.option("--max-files", type=click.IntRange(min=0), help="Live files the project may hold.")
@_database_options
def set_quota(
    project: str, max_bytes: int | None, max_files: int | None, data_dir: Path | None, create: bool
) -> None:
    """Give one project its own quota instead of FILEDOCK_PROJECT_MAX_BYTES / _MAX_FILES."""
    from app.admin import set_quota as setting

    settings = _admin_settings(data_dir, create)
    usage = _run_admin(setting(settings, project, max_bytes=max_bytes, max_files=max_files))
    click.echo(f"{usage.name}: at most {usage.max_bytes} bytes and {usage.max_files} files")


@main.command()
@click.option("--repair", is_flag=True, help="Tombstone damaged rows and remove orphans past the grace.")
@click.option(
    "--deep", is_flag=True, help="Also compare every blob's SHA-256 with its row (reads all bytes)."
)
@click.option(
    "--grace-seconds",
    type=click.IntRange(min=0),
    help="Unnamed blobs younger than this may be uploads in flight [env FILEDOCK_GC_GRACE_SECONDS].",
)
@_data_dir_option
def verify(repair: bool, deep: bool, grace_seconds: int | None, data_dir: Path | None) -> None:
    """Check that rows and blobs agree: rows whose blob is missing or of another size (or, with
    --deep, SHA-256), Upload Parts nothing will free, and blobs no row names. Safe while servers
    run; exits with status 1 if anything is left unrepaired."""
    from app.admin import run_verify
    from app.core.verify import Finding, VerifyOptions

    settings = _admin_settings(data_dir, False, gc_grace_seconds=grace_seconds)
    options = VerifyOptions(deep=deep, repair=repair, grace_seconds=settings.gc_grace_seconds)

    def show(finding: Finding) -> None:
        done = "  [repaired]" if finding.repaired else ""
        click.echo(f"{finding.kind:16} {finding.subject}  {finding.detail}{done}")

    report = _run_admin(run_verify(settings, options, show))
    found = ", ".join(f"{count} {kind}" for kind, count in sorted(report.findings.items())) or "no problems"
    young = f"; {report.young_orphans} unnamed blobs younger than the grace left alone" * bool(
        report.young_orphans
    )
    hashed = f"; {report.hashed} files not hashed yet were hashed" * bool(report.hashed)
    click.echo(f"verify: {report.rows} files and {report.blobs} blobs checked: {found}{young}{hashed}")
    if report.unrepaired:
        hint = "" if repair else " (run with --repair to fix)"
        raise click.ClickException(f"{report.unrepaired} problems left{hint}")


@main.command()
@click.argument("destination", type=click.Path(file_okay=False, path_type=Path))
@click.option("--copy", is_flag=True, help="Copy blobs even where hard links would do (another disk).")
@_data_dir_option
def backup(destination: Path, copy: bool, data_dir: Path | None) -> None:
    """Back up the embedded SQLite database and the blobs it names into DESTINATION (a new
    directory), consistently, while servers run. Blobs are hard-linked when DESTINATION is on the
    same filesystem: copy it elsewhere to survive losing the disk. PostgreSQL and S3 are refused:
    see docs/operations.md."""
    from app.backup import backup as backing_up

    settings = _admin_settings(data_dir, None)
    report = _run_admin(backing_up(settings, destination, copy=copy))
    click.echo(
        f"backup: {report.files} files ({report.bytes} bytes) in {destination}; "
        f"{report.linked} blobs linked, {report.copied} copied"
    )
    if report.deleted_meanwhile:
        click.echo(f"{report.deleted_meanwhile} files deleted during the backup are left out of it", err=True)


@main.command()
@click.argument("source", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--copy", is_flag=True, help="Copy blobs even where hard links would do.")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="A new data dir to restore into; it must hold no database yet.",
)
def restore(source: Path, copy: bool, data_dir: Path) -> None:
    """Restore a backup made by `filedock backup` into a new data dir, migrated to this version.
    Then start `filedock serve --data-dir` on it (and `filedock verify` if you like)."""
    from app.admin import describe_database
    from app.backup import restore as restoring

    settings = _settings(data_dir=data_dir)
    click.echo(f"database: {describe_database(settings)}", err=True)
    report = _run_admin(restoring(source, settings, copy=copy))
    click.echo(f"restore: {report.files} files ({report.bytes} bytes) into {data_dir}")


@main.command()
@_data_dir_option
def doctor(data_dir: Path | None) -> None:
    """Check the configuration, the database (and its migrations and clock), the blob store (a
    write, a read and a delete) and free space. Prints what to fix; exit status 1 on a problem."""
    from app.doctor import Check, diagnose

    settings = _settings(data_dir=data_dir)

    async def run() -> list[Check]:
        checks = []
        async for check in diagnose(settings):
            click.echo(f"{check.name + ':':15} {'ok' if check.ok else 'PROBLEM'}  {check.detail}")
            checks.append(check)
        return checks

    problems = [c for c in asyncio.run(run()) if not c.ok]
    if problems:
        raise click.ClickException(f"{len(problems)} problem(s): see above")


def _run_admin(work: Coroutine[Any, Any, T]) -> T:
    """Run an admin coroutine; its refusals (and storage failures) become a clear message and
    exit status 1."""
    from app.admin import AdminError
    from app.core.errors import FileDockError

    try:
        return asyncio.run(work)
    except (AdminError, FileDockError) as exc:
        raise click.ClickException(str(exc)) from None


def _export(settings: Settings) -> None:
    for name in (
        "host",
        "port",
        "data_dir",
        "database_url",
        "blob_url",
        "workers",
        "log_level",
        "log_format",
    ):
        os.environ[f"FILEDOCK_{name.upper()}"] = str(getattr(settings, name))


if __name__ == "__main__":
    main()
