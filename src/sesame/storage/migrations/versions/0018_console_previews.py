"""Console previews: rendered template previews, kept in the database so that any process may serve them.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from sesame.storage.models import UTCDateTime

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_previews",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_previews")),
    )
    op.create_index(op.f("ix_console_previews_owner"), "console_previews", ["owner"])
    op.create_index(op.f("ix_console_previews_expires_at"), "console_previews", ["expires_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_console_previews_expires_at"), table_name="console_previews")
    op.drop_index(op.f("ix_console_previews_owner"), table_name="console_previews")
    op.drop_table("console_previews")
