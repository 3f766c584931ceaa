"""Open311 service requests keep what the client sent (issue 17): ``address_string``,
``media_url``, the answers to the service definition's attributes and ``jurisdiction_id``,
in ``service_request_details`` beside the incident (contact fields are never stored).

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the table (the application role gets its rights by default privileges, 0017)."""
    op.create_table(
        "service_request_details",
        sa.Column(
            "incident_id",
            UUID(as_uuid=True),
            sa.ForeignKey("incidents.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("address_string", sa.String(500)),
        sa.Column("media_url", sa.String(2000)),
        sa.Column("attributes", JSONB, server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.Column("jurisdiction_id", sa.String(200)),
        sa.CheckConstraint(
            "media_url IS NULL OR media_url ~ '^https?://'", name="ck_service_request_media_url"
        ),
    )


def downgrade() -> None:
    """Drop the table."""
    op.drop_table("service_request_details")
