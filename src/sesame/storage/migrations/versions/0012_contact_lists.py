"""Contact lists and their contacts (SES v2 list management).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from sesame.storage.models import UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contact_lists",
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("topics", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_contact_lists_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "region", "name", name=op.f("pk_contact_lists")),
    )
    op.create_table(
        "contacts",
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("list_name", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("email_address", sa.String(length=320), nullable=False),
        sa.Column("preferences", sa.JSON(), nullable=False),
        sa.Column("unsubscribe_all", sa.Boolean(), nullable=False),
        sa.Column("attributes_data", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id", "region", "list_name"],
            ["contact_lists.account_id", "contact_lists.region", "contact_lists.name"],
            name=op.f("fk_contacts_account_id_contact_lists"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "region", "list_name", "address", name=op.f("pk_contacts")),
    )


def downgrade() -> None:
    op.drop_table("contacts")
    op.drop_table("contact_lists")
