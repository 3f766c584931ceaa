"""What the managers' reports need that the lifecycle did not keep (issue 19): a dispute's
mediation outcome and how often an incident was reopened.

``incidents.outcome`` is set when an incident is resolved with one (``settled``: the parties
agreed; ``unsettled``: mediation failed and the matter was referred on); ``reopened_count``
counts ``reopen`` actions (a resolved or closed incident that came back), and
``reopened_at`` stamps the last one.

Revision ID: 0030
Revises: 0028
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``outcome``, ``reopened_count`` and ``reopened_at`` to ``incidents``."""
    op.add_column("incidents", sa.Column("outcome", sa.String(16)))
    op.create_check_constraint(
        "ck_incident_outcome", "incidents", "outcome IN ('settled', 'unsettled')"
    )
    op.add_column(
        "incidents",
        sa.Column("reopened_count", sa.SmallInteger(), server_default="0", nullable=False),
    )
    op.add_column("incidents", sa.Column("reopened_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    """Drop the columns."""
    op.drop_column("incidents", "reopened_at")
    op.drop_column("incidents", "reopened_count")
    op.drop_constraint("ck_incident_outcome", "incidents")
    op.drop_column("incidents", "outcome")
