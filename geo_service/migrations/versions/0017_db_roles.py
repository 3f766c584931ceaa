"""Least-privilege database roles: grants for the application and purge roles (issue 13).

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-29
"""

from alembic import op  # noqa: F401

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Placeholder: filled in by its workstream."""


def downgrade() -> None:
    """Placeholder: filled in by its workstream."""
