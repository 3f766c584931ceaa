"""Initial schema: boundary versions, areas, categories, incidents, households, rental units,
responders, audit log; the grid_at() and h3_parent() SQL functions; the demo taxonomy.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

import geoalchemy2
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _geom(kind: str) -> geoalchemy2.Geometry:
    # Spatial indexes are created explicitly below, so they are visible in this file.
    return geoalchemy2.Geometry(kind, srid=4326, spatial_index=False)


def _check_in(column: str, values: tuple[str, ...], name: str) -> sa.CheckConstraint:
    return sa.CheckConstraint(f"{column} IN ({', '.join(repr(v) for v in values)})", name=name)


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.execute("CREATE EXTENSION IF NOT EXISTS pgcrypto")

    op.create_table(
        "boundary_versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="draft"),
        sa.Column("effective_from", sa.DateTime(timezone=True)),
        sa.Column("effective_to", sa.DateTime(timezone=True)),
        sa.Column("notes", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        _check_in("status", ("draft", "published", "retired"), "ck_version_status"),
    )

    op.create_table(
        "areas",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("version_id", sa.Integer,
                  sa.ForeignKey("boundary_versions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("parent_id", sa.Integer, sa.ForeignKey("areas.id", ondelete="CASCADE")),
        sa.Column("geom", _geom("MULTIPOLYGON"), nullable=False),
        sa.Column("area_m2", sa.Double, nullable=False),
        sa.Column("properties", pg.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.UniqueConstraint("version_id", "code", name="uq_area_version_code"),
        _check_in("level", ("district", "street", "community", "grid"), "ck_area_level"),
        sa.CheckConstraint("ST_IsValid(geom)", name="ck_area_geom_valid"),
    )
    op.create_index("idx_areas_geom", "areas", ["geom"], postgresql_using="gist")
    op.create_index("ix_areas_version_level", "areas", ["version_id", "level"])
    op.create_index("ix_areas_parent", "areas", ["parent_id"])

    categories = op.create_table(
        "categories",
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("group", sa.String(64), nullable=False),
        sa.Column("default_priority", sa.SmallInteger, nullable=False),
        sa.Column("handling_effort_min", sa.Integer, nullable=False),
        sa.Column("response_target_s", sa.Integer),
        sa.Column("resolution_target_min", sa.Integer),
        sa.CheckConstraint("default_priority BETWEEN 1 AND 4", name="ck_category_priority"),
    )
    # The demo taxonomy; real deployments import their own next to it.
    op.bulk_insert(
        categories,
        [
            {"code": "disputes", "name": "Neighbour and family disputes", "group": "mediation",
             "default_priority": 3, "handling_effort_min": 90, "response_target_s": None,
             "resolution_target_min": 4320},
            {"code": "public_order", "name": "Public order and noise", "group": "order",
             "default_priority": 2, "handling_effort_min": 45, "response_target_s": None,
             "resolution_target_min": 240},
            {"code": "safety_hazard", "name": "Safety hazards (fire, gas, structures)",
             "group": "safety", "default_priority": 1, "handling_effort_min": 60,
             "response_target_s": None, "resolution_target_min": 120},
            {"code": "sanitation", "name": "Sanitation and waste", "group": "environment",
             "default_priority": 4, "handling_effort_min": 30, "response_target_s": None,
             "resolution_target_min": 1440},
            {"code": "facilities", "name": "Public facilities and repairs", "group": "environment",
             "default_priority": 4, "handling_effort_min": 40, "response_target_s": None,
             "resolution_target_min": 4320},
            {"code": "traffic", "name": "Traffic and parking", "group": "order",
             "default_priority": 3, "handling_effort_min": 25, "response_target_s": None,
             "resolution_target_min": 240},
            {"code": "social_assistance", "name": "Social assistance and welfare checks",
             "group": "welfare", "default_priority": 2, "handling_effort_min": 75,
             "response_target_s": None, "resolution_target_min": 1440},
        ],
    )

    op.create_table(
        "incidents",
        sa.Column("id", pg.UUID(as_uuid=True), primary_key=True,
                  server_default=sa.text("gen_random_uuid()")),
        sa.Column("idempotency_key", sa.String(200), unique=True),
        sa.Column("category", sa.String(64), sa.ForeignKey("categories.code"), nullable=False),
        sa.Column("priority", sa.SmallInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="reported"),
        sa.Column("description", sa.Text),
        sa.Column("source", sa.String(16), nullable=False, server_default="citizen"),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("location", _geom("POINT"), nullable=False),
        sa.Column("h3", sa.BigInteger, nullable=False),
        sa.Column("grid_id", sa.Integer, sa.ForeignKey("areas.id", ondelete="SET NULL")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.CheckConstraint("priority BETWEEN 1 AND 4", name="ck_incident_priority"),
        _check_in("status", ("reported", "dispatched", "accepted", "on_scene", "resolved",
                             "closed", "cancelled"), "ck_incident_status"),
        _check_in("source", ("citizen", "grid_worker", "hotline", "sensor", "import"),
                  "ck_incident_source"),
    )
    op.create_index("idx_incidents_location", "incidents", ["location"], postgresql_using="gist")
    op.create_index("ix_incidents_reported_at", "incidents", ["reported_at"])
    op.create_index("ix_incidents_grid_reported", "incidents", ["grid_id", "reported_at"])
    op.create_index("ix_incidents_h3", "incidents", ["h3"])
    op.create_index("ix_incidents_category_reported", "incidents", ["category", "reported_at"])

    op.create_table(
        "households",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("location", _geom("POINT"), nullable=False),
        sa.Column("household_size", sa.SmallInteger, nullable=False),
        sa.Column("grid_id", sa.Integer, sa.ForeignKey("areas.id", ondelete="SET NULL")),
        sa.Column("h3", sa.BigInteger, nullable=False),
        sa.Column("elderly_living_alone", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("needs_assistance", sa.Boolean, nullable=False, server_default="false"),
        sa.CheckConstraint("household_size BETWEEN 1 AND 50", name="ck_household_size"),
    )
    op.create_index("idx_households_location", "households", ["location"],
                    postgresql_using="gist")
    op.create_index("ix_households_grid", "households", ["grid_id"])

    op.create_table(
        "rental_units",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("location", _geom("POINT"), nullable=False),
        sa.Column("unit_count", sa.Integer, nullable=False),
        sa.Column("occupants", sa.Integer, nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("landlord_ref", sa.String(64)),
        sa.Column("grid_id", sa.Integer, sa.ForeignKey("areas.id", ondelete="SET NULL")),
        sa.Column("h3", sa.BigInteger, nullable=False),
        _check_in("status", ("registered", "expired", "unregistered"), "ck_rental_status"),
        sa.CheckConstraint("unit_count >= 1", name="ck_rental_unit_count"),
        sa.CheckConstraint("occupants >= 0", name="ck_rental_occupants"),
    )
    op.create_index("idx_rental_units_location", "rental_units", ["location"],
                    postgresql_using="gist")
    op.create_index("ix_rental_units_grid", "rental_units", ["grid_id"])

    op.create_table(
        "responders",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("callsign", sa.String(64), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("home_grid_id", sa.Integer, sa.ForeignKey("areas.id", ondelete="SET NULL")),
        sa.Column("status", sa.String(16), nullable=False, server_default="available"),
        sa.Column("position", _geom("POINT")),
        sa.Column("position_at", sa.DateTime(timezone=True)),
        sa.Column("skills", pg.ARRAY(sa.Text), nullable=False, server_default=sa.text("'{}'")),
        _check_in("kind", ("grid_worker", "patrol", "mediator", "fire", "medical"),
                  "ck_responder_kind"),
        _check_in("status", ("available", "busy", "off_duty"), "ck_responder_status"),
    )
    op.create_index("idx_responders_position", "responders", ["position"],
                    postgresql_using="gist")

    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("who", sa.String(200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("entity_id", sa.String(64)),
        sa.Column("diff", pg.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    )
    op.create_index("ix_audit_entity", "audit_log", ["entity", "entity_id"])
    op.create_index("ix_audit_at", "audit_log", ["at"])

    # The grid of the boundary version in force at a moment. Boundary points go to the lowest
    # id, so every caller (API, bulk load, re-attribution) agrees on ties.
    op.execute(
        """
        CREATE FUNCTION grid_at(p geometry, ts timestamptz) RETURNS integer
        LANGUAGE sql STABLE PARALLEL SAFE AS $$
          SELECT a.id
          FROM areas a JOIN boundary_versions v ON v.id = a.version_id
          WHERE a.level = 'grid'
            AND v.status IN ('published', 'retired')
            AND v.effective_from <= ts
            AND (v.effective_to IS NULL OR ts < v.effective_to)
            AND ST_Intersects(a.geom, p)
          ORDER BY a.id
          LIMIT 1
        $$
        """
    )
    # The H3 parent of a cell stored as bigint: set the resolution field (bits 52-55) and fill
    # the digits below the target resolution with 7 (0b111), as the H3 spec defines.
    op.execute(
        """
        CREATE FUNCTION h3_parent(cell bigint, res integer) RETURNS bigint
        LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
          SELECT ((cell & ~(15::bigint << 52)) | (res::bigint << 52))
                 | ((1::bigint << (3 * (15 - res))) - 1)
        $$
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS h3_parent(bigint, integer)")
    op.execute("DROP FUNCTION IF EXISTS grid_at(geometry, timestamptz)")
    for table in ("audit_log", "responders", "rental_units", "households", "incidents",
                  "categories", "areas", "boundary_versions"):
        op.drop_table(table)
