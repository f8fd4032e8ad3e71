"""create files and file tombstones

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SequenceKey = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "files",
        sa.Column("seq", SequenceKey, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column("filename", sa.String(1024), nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_details", sa.String(1024), nullable=True),
        sa.Column("mime_type", sa.String(255), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("blob_key", sa.String(128), nullable=False),
    )
    op.create_index("ix_files_created_at_seq", "files", ["created_at", "seq"])
    op.create_index("ix_files_purpose_created_at_seq", "files", ["purpose", "created_at", "seq"])
    op.create_index("ix_files_expires_at", "files", ["expires_at"])
    op.create_table(
        "file_tombstones",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("deleted_at", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_file_tombstones_deleted_at", "file_tombstones", ["deleted_at"])


def downgrade() -> None:
    op.drop_index("ix_file_tombstones_deleted_at", table_name="file_tombstones")
    op.drop_table("file_tombstones")
    op.drop_index("ix_files_expires_at", table_name="files")
    op.drop_index("ix_files_purpose_created_at_seq", table_name="files")
    op.drop_index("ix_files_created_at_seq", table_name="files")
    op.drop_table("files")
