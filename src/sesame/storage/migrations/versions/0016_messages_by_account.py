"""An index of each account's messages newest first, for the console's message search.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_messages_account_id_region_created_at", "messages", ["account_id", "region", "created_at", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_messages_account_id_region_created_at", table_name="messages")
