"""Household service flags may be unknown (issue 15, F13).

An import whose file has no column for ``elderly_living_alone`` or ``needs_assistance`` (or a
blank cell) used to store ``false``: "nobody here needs help", which nobody said. The two flags
are now nullable without a default: NULL is unknown. Rows stored before keep their value (the
false of a missing column can no longer be told from a stated false).

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-30
"""

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

FLAGS = ("elderly_living_alone", "needs_assistance")


def upgrade() -> None:
    """Make both flags nullable, with no default."""
    for flag in FLAGS:
        op.alter_column("households", flag, nullable=True, server_default=None)


def downgrade() -> None:
    """Unknown becomes false again (the old reading), then NOT NULL DEFAULT false."""
    for flag in FLAGS:
        op.execute(f"UPDATE households SET {flag} = false WHERE {flag} IS NULL")
        op.alter_column("households", flag, nullable=False, server_default="false")
