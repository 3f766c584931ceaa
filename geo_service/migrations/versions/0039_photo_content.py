"""One photo per content on an incident: ``incident_photos.content_sha256``.

A phone's offline queue that sends a photo again without an ``Idempotency-Key`` stored it
twice. The hex SHA-256 of the bytes as uploaded is kept on the row, and a unique index on
(incident, hash) makes the same bytes on the same incident one photo: the repeat answers the
stored one. Photos stored before this revision have no hash (their upload is not kept: the
file is re-encoded) and are left as they are.

Revision ID: 0039
Revises: 0038
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0039"
down_revision = "0038"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``incident_photos.content_sha256`` and its unique index per incident."""
    op.add_column("incident_photos", sa.Column("content_sha256", sa.String(64)))
    op.create_index(
        "ux_incident_photos_content",
        "incident_photos",
        ["incident_id", "content_sha256"],
        unique=True,
        postgresql_where=sa.text("content_sha256 IS NOT NULL"),
    )


def downgrade() -> None:
    """Drop the index and the column."""
    op.drop_index("ux_incident_photos_content", table_name="incident_photos")
    op.drop_column("incident_photos", "content_sha256")
