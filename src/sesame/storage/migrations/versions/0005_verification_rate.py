"""account_regions.verification_email_at: verification emails are rate-limited per account and region.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

from sesame.storage.models import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("account_regions") as batch_op:
        batch_op.add_column(sa.Column("verification_email_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("account_regions") as batch_op:
        batch_op.drop_column("verification_email_at")
