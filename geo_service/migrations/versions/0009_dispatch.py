"""Dispatch: the incident lifecycle (assigned responder, a timestamp per state, escalation
level, duplicate hint), response targets per priority, and a geography index on responder
positions for exact nearest-responder queries.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

STAMPS = ("dispatched_at", "accepted_at", "arrived_at", "resolved_at", "closed_at", "cancelled_at")
# The seeds' rapid-response tiers: priority 1 dispatched within 1 minute, 2 within 3, 3 within 5.
TARGETS = [(1, 60), (2, 180), (3, 300), (4, 3600)]


def upgrade() -> None:
    op.add_column(
        "incidents",
        sa.Column("responder_id", sa.Integer, sa.ForeignKey("responders.id", ondelete="SET NULL")),
    )
    for name in STAMPS:
        op.add_column("incidents", sa.Column(name, sa.DateTime(timezone=True)))
    op.add_column(
        "incidents",
        sa.Column("escalation_level", sa.SmallInteger, nullable=False, server_default="0"),
    )
    op.add_column("incidents", sa.Column("escalated_at", sa.DateTime(timezone=True)))
    op.add_column("incidents", sa.Column("possible_duplicate_of", pg.UUID(as_uuid=True)))
    op.create_check_constraint(
        "ck_incident_escalation", "incidents", "escalation_level BETWEEN 0 AND 3"
    )
    # Open incidents are few and read all the time (the dispatcher's map, escalation).
    op.execute(
        "CREATE INDEX ix_incidents_open ON incidents (reported_at) "
        "WHERE status IN ('reported', 'dispatched', 'accepted', 'on_scene')"
    )
    op.execute(
        "CREATE INDEX ix_incidents_open_category ON incidents USING gist (location) "
        "WHERE status IN ('reported', 'dispatched', 'accepted', 'on_scene')"
    )
    op.execute(
        "CREATE INDEX ix_responders_geography ON responders USING gist ((position::geography))"
    )
    op.create_index("ix_incidents_responder", "incidents", ["responder_id"])
    targets = op.create_table(
        "response_targets",
        sa.Column("priority", sa.SmallInteger, primary_key=True),
        sa.Column("dispatch_s", sa.Integer, nullable=False),
        sa.CheckConstraint("priority BETWEEN 1 AND 4", name="ck_target_priority"),
        sa.CheckConstraint("dispatch_s > 0", name="ck_target_positive"),
    )
    op.bulk_insert(targets, [{"priority": p, "dispatch_s": s} for p, s in TARGETS])


def downgrade() -> None:
    op.drop_table("response_targets")
    op.drop_index("ix_incidents_responder", "incidents")
    op.execute("DROP INDEX ix_responders_geography")
    op.execute("DROP INDEX ix_incidents_open_category")
    op.execute("DROP INDEX ix_incidents_open")
    op.drop_constraint("ck_incident_escalation", "incidents")
    for name in (*STAMPS, "responder_id", "escalation_level", "escalated_at", "possible_duplicate_of"):
        op.drop_column("incidents", name)
