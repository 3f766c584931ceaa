"""One open incident per responder, per-user idempotency keys (issue 13).

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-29
"""

from alembic import op  # noqa: F401

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Placeholder: filled in by its workstream."""


def downgrade() -> None:
    """Placeholder: filled in by its workstream."""
