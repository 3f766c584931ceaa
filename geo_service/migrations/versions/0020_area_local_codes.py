"""Area codes unique only within their parent (issue 15, F10).

Many cities number grids per community (every community has a ``G01``). Such an import stores
the full code ``<parent code>/<local code>`` in ``areas.code`` (unique in a version, as before)
and the code the source gave in ``local_code``; ``local_code`` is NULL where the code alone is
the area's code.

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``areas.local_code``."""
    op.add_column("areas", sa.Column("local_code", sa.String(64), nullable=True))


def downgrade() -> None:
    """Drop ``areas.local_code`` (full codes stay in ``code``)."""
    op.drop_column("areas", "local_code")
