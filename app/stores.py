"""`open_stores(settings)`: the one place the database and the blob store are opened, for
`serve`, the admin commands and gc alike, with the same settings (durability, timeouts, quota)."""

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from app.blobs import BlobStore, open_blob_store
from app.core.files import FileService, project_quota
from app.core.uploads import UploadService
from app.core.webhooks import WebhookDeliverer, WebhookService
from app.http.outbound import WebhookSender
from app.metadata.batches_store import BatchStore
from app.metadata.engine import create_engine
from app.metadata.keys_store import KeyStore
from app.metadata.maintenance_store import MaintenanceStore
from app.metadata.readers import dispose
from app.metadata.store import MetadataStore
from app.metadata.uploads_store import UploadStore
from app.metadata.webhooks_store import WebhookStore
from app.settings import Settings


@dataclass(frozen=True)
class Stores:
    files: FileService
    uploads: UploadService
    keys: KeyStore
    maintenance: MaintenanceStore
    webhooks: WebhookService  # `await stores.webhooks.emit(project, "batch.completed", {"id": …})`
    deliverer: WebhookDeliverer
    batches: BatchStore

    @property
    def metadata(self) -> MetadataStore:
        return self.files.metadata

    @property
    def blobs(self) -> BlobStore:
        return self.files.blobs


@contextlib.asynccontextmanager
async def open_stores(settings: Settings, *, migrate: bool = True) -> AsyncIterator[Stores]:
    """Migrate the database to the newest schema (unless told it is), open both stores, and close
    them on exit. Alembic is imported only to migrate: a server worker never holds it."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if migrate:
        from app.metadata.migrate import upgrade_to_head_async

        await upgrade_to_head_async(settings.database_url)
    engine = create_engine(
        settings.database_url, durable=settings.fsync, timeout_seconds=settings.storage_timeout_seconds
    )
    try:
        blobs = open_blob_store(settings)
        try:
            quota = project_quota(settings)
            files = FileService(settings, MetadataStore(engine, quota), blobs)
            uploads = UploadService(files, UploadStore(engine, quota))
            sender = WebhookSender(
                timeout_seconds=settings.webhook_timeout_seconds,
                allow_private=settings.webhook_allow_private,
            )
            webhook_store = WebhookStore(engine)
            try:
                yield Stores(
                    files,
                    uploads,
                    KeyStore(engine),
                    MaintenanceStore(engine),
                    WebhookService(settings, webhook_store, sender),
                    WebhookDeliverer(settings, webhook_store, sender),
                    BatchStore(engine, quota),
                )
            finally:
                await files.aclose()
                await sender.aclose()
        finally:
            await blobs.aclose()
    finally:
        await dispose(engine)
