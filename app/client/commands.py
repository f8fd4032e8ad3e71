"""`filedock files …`: a client of any running FileDock, through its OpenAI API at <url>/v1."""

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click

from app.client import render, transfer
from app.client.api import ClientError, FileDockClient
from app.client.options import BYTE_SIZE, client_options
from app.core.units import human_size

T = TypeVar("T")
MAX_PAGE = 10_000  # the server's largest list page


def _call(url: str, api_key: str | None, work: Callable[[FileDockClient], T], *, connections: int = 8) -> T:
    """Run `work` with a client; a `ClientError` becomes one line on stderr and exit status 1."""
    try:
        with FileDockClient(url, api_key, connections=connections) as client:
            return work(client)
    except ClientError as exc:
        raise click.ClickException(str(exc)) from None


def _print_json(value: object) -> None:
    click.echo(json.dumps(value, indent=2))


@click.group()
def files() -> None:
    """Upload, list, download and delete files on a running FileDock (local or remote).

    Talks HTTP to the server's OpenAI API: set --url and --api-key, or FILEDOCK_URL and
    FILEDOCK_API_KEY.
    """


@files.command("ls")
@click.option("--purpose", help="Only files with this purpose.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True, help="Most files shown.")
@client_options
def list_files(purpose: str | None, limit: int, url: str, api_key: str | None, as_json: bool) -> None:
    """List files, newest first: id, name, size, purpose, created, expires."""
    shown, more = _call(url, api_key, lambda c: _first_files(c, purpose, limit))
    if as_json:
        _print_json(shown)
        return
    click.echo(render.files_table(shown) if shown else "no files")
    if more:
        click.echo(f"(the first {limit} shown; --limit shows more)", err=True)


def _first_files(
    client: FileDockClient, purpose: str | None, limit: int
) -> tuple[list[dict[str, Any]], bool]:
    shown: list[dict[str, Any]] = []
    for page in _pages(client, purpose, limit):
        shown.extend(page["data"])
        if not page["has_more"]:
            return shown, False
    return shown, True


def _pages(client: FileDockClient, purpose: str | None, limit: int) -> Iterator[dict[str, Any]]:
    after = None
    while limit > 0:
        page = client.list_files(purpose=purpose, limit=min(limit, MAX_PAGE), after=after)
        yield page
        limit -= len(page["data"])
        if not page["data"]:
            return
        after = page["data"][-1]["id"]


@files.command("info")
@click.argument("file_id")
@client_options
def file_info(file_id: str, url: str, api_key: str | None, as_json: bool) -> None:
    """Show one file's metadata."""
    file = _call(url, api_key, lambda c: c.get_file(file_id))
    click.echo(json.dumps(file, indent=2) if as_json else render.file_details(file))


@files.command("rm")
@click.argument("file_ids", nargs=-1, required=True)
@client_options
def remove_files(file_ids: tuple[str, ...], url: str, api_key: str | None, as_json: bool) -> None:
    """Delete files by id; the others are still deleted when one fails."""

    def delete_all(client: FileDockClient) -> tuple[list[dict[str, Any]], list[str]]:
        deleted, failures = [], []
        for file_id in file_ids:
            try:
                deleted.append(client.delete_file(file_id))
            except ClientError as exc:
                failures.append(str(exc))
                continue
            if not as_json:
                click.echo(f"deleted {file_id}")
        return deleted, failures

    deleted, failures = _call(url, api_key, delete_all)
    if as_json:
        _print_json(deleted)
    if failures:
        raise click.ClickException("; ".join(failures))


@files.command("upload")
@click.argument("paths", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--purpose", default="user_data", show_default=True, help="The files' purpose.")
@click.option(
    "--multipart-threshold",
    type=BYTE_SIZE,
    default=transfer.DEFAULT_THRESHOLD_BYTES,
    show_default="64MiB",
    help="Larger files go through the Uploads API, in Parts sent in parallel.",
)
@click.option(
    "--part-size",
    type=BYTE_SIZE,
    default=transfer.DEFAULT_PART_BYTES,
    show_default="64MiB",
    help="Bytes per Part (the server's limit is FILEDOCK_MAX_UPLOAD_PART_BYTES).",
)
@click.option(
    "--parallel",
    type=click.IntRange(1, 32),
    default=transfer.DEFAULT_PARALLEL,
    show_default=True,
    help="Parts in flight at once.",
)
@client_options
def upload_files(
    paths: tuple[Path, ...],
    purpose: str,
    multipart_threshold: int,
    part_size: int,
    parallel: int,
    url: str,
    api_key: str | None,
    as_json: bool,
) -> None:
    """Upload files and print their ids, with a progress bar on a terminal."""
    if part_size < 1:
        raise click.BadParameter("must be at least 1 byte", param_hint="--part-size")
    options = transfer.UploadOptions(purpose, multipart_threshold, part_size, parallel)

    def upload_all(client: FileDockClient) -> list[dict[str, Any]]:
        done = []
        for path in paths:
            try:
                done.append(transfer.upload(client, path, options))
            except ClientError as exc:
                raise ClientError(f"{path}: {exc}") from exc
            if not as_json:
                click.echo(f"{done[-1]['id']}  {path}")
        return done

    uploaded = _call(url, api_key, upload_all, connections=parallel + 1)
    if as_json:
        _print_json(uploaded)


@files.command("download")
@click.argument("file_id")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="Where to write (a file, or a directory); default: the file's name, here.",
)
@client_options
def download_file(file_id: str, output: Path | None, url: str, api_key: str | None, as_json: bool) -> None:
    """Download a file's bytes. An interrupted download leaves <PATH>.part; the same command
    again resumes it, and the size (and SHA-256) are checked before PATH appears."""
    path, size = _call(url, api_key, lambda c: transfer.download(c, file_id, output))
    if as_json:
        _print_json({"id": file_id, "path": str(path), "bytes": size})
    else:
        click.echo(f"{path}  {human_size(size)}")


@files.group("uploads", invoke_without_command=True)
@client_options
@click.pass_context
def uploads(ctx: click.Context, url: str, api_key: str | None, as_json: bool) -> None:
    """List pending Uploads (files sent in Parts) with the bytes received so far.

    `filedock files uploads cancel ID` cancels one and frees its Parts.
    """
    if ctx.invoked_subcommand is not None:
        return
    pending = _call(url, api_key, _all_pending)
    if as_json:
        _print_json(pending)
        return
    click.echo(render.uploads_table(pending) if pending else "no pending uploads")


def _all_pending(client: FileDockClient) -> list[dict[str, Any]]:
    pending: list[dict[str, Any]] = []
    after = None
    while True:
        page = client.list_uploads(after=after)
        pending.extend(page["data"])
        if not page["has_more"] or not page["data"]:
            return pending
        after = page["data"][-1]["id"]


@uploads.command("cancel")
@click.argument("upload_ids", nargs=-1, required=True)
@client_options
def cancel_uploads(upload_ids: tuple[str, ...], url: str, api_key: str | None, as_json: bool) -> None:
    """Cancel pending Uploads, freeing the bytes of their Parts."""
    cancelled = _call(url, api_key, lambda c: [c.cancel_upload(upload_id) for upload_id in upload_ids])
    if as_json:
        _print_json(cancelled)
        return
    for answer in cancelled:
        click.echo(f"cancelled {answer['id']}")
