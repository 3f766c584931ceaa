"""Access control: users bound to a role and an area, hashed API keys; an immutable audit log.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ROLES = ("admin", "dispatcher", "planner", "analyst", "grid_worker")


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        # Jurisdiction by area code, resolved against the version in force at request time,
        # so a user keeps their area across boundary versions that keep its code.
        sa.Column("area_code", sa.String(64)),
        sa.Column("responder_id", sa.Integer,
                  sa.ForeignKey("responders.id", ondelete="SET NULL")),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.CheckConstraint(f"role IN ({', '.join(repr(r) for r in ROLES)})",
                           name="ck_user_role"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False, unique=True),
        # SHA-256 of a 256-bit random secret: a slow password hash adds nothing for keys
        # that cannot be guessed, and keeps per-request verification cheap.
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("label", sa.String(200)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("last_used_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_api_keys_user", "api_keys", ["user_id"])
    # Audit rows are never changed; deleting is only for an explicit retention purge.
    op.execute(
        """
        CREATE FUNCTION audit_log_guard() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP = 'UPDATE' THEN
            RAISE EXCEPTION 'audit_log rows cannot be changed';
          END IF;
          IF coalesce(current_setting('geo.audit_purge', true), '') <> 'on' THEN
            RAISE EXCEPTION 'audit_log rows cannot be deleted (set geo.audit_purge for a purge)';
          END IF;
          RETURN OLD;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER audit_log_immutable BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION audit_log_guard()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS audit_log_immutable ON audit_log")
    op.execute("DROP FUNCTION IF EXISTS audit_log_guard()")
    op.drop_table("api_keys")
    op.drop_table("users")
