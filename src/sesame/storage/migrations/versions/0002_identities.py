"""Identities (email addresses and domains) with DKIM, MAIL FROM and policy settings.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

from sesame.storage.models import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identities",
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("identity", sa.String(320), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("verification_status", sa.String(20), nullable=False),
        sa.Column("verification_token", sa.String(64), nullable=True),
        sa.Column("verification_started_at", UTCDateTime(), nullable=False),
        sa.Column("last_checked_at", UTCDateTime(), nullable=True),
        sa.Column("last_success_at", UTCDateTime(), nullable=True),
        sa.Column("verification_error", sa.String(64), nullable=True),
        sa.Column("dkim_origin", sa.String(32), nullable=False),
        sa.Column("dkim_signing_enabled", sa.Boolean(), nullable=False),
        sa.Column("dkim_status", sa.String(20), nullable=False),
        sa.Column("dkim_tokens", sa.JSON(), nullable=False),
        sa.Column("dkim_private_key", sa.Text(), nullable=True),
        sa.Column("dkim_key_length", sa.String(16), nullable=True),
        sa.Column("dkim_next_key_length", sa.String(16), nullable=True),
        sa.Column("dkim_key_generated_at", UTCDateTime(), nullable=True),
        sa.Column("mail_from_domain", sa.String(255), nullable=True),
        sa.Column("mail_from_behavior", sa.String(24), nullable=False),
        sa.Column("mail_from_status", sa.String(20), nullable=True),
        sa.Column("feedback_forwarding", sa.Boolean(), nullable=False),
        sa.Column("configuration_set_name", sa.String(64), nullable=True),
        sa.Column("notifications", sa.JSON(), nullable=False),
        sa.Column("policies", sa.JSON(), nullable=False),
        sa.Column("verification_template", sa.String(64), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_identities_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "region", "identity", name=op.f("pk_identities")),
    )
    op.create_index(op.f("ix_identities_verification_token"), "identities", ["verification_token"])


def downgrade() -> None:
    op.drop_index(op.f("ix_identities_verification_token"), table_name="identities")
    op.drop_table("identities")
