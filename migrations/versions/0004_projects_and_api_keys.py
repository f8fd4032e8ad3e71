"""projects, API keys, and a project on every file and upload

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEFAULT_PROJECT = "default"  # everything stored before projects existed belongs to it


def upgrade() -> None:
    for table in ("files", "file_tombstones", "uploads"):
        op.add_column(
            table,
            sa.Column("project", sa.String(64), nullable=False, server_default=DEFAULT_PROJECT),
        )
    op.drop_index("ix_files_created_at_seq", table_name="files")
    op.drop_index("ix_files_purpose_created_at_seq", table_name="files")
    op.create_index("ix_files_project_created_at_seq", "files", ["project", "created_at", "seq"])
    op.create_index(
        "ix_files_project_purpose_created_at_seq", "files", ["project", "purpose", "created_at", "seq"]
    )
    op.create_table(
        "projects",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("bytes_used", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("files_used", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("max_bytes", sa.BigInteger(), nullable=True),
        sa.Column("max_files", sa.BigInteger(), nullable=True),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("project", sa.String(64), nullable=False),
        sa.Column("admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
    )
    # The files already stored count against their (default) project's quota from now on.
    op.execute(
        "INSERT INTO projects (name, bytes_used, files_used) "
        "SELECT project, SUM(bytes), COUNT(*) FROM files GROUP BY project"
    )


def downgrade() -> None:
    op.drop_table("api_keys")
    op.drop_table("projects")
    op.drop_index("ix_files_project_purpose_created_at_seq", table_name="files")
    op.drop_index("ix_files_project_created_at_seq", table_name="files")
    op.create_index("ix_files_purpose_created_at_seq", "files", ["purpose", "created_at", "seq"])
    op.create_index("ix_files_created_at_seq", "files", ["created_at", "seq"])
    for table in ("uploads", "file_tombstones", "files"):
        op.drop_column(table, "project")
