"""Sesame's own SNS: topics, subscriptions, published messages and their delivery queue.

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

from sesame.storage.models import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "sns_topics",
        sa.Column("arn", sa.String(length=300), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_sns_topics_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("arn", name=op.f("pk_sns_topics")),
        sa.UniqueConstraint(
            "account_id", "region", "name", name=op.f("uq_sns_topics_account_id_region_name")
        ),
    )
    op.create_table(
        "sns_subscriptions",
        sa.Column("arn", sa.String(length=340), nullable=False),
        sa.Column("topic_arn", sa.String(length=300), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("protocol", sa.String(length=16), nullable=False),
        sa.Column("endpoint", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("token", sa.String(length=128), nullable=False),
        sa.Column("token_expires_at", UTCDateTime(), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("authenticate_on_unsubscribe", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("confirmed_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["topic_arn"],
            ["sns_topics.arn"],
            name=op.f("fk_sns_subscriptions_topic_arn_sns_topics"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("arn", name=op.f("pk_sns_subscriptions")),
        sa.UniqueConstraint("token", name=op.f("uq_sns_subscriptions_token")),
    )
    with op.batch_alter_table("sns_subscriptions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sns_subscriptions_topic_arn"), ["topic_arn"], unique=False)
    op.create_table(
        "sns_messages",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("topic_arn", sa.String(length=300), nullable=False),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("structure", sa.String(length=8), nullable=True),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["topic_arn"],
            ["sns_topics.arn"],
            name=op.f("fk_sns_messages_topic_arn_sns_topics"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sns_messages")),
    )
    with op.batch_alter_table("sns_messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sns_messages_topic_arn"), ["topic_arn"], unique=False)
    op.create_table(
        "sns_deliveries",
        sa.Column("id", _ID, nullable=False),
        sa.Column("subscription_arn", sa.String(length=340), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("locked_by", sa.String(length=64), nullable=True),
        sa.Column("locked_until", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscription_arn"],
            ["sns_subscriptions.arn"],
            name=op.f("fk_sns_deliveries_subscription_arn_sns_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sns_deliveries")),
    )
    with op.batch_alter_table("sns_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sns_deliveries_state_next_attempt_at", ["state", "next_attempt_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_sns_deliveries_message_id"), ["message_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_sns_deliveries_subscription_arn"), ["subscription_arn"], unique=False
        )


def downgrade() -> None:
    op.drop_table("sns_deliveries")
    op.drop_table("sns_messages")
    op.drop_table("sns_subscriptions")
    op.drop_table("sns_topics")
