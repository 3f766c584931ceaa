"""The resolution note on the incident (issue 20): what the worker did, in their words.

``incidents.resolution_note``: free text (at most 2000 characters, as the action's ``note``)
set by ``resolve`` and cleared by ``reopen``. It was kept only in the audit log, which only
admins read; now a dispatcher and the grid's worker see it on the incident, with the same
visibility as the description (roles with ``incidents:describe``). No export or aggregate
carries it.

Revision ID: 0038
Revises: 0036
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0038"
down_revision = "0037"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``incidents.resolution_note`` (nullable: the note is optional)."""
    op.add_column("incidents", sa.Column("resolution_note", sa.String(2000)))


def downgrade() -> None:
    """Drop ``incidents.resolution_note``."""
    op.drop_column("incidents", "resolution_note")
