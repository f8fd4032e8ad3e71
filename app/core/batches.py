"""`BatchService`: create, read, list and cancel the batches of one project.

A batch is created `validating` and runs in the background (`app.core.batch_runner`): its
input file is checked line by line, each request goes to the upstream, and the answers become
its output and error files. Creating one checks only what can be answered at once: the
upstream is configured and the input is this project's own `batch` file.
"""

import copy
from collections.abc import Callable
from dataclasses import dataclass

from app.core import ids
from app.core.errors import BatchNotFound, CursorNotFound, InvalidRequest, NotFound
from app.core.files import FileService
from app.core.records import BatchRecord
from app.metadata.batches_store import BatchStore

UPSTREAM_SETTING = "FILEDOCK_BATCH_UPSTREAM_URL"


@dataclass(frozen=True)
class NewBatch:
    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: dict[str, str] | None = None
    output_expires_after: int | None = None


class BatchService:
    """The batches of one project (`for_project`). `on_created` wakes this process's runner."""

    def __init__(
        self, files: FileService, store: BatchStore, on_created: Callable[[], None] | None = None
    ) -> None:
        self.files = files
        self.store = store
        self._on_created = on_created

    def for_project(self, project: str) -> "BatchService":
        scoped = copy.copy(self)
        scoped.files = self.files.for_project(project)
        return scoped

    async def create(self, new: NewBatch) -> BatchRecord:
        if not self.files.settings.batch_upstream_url:
            raise InvalidRequest(
                f"Batches are not enabled on this server: set {UPSTREAM_SETTING} to the base URL "
                "(ending in /v1) of an OpenAI-compatible server to run them against."
            )
        await self._check_input(new.input_file_id)
        now = self.files.now()
        record = BatchRecord(
            id=ids.new_batch_id(),
            project=self.files.project,
            input_file_id=new.input_file_id,
            endpoint=new.endpoint,
            completion_window=new.completion_window,
            status="validating",
            created_at=now,
            expires_at=now + self.files.settings.batch_completion_window_seconds,
            metadata=new.metadata,
            output_expires_after=new.output_expires_after,
        )
        stored = await self.store.insert_batch(record)
        if self._on_created:
            self._on_created()
        return stored

    async def _check_input(self, file_id: str) -> None:
        try:
            record = await self.files.get_file(file_id)
        except NotFound:
            raise InvalidRequest(
                f"Invalid 'input_file_id': no file {file_id} in this project.", param="input_file_id"
            ) from None
        if record.purpose != "batch":
            raise InvalidRequest(
                f"Invalid 'input_file_id': file {file_id} has purpose '{record.purpose}'; a batch's "
                "input file must be uploaded with purpose 'batch'.",
                param="input_file_id",
            )

    async def get(self, batch_id: str) -> BatchRecord:
        record = await self.store.get_batch(batch_id) if ids.is_valid_batch_id(batch_id) else None
        if record is None or record.project != self.files.project:  # another project's: not here
            raise BatchNotFound(batch_id)
        return record

    async def list(self, *, after: str | None, limit: int) -> tuple[list[BatchRecord], bool]:
        try:
            return await self.store.list_batches(self.files.project, after=after, limit=limit)
        except CursorNotFound:
            raise NotFound("Resource not found.", param="after") from None

    async def cancel(self, batch_id: str) -> BatchRecord:
        """Ask the runner to stop: `cancelling` now, `cancelled` once what finished is written."""
        record = await self.get(batch_id)
        if record.status in ("cancelling", "cancelled"):
            return record
        if not await self.store.request_cancel(batch_id, self.files.now()):
            record = await self.get(batch_id)  # it moved on meanwhile: say to what
            if record.status not in ("cancelling", "cancelled"):
                raise InvalidRequest(
                    f"Cannot cancel batch {batch_id}: its status is '{record.status}'.", param="batch_id"
                )
            return record
        return await self.get(batch_id)
