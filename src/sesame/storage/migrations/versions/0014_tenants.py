"""Tenants: tenants, their resource associations and suppression lists, reputation entities, and the
tenant a message was sent as.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

from sesame.storage.models import UTCDateTime

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def _account(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["account_id"], ["accounts.id"], name=op.f(f"fk_{table}_account_id_accounts"), ondelete="CASCADE"
    )


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch_op:
        batch_op.add_column(sa.Column("tenant_name", sa.String(length=64), nullable=True))
    op.create_table(
        "tenants",
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("arn", sa.String(length=1011), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("suppression_attributes", sa.JSON(), nullable=True),
        _account("tenants"),
        sa.PrimaryKeyConstraint("account_id", "region", "name", name=op.f("pk_tenants")),
        sa.UniqueConstraint("tenant_id", name=op.f("uq_tenants_tenant_id")),
    )
    op.create_table(
        "tenant_resources",
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("tenant_name", sa.String(length=64), nullable=False),
        sa.Column("resource_arn", sa.String(length=1011), nullable=False),
        sa.Column("resource_type", sa.String(length=24), nullable=False),
        sa.Column("associated_at", UTCDateTime(), nullable=False),
        _account("tenant_resources"),
        sa.PrimaryKeyConstraint(
            "account_id", "region", "tenant_name", "resource_arn", name=op.f("pk_tenant_resources")
        ),
    )
    op.create_index(
        "ix_tenant_resources_resource", "tenant_resources", ["account_id", "region", "resource_arn"]
    )
    op.create_table(
        "reputation_entities",
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("reference", sa.String(length=1011), nullable=False),
        sa.Column("entity_type", sa.String(length=16), nullable=False),
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("policy", sa.String(length=255), nullable=False),
        sa.Column("customer_status", sa.String(length=16), nullable=False),
        sa.Column("customer_cause", sa.String(length=512), nullable=True),
        sa.Column("customer_updated_at", UTCDateTime(), nullable=False),
        sa.Column("ses_status", sa.String(length=16), nullable=False),
        sa.Column("ses_cause", sa.String(length=512), nullable=True),
        sa.Column("ses_updated_at", UTCDateTime(), nullable=False),
        sa.Column("sending_status", sa.String(length=16), nullable=False),
        sa.Column("impact", sa.String(length=8), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        _account("reputation_entities"),
        sa.PrimaryKeyConstraint("account_id", "region", "reference", name=op.f("pk_reputation_entities")),
    )
    op.create_table(
        "tenant_suppressed_destinations",
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("tenant_name", sa.String(length=64), nullable=False),
        sa.Column("email_address", sa.String(length=320), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("last_update_time", UTCDateTime(), nullable=False),
        sa.Column("message_id", sa.String(length=80), nullable=True),
        sa.Column("feedback_id", sa.String(length=80), nullable=True),
        _account("tenant_suppressed_destinations"),
        sa.PrimaryKeyConstraint(
            "account_id",
            "region",
            "tenant_name",
            "email_address",
            name=op.f("pk_tenant_suppressed_destinations"),
        ),
    )


def downgrade() -> None:
    op.drop_table("tenant_suppressed_destinations")
    op.drop_table("reputation_entities")
    op.drop_index("ix_tenant_resources_resource", table_name="tenant_resources")
    op.drop_table("tenant_resources")
    op.drop_table("tenants")
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_column("tenant_name")
