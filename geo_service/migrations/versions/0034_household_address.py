"""The household's address (issue 20): what a grid worker needs to find the door.

``households.address``: free text as the source gives it (building, unit, door:
``锦绣小区 3 栋 2 单元 501``), at most 200 characters, NULL when the source does not say.
Like every household row it is shown only to admins and the grid's own worker (the
residents room's rows); no aggregate carries it.

Revision ID: 0034
Revises: 0033
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0034"
down_revision = "0033"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``households.address`` (nullable: existing rows have none)."""
    op.add_column("households", sa.Column("address", sa.String(200)))


def downgrade() -> None:
    """Drop ``households.address``."""
    op.drop_column("households", "address")
