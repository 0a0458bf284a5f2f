"""Event publishing: events.dispatched, the publications outbox, messages.source_ip.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

from sesame.storage.models import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch_op:
        batch_op.add_column(sa.Column("source_ip", sa.String(length=45), nullable=True))
    with op.batch_alter_table("events") as batch_op:
        batch_op.add_column(sa.Column("dispatched", sa.Boolean(), server_default=sa.false(), nullable=False))
    # Records written before there was anything to publish them to stay unpublished.
    op.execute("UPDATE events SET dispatched = true")
    op.create_index(
        "ix_events_undispatched",
        "events",
        ["id"],
        sqlite_where=sa.text("dispatched = 0"),
        postgresql_where=sa.text("NOT dispatched"),
    )
    op.create_table(
        "publications",
        sa.Column("id", _ID, nullable=False),
        sa.Column("event_id", _ID, nullable=False),
        sa.Column("message_id", sa.String(length=80), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("destination", sa.String(length=400), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("target", sa.JSON(), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("locked_by", sa.String(length=64), nullable=True),
        sa.Column("locked_until", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("published_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_publications_event_id_events"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_publications")),
    )
    op.create_index("ix_publications_state_next_attempt_at", "publications", ["state", "next_attempt_at"])
    op.create_index(
        "ix_publications_message_id_destination_id", "publications", ["message_id", "destination", "id"]
    )


def downgrade() -> None:
    op.drop_table("publications")
    op.drop_index("ix_events_undispatched", table_name="events")
    with op.batch_alter_table("events") as batch_op:
        batch_op.drop_column("dispatched")
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_column("source_ip")
