"""index blob keys for gc

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_files_blob_key", "files", ["blob_key"])
    op.create_index("ix_upload_parts_blob_key", "upload_parts", ["blob_key"])


def downgrade() -> None:
    op.drop_index("ix_upload_parts_blob_key", table_name="upload_parts")
    op.drop_index("ix_files_blob_key", table_name="files")
