"""files.sha256 nullable: hashed after the response, NULL until then

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Only the rows still to hash: the backlog query reads this small index, never the table.
UNHASHED = sa.text("sha256 IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("files") as batch:
        batch.alter_column("sha256", existing_type=sa.String(64), nullable=True)
    op.create_index("ix_files_unhashed", "files", ["seq"], sqlite_where=UNHASHED, postgresql_where=UNHASHED)


def downgrade() -> None:
    # The older schema has no way to say "not hashed yet", and an older `verify --deep --repair`
    # would delete a file whose stored hash is wrong: refuse rather than invent one.
    unhashed = op.get_bind().execute(sa.text("SELECT COUNT(*) FROM files WHERE sha256 IS NULL")).scalar()
    if unhashed:
        raise RuntimeError(
            f"{unhashed} files are not hashed yet: run `filedock verify --deep` (or let a server of "
            "this version run a maintenance round), then downgrade again."
        )
    op.drop_index("ix_files_unhashed", table_name="files")
    with op.batch_alter_table("files") as batch:
        batch.alter_column("sha256", existing_type=sa.String(64), nullable=False)
