"""The grid worker's phone page (issue 20): a resolution code on incidents, the keys of
lifecycle actions sent with an ``Idempotency-Key`` (a phone's offline queue sends each action
again until it hears an answer; the server does it once), incident photos and household visits.

``incident_action_keys`` holds one row per (user, key): the incident and action it did. A
second request with the same key answers the incident as it is now and does nothing; the same
key on another incident or action is a 409. Rows go with their user or incident (CASCADE).

``incident_photos``: one row per stored photo (the file itself is in the photo store under
``storage_key``, re-encoded without EXIF, with a thumbnail); rows go with their incident.
``household_visits``: a grid worker's visit to a household (date, outcome, the two service
flags as found); rows go with their household.

Revision ID: 0033
Revises: 0029
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0033"
down_revision = "0029"
branch_labels = None
depends_on = None

# frozen copy of vocabulary.RESOLUTION_CODES at this revision
RESOLUTION_CODES = ("settled", "referred", "no_issue", "duplicate", "other")
VISIT_OUTCOMES = ("met", "no_answer", "refused", "moved")


def upgrade() -> None:
    """Add ``incidents.resolution_code`` and create ``incident_action_keys`` (the application
    role gets its rights by default privileges, 0017)."""
    quoted = ", ".join(f"'{c}'" for c in RESOLUTION_CODES)
    op.add_column("incidents", sa.Column("resolution_code", sa.String(16)))
    op.create_check_constraint(
        "ck_incident_resolution_code", "incidents", f"resolution_code IN ({quoted})"
    )
    op.create_table(
        "incident_action_keys",
        sa.Column(
            "user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column(
            "incident_id",
            UUID(as_uuid=True),
            sa.ForeignKey("incidents.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_index("ix_incident_action_keys_incident", "incident_action_keys", ["incident_id"])
    op.create_table(
        "incident_photos",
        sa.Column(
            "id", UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()")
        ),
        sa.Column(
            "incident_id",
            UUID(as_uuid=True),
            sa.ForeignKey("incidents.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("storage_key", sa.String(200), nullable=False, unique=True),
        sa.Column("content_type", sa.String(32), nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("bytes", sa.Integer, nullable=False),
        sa.Column("thumbnail_bytes", sa.Integer, nullable=False),
        sa.Column("uploaded_by", sa.Integer, sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("request_key", sa.String(200)),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
    )
    op.create_index("ix_incident_photos_incident", "incident_photos", ["incident_id"])
    op.create_index(
        "ux_incident_photos_request_key",
        "incident_photos",
        ["uploaded_by", "request_key"],
        unique=True,
        postgresql_where=sa.text("request_key IS NOT NULL"),
    )
    outcomes = ", ".join(f"'{o}'" for o in VISIT_OUTCOMES)
    op.create_table(
        "household_visits",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column(
            "household_id",
            sa.BigInteger,
            sa.ForeignKey("households.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("visited_on", sa.Date, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("elderly_living_alone", sa.Boolean),
        sa.Column("needs_assistance", sa.Boolean),
        sa.Column("recorded_by", sa.Integer, sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("request_key", sa.String(200)),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(f"outcome IN ({outcomes})", name="ck_household_visit_outcome"),
    )
    op.create_index(
        "ix_household_visits_household", "household_visits", ["household_id", "visited_on"]
    )
    op.create_index(
        "ux_household_visits_request_key",
        "household_visits",
        ["recorded_by", "request_key"],
        unique=True,
        postgresql_where=sa.text("request_key IS NOT NULL"),
    )


def downgrade() -> None:
    """Drop the tables and the column."""
    op.drop_table("household_visits")
    op.drop_table("incident_photos")
    op.drop_table("incident_action_keys")
    op.drop_constraint("ck_incident_resolution_code", "incidents")
    op.drop_column("incidents", "resolution_code")
