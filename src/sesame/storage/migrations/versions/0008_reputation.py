"""Statistics and reputation: reputation_counters (bucketed outcome counts) and reputation (rates).

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

from sesame.storage.models import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _key() -> list[sa.Column[str]]:
    return [
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("scope", sa.String(length=64), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "reputation_counters",
        *_key(),
        sa.Column("span", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        sa.Column("sends", sa.Integer(), nullable=False),
        sa.Column("bounces", sa.Integer(), nullable=False),
        sa.Column("complaints", sa.Integer(), nullable=False),
        sa.Column("rejects", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_reputation_counters_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "account_id", "region", "scope", "span", "bucket", name=op.f("pk_reputation_counters")
        ),
    )
    op.create_table(
        "reputation",
        *_key(),
        sa.Column("sends", sa.Integer(), nullable=False),
        sa.Column("bounces", sa.Integer(), nullable=False),
        sa.Column("complaints", sa.Integer(), nullable=False),
        sa.Column("bounce_rate", sa.Float(), nullable=False),
        sa.Column("complaint_rate", sa.Float(), nullable=False),
        sa.Column("reset_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_reputation_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "region", "scope", name=op.f("pk_reputation")),
    )


def downgrade() -> None:
    op.drop_table("reputation")
    op.drop_table("reputation_counters")
