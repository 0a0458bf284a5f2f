"""PostgreSQL: vacuum the tables whose rows change state often (the delivery queue, event records,
outboxes) after a fixed number of dead rows instead of a fifth of the table.

Each state change of a queue entry (queued, delivering, delivered) leaves a dead row version and a
dead entry in the state index, and the claim's bitmap scans read every dead entry until VACUUM removes
it. With PostgreSQL's default (a vacuum once a fifth of the table is dead), the dead entries grow
with the table, and so did the claim: in a 30-minute soak at 100 messages a second, the claim took
1.8 ms a call after 8,000 messages and SendEmail's p99 tripled (bench/soak.py). A fixed threshold
keeps them to what one autovacuum pass (a minute by default) leaves behind. SQLite keeps no dead rows.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06
"""

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

HOT = ("queue", "events", "publications", "sns_deliveries", "inbound_messages", "receipts")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in HOT:
        op.execute(
            f"ALTER TABLE {table} SET (autovacuum_vacuum_scale_factor = 0,"
            " autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_cost_delay = 0)"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in HOT:
        op.execute(
            f"ALTER TABLE {table} RESET (autovacuum_vacuum_scale_factor, autovacuum_vacuum_threshold,"
            " autovacuum_vacuum_cost_delay)"
        )
