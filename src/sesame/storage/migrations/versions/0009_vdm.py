"""VDM: daily metric counters, recipient domains' providers, Advisor recommendations and their checks.

Revision ID: 0009
Revises: 0006
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

from sesame.storage.models import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vdm_counters",
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("metric", sa.String(length=24), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("email_identity", sa.String(length=320), nullable=False),
        sa.Column("configuration_set", sa.String(length=64), nullable=False),
        sa.Column("isp", sa.String(length=64), nullable=False),
        sa.Column("recipient_domain", sa.String(length=255), nullable=False),
        sa.Column("from_domain", sa.String(length=255), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "account_id",
            "region",
            "metric",
            "day",
            "email_identity",
            "configuration_set",
            "isp",
            "recipient_domain",
            "from_domain",
            "tenant",
            name=op.f("pk_vdm_counters"),
        ),
    )
    op.create_table(
        "vdm_isp_domains",
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column("isp", sa.String(length=64), nullable=True),
        sa.Column("checked_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("domain", name=op.f("pk_vdm_isp_domains")),
    )
    op.create_index(op.f("ix_vdm_isp_domains_checked_at"), "vdm_isp_domains", ["checked_at"])
    op.create_table(
        "vdm_recommendations",
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("resource_arn", sa.String(length=1011), nullable=False),
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("impact", sa.String(length=8), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint(
            "account_id", "region", "resource_arn", "key", name=op.f("pk_vdm_recommendations")
        ),
    )
    op.create_table(
        "vdm_checks",
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("checked_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "region", name=op.f("pk_vdm_checks")),
    )


def downgrade() -> None:
    op.drop_table("vdm_checks")
    op.drop_table("vdm_recommendations")
    op.drop_table("vdm_isp_domains")
    op.drop_table("vdm_counters")
