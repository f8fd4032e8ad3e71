"""`BatchRunner`: each server process's background worker that runs batches to the end.

The runner claims a batch through the database (a lease, `BatchStore.claim`), renews the
lease while it works, and moves the batch one step at a time, re-reading it between steps so
a cancel or another runner's takeover is seen:

    validating  -> failed (errors with line numbers) | in_progress
    in_progress -> finalizing (every line answered) | expired (past the window)
    finalizing  -> completed;  cancelling -> cancelled

While in progress, the input file is streamed (never held whole) and each unfinished line goes
to the upstream, at most `batch_concurrency` at once across the process. Results are recorded
every `FLUSH_SECONDS` with the counters they move, in one transaction; a restart reads which
lines are done and sends only the rest. Finalizing writes the recorded results out as the
output and error files, through `FileService`, each named on the batch in the same
transaction that records it, so running a finalization twice never makes a file twice.
"""

import asyncio
import contextlib
import functools
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Callable, Sequence

from app.core.batch_lines import (
    BatchRequest,
    InputCheck,
    LineTooLong,
    is_blank,
    parse_request,
    read_lines,
)
from app.core.batch_requests import RequestSender, Upstream, failure_text
from app.core.errors import InvalidRequest, LeaseLost, NotFound
from app.core.files import FileService, NewFile
from app.core.policy import FilePolicy
from app.core.records import FINAL_BATCH, BatchLineError, BatchRecord, Event, FileRecord, LineResult
from app.core.webhooks import new_event
from app.metadata.batches_store import BatchStore

log = logging.getLogger("filedock.batches")
OutputPolicy = Callable[[int | None], FilePolicy]  # output_expires_after -> the files' policy
FLUSH_SECONDS = 0.25
MAX_BATCHES_AT_ONCE = 4
RESULT_PAGE = 500
EXPIRED_MESSAGE = "This request could not be executed before the batch's completion window expired."


class InputGone(Exception):
    """The batch's input file was deleted before the batch could read it."""


class BatchRunner:
    def __init__(
        self, files: FileService, store: BatchStore, upstream: Upstream, output_policy: OutputPolicy
    ) -> None:
        self.files = files
        self.store = store
        self.settings = files.settings
        self.sender = RequestSender(upstream, self.settings)
        self.output_policy = output_policy
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._wake = asyncio.Event()
        self._running: dict[str, asyncio.Task[None]] = {}

    def wake(self) -> None:
        """Look for work now rather than at the next poll (a batch was just created)."""
        self._wake.set()

    async def run_forever(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self._claim_more()
            except Exception:  # the runner must outlive a failing database; it retries next poll
                log.exception("could not claim batches")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.batch_poll_interval_seconds)

    async def aclose(self) -> None:
        """Stop every batch this process runs (recording what finished) and free their leases."""
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.store.release(self.owner)

    async def _claim_more(self) -> None:
        while len(self._running) < MAX_BATCHES_AT_ONCE:
            batch = await self.store.claim(self.owner, self.files.now(), self.settings.batch_lease_seconds)
            if batch is None:
                return
            if batch.id in self._running:  # ours already: a late renewal let it lapse, now renewed
                continue
            task = asyncio.create_task(self._hold(batch))
            self._running[batch.id] = task
            task.add_done_callback(functools.partial(self._finished, batch.id))

    def _finished(self, batch_id: str, _task: "asyncio.Task[None]") -> None:
        self._running.pop(batch_id, None)
        self.wake()

    async def _hold(self, batch: BatchRecord) -> None:
        """Run the batch while a heartbeat renews its lease; stop if another runner took it."""
        work = asyncio.create_task(BatchJob(self, batch).run())
        beat = asyncio.create_task(self._heartbeat(batch.id, work))
        try:
            await work
        except LeaseLost:
            log.warning("batch %s was taken over by another runner", batch.id)
        except asyncio.CancelledError:
            if not (beat.done() and not beat.cancelled() and beat.result()):
                raise  # this process is shutting down
            log.warning("batch %s was taken over by another runner", batch.id)
        except Exception:
            log.exception("batch %s failed in this runner; it is retried once its lease lapses", batch.id)
        finally:
            beat.cancel()

    async def _heartbeat(self, batch_id: str, work: asyncio.Task[None]) -> bool:
        """Renew the lease until the work ends; True (the work cancelled) if it was lost."""
        lease = self.settings.batch_lease_seconds
        while True:
            await asyncio.sleep(lease / 3)
            try:
                await self.store.renew(batch_id, self.owner, self.files.now(), lease)
            except LeaseLost:
                work.cancel()
                return True
            except Exception:
                log.exception("could not renew the lease of batch %s", batch_id)


