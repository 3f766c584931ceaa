"""The intake channel an account files for (issue 19's "received by source"): a 12345
hotline's operators and a sensor gateway file through the same Open311 API as citizens' apps;
``users.channel`` (``hotline``, ``sensor``; null for a citizens' channel) is the source their
filings carry, so the managers' reports count them apart.

Revision ID: 0036
Revises: 0035
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0036"
down_revision = "0035"
branch_labels = None
depends_on = None

# frozen copy of vocabulary.ACCOUNT_CHANNELS at this revision
ACCOUNT_CHANNELS = ("hotline", "sensor")


def upgrade() -> None:
    """Add ``users.channel`` with its check."""
    quoted = ", ".join(f"'{c}'" for c in ACCOUNT_CHANNELS)
    op.add_column("users", sa.Column("channel", sa.String(16)))
    op.create_check_constraint("ck_user_channel", "users", f"channel IN ({quoted})")


def downgrade() -> None:
    """Drop ``users.channel`` (accounts file as citizens again)."""
    op.drop_constraint("ck_user_channel", "users", type_="check")
    op.drop_column("users", "channel")
