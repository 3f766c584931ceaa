"""Fixed responders (issue 17): a fire or police station imported as a responder stands
where it is; its position is never stale, so nearest-responder lookups keep offering it.

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``responders.fixed`` (false for every existing responder)."""
    op.add_column(
        "responders",
        sa.Column("fixed", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )


def downgrade() -> None:
    """Drop the column."""
    op.drop_column("responders", "fixed")