class BatchJob:
    """One batch, moved step by step by the runner that holds its lease."""

    def __init__(self, runner: BatchRunner, batch: BatchRecord) -> None:
        self.runner = runner
        self.store = runner.store
        self.owner = runner.owner
        self.settings = runner.settings
        self.batch_id = batch.id
        self.files = runner.files.for_project(batch.project)

    async def run(self) -> None:
        lease = self.settings.batch_lease_seconds
        while True:
            batch = await self.store.get_batch(self.batch_id)
            if batch is None or batch.status in FINAL_BATCH:
                return
            await self.store.renew(batch.id, self.owner, self.files.now(), lease)  # still ours?
            try:
                await self._step(batch)
            except InputGone:
                error = BatchLineError("invalid_file", f"The input file {batch.input_file_id} was deleted.")
                await self._finish(batch, "failed", errors=[error])

    async def _step(self, batch: BatchRecord) -> None:
        if batch.status == "validating":
            await self._validate(batch)
        elif batch.status == "in_progress" and self._expired(batch):
            await self._finalize(batch, "expired")
        elif batch.status == "in_progress":
            if await self._execute(batch):
                await self._update(batch, status="finalizing", finalizing_at=self.files.now())
        elif batch.status == "finalizing":
            await self._finalize(batch, "completed")
        elif batch.status == "cancelling":
            await self._finalize(batch, "cancelled")

    def _expired(self, batch: BatchRecord) -> bool:
        return self.files.now() >= batch.expires_at

    async def _update(self, batch: BatchRecord, **values: object) -> None:
        """Change the batch if it is still as read (a cancel may have come meanwhile)."""
        await self.store.update_held(batch.id, self.owner, batch.status, **values)

    async def _finish(self, batch: BatchRecord, status: str, **values: object) -> None:
        now = self.files.now()
        values[f"{status}_at"] = now
        # `batch.completed`, `.failed`, `.expired`, `.cancelled`: told in the same transaction
        events = [new_event(batch.project, f"batch.{status}", {"id": batch.id}, now)]
        await self.store.finish(batch.id, self.owner, batch.status, status=status, events=events, **values)

    # --- validating ---------------------------------------------------------------------------

    async def _validate(self, batch: BatchRecord) -> None:
        check = InputCheck(batch.endpoint)
        limit = self.settings.max_batch_line_bytes
        try:
            async for number, raw in read_lines(await self._open_input(batch), limit):
                check.feed(number, raw)
            errors = check.finish()
        except LineTooLong as exc:
            message = f"Line {exc.line} is longer than {limit} bytes."
            errors = [BatchLineError("line_too_long", message, exc.line)]
        if errors:
            await self._finish(batch, "failed", errors=errors)
            return
        values = {"total": check.requests, "model": check.model}
        await self._update(batch, status="in_progress", in_progress_at=self.files.now(), **values)

    async def _open_input(self, batch: BatchRecord) -> AsyncIterator[bytes]:
        try:
            record = await self.files.get_file(batch.input_file_id)
        except NotFound:
            raise InputGone(batch.input_file_id) from None
        return await self.files.open_blob(record.blob_key, owner=f"file {record.id}")

    # --- in progress --------------------------------------------------------------------------

    async def _execute(self, batch: BatchRecord) -> bool:
        """Send every unfinished line; True once all are answered, False if cancelled or expired."""
        finished = await self.store.finished_lines(batch.id)
        workers = self.settings.batch_concurrency
        queue: asyncio.Queue[BatchRequest | None] = asyncio.Queue(maxsize=workers)
        results: list[LineResult] = []
        tasks = [asyncio.create_task(self._feed(batch, finished, queue, workers))]
        tasks += [asyncio.create_task(self._work(batch, queue, results)) for _ in range(workers)]
        try:
            all_done = await self._supervise(batch, tasks, results)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if results:  # keep what finished, also when stopping for a shutdown
                with contextlib.suppress(LeaseLost):
                    await self._record(batch, results)
        return all_done

    async def _supervise(
        self, batch: BatchRecord, tasks: list[asyncio.Task[None]], results: list[LineResult]
    ) -> bool:
        while True:
            all_done = all(task.done() for task in tasks)
            for task in tasks:
                if task.done() and not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            status = await self._record(batch, results)
            if all_done:
                return True
            if status != "in_progress" or self._expired(batch):
                return False
            await asyncio.wait(tasks, timeout=FLUSH_SECONDS)

    async def _record(self, batch: BatchRecord, results: list[LineResult]) -> str:
        """Record the results gathered so far; the batch's status. A shutdown that comes
        mid-write waits for the write: else finished lines could be lost and sent again."""
        taken = results[:]
        del results[:]
        lease = self.settings.batch_lease_seconds
        write = asyncio.ensure_future(
            self.store.record_results(batch.id, self.owner, taken, self.files.now(), lease)
        )
        try:
            return await asyncio.shield(write)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await write
            raise

    async def _feed(
        self, batch: BatchRecord, finished: set[int], queue: asyncio.Queue[BatchRequest | None], workers: int
    ) -> None:
        async for request in self._unfinished(batch, finished):
            await queue.put(request)
        for _ in range(workers):
            await queue.put(None)

    async def _unfinished(self, batch: BatchRecord, finished: set[int]) -> AsyncIterator[BatchRequest]:
        """The input's requests that have no recorded result, in file order."""
        limit = self.settings.max_batch_line_bytes
        async for number, raw in read_lines(await self._open_input(batch), limit):
            if number in finished or is_blank(raw):
                continue
            request = parse_request(number, raw, batch.endpoint)
            if isinstance(request, BatchRequest):  # validation refused any other
                yield request

    async def _work(
        self, batch: BatchRecord, queue: asyncio.Queue[BatchRequest | None], results: list[LineResult]
    ) -> None:
        while (request := await queue.get()) is not None:
            results.append(await self.runner.sender.send(batch.endpoint, request))

    # --- finalizing ---------------------------------------------------------------------------

    async def _finalize(self, batch: BatchRecord, status: str) -> None:
        """Write the output and error files (those not written yet), then the final status."""
        try:
            if batch.output_file_id is None and await self._has_results(batch, ok=True):
                await self._write(batch, "output_file_id", "output", self._results(batch, ok=True))
            unanswered = batch.total - batch.completed - batch.failed if status == "expired" else 0
            if batch.error_file_id is None and (unanswered or await self._has_results(batch, ok=False)):
                await self._write(
                    batch, "error_file_id", "error", self._errors(batch, expired=unanswered > 0)
                )
        except InvalidRequest as exc:  # the project's quota has no room for the files
            error = BatchLineError(exc.code or "invalid_request", exc.message)
            await self._finish(batch, "failed", errors=[error])
            return
        extra = {"failed": batch.total - batch.completed} if status == "expired" else {}
        await self._finish(batch, status, **extra)

    async def _has_results(self, batch: BatchRecord, *, ok: bool) -> bool:
        return bool(await self.store.results(batch.id, ok=ok, after_line=0, limit=1))

    async def _write(
        self, batch: BatchRecord, column: str, kind: str, chunks: AsyncIterator[bytes]
    ) -> FileRecord:
        policy = self.runner.output_policy(batch.output_expires_after)

        async def attach(file: FileRecord, events: Sequence[Event]) -> FileRecord:
            return await self.store.attach_file(batch.id, self.owner, column, file, events)

        async with self.files.staging() as staged:
            await staged.receive(chunks, policy)
            return await self.files.commit_file(
                staged, policy, NewFile(f"{batch.id}_{kind}.jsonl"), insert=attach
            )

    async def _results(self, batch: BatchRecord, *, ok: bool) -> AsyncIterator[bytes]:
        after = 0
        while page := await self.store.results(batch.id, ok=ok, after_line=after, limit=RESULT_PAGE):
            yield "".join(f"{text}\n" for _, text in page).encode()
            after = page[-1][0]

    async def _errors(self, batch: BatchRecord, *, expired: bool) -> AsyncIterator[bytes]:
        async for chunk in self._results(batch, ok=False):
            yield chunk
        if expired:
            finished = await self.store.finished_lines(batch.id)
            async for request in self._unfinished(batch, finished):
                yield (failure_text(request.custom_id, "batch_expired", EXPIRED_MESSAGE) + "\n").encode()
