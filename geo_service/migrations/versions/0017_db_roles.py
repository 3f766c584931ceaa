"""Least-privilege database roles: grants for the application and purge roles (issue 13).

The role running migrations owns the schema. The application role (``geo_app``: API and CLI)
gets DML on the tables and nothing else: no DDL, no TRUNCATE, owns nothing, and on
``audit_log`` only INSERT and SELECT. Deleting audit rows needs the purge role
(``geo_purge``): the audit trigger now checks membership of that role instead of the
``geo.audit_purge`` setting, which any session could set. The only DDL at run time (a new
year's partition of ``incident_cum_year``) happens in a SECURITY DEFINER function owned by the
owner, with a fixed ``search_path``.

Roles are cluster-wide objects. The embedded cluster creates them (with passwords) before
migrating; on another server the migration creates them NOLOGIN when the migrating role may
create roles, else a DBA creates them first (docs/security.md says how).

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-29
"""

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

APP_ROLE = "geo_app"
PURGE_ROLE = "geo_purge"

CREATE_ROLES = """
DO $$
DECLARE
  role_name text;
  may_create boolean := (SELECT rolsuper OR rolcreaterole FROM pg_roles
                         WHERE rolname = current_user);
BEGIN
  FOREACH role_name IN ARRAY ARRAY['geo_app', 'geo_purge'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role_name) THEN
      IF NOT may_create THEN
        RAISE EXCEPTION 'role % does not exist and % may not create roles', role_name, current_user
          USING HINT = format('a DBA runs: CREATE ROLE %I LOGIN PASSWORD ''...''', role_name);
      END IF;
      EXECUTE format('CREATE ROLE %I NOLOGIN', role_name);
    END IF;
  END LOOP;
END $$
"""

# Database-level rights: only the owner and the roles named here may connect; TEMP is for the
# import staging tables. Skipped (with a notice) when the migrating role does not own the
# database, as on a managed server whose DBA keeps them.
DATABASE_GRANTS = """
DO $$
BEGIN
  IF pg_has_role(current_user, (SELECT datdba FROM pg_database
                                WHERE datname = current_database()), 'USAGE') THEN
    EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO geo_app', current_database());
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO geo_purge', current_database());
  ELSE
    RAISE NOTICE 'not the owner of database %: CONNECT/TEMPORARY left to its DBA',
      current_database();
  END IF;
END $$
"""

# DML on the migrating role's own tables and sequences in schema public; audit rows are
# insert-only, alembic_version (only migrations change it) and views are read-only, and the
# PostGIS catalogue is left as PostGIS grants it.
TABLE_GRANTS = """
DO $$
DECLARE obj record;
BEGIN
  FOR obj IN
    SELECT c.oid::regclass::text AS name, c.relkind
    FROM pg_class c
    WHERE c.relnamespace = 'public'::regnamespace
      AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
      AND c.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                      AND d.objid = c.oid AND d.deptype = 'e')
  LOOP
    IF obj.relkind = 'S' THEN
      EXECUTE format('GRANT USAGE, SELECT ON SEQUENCE %s TO geo_app', obj.name);
    ELSIF obj.name = 'audit_log' THEN
      EXECUTE format('GRANT SELECT, INSERT ON %s TO geo_app', obj.name);
    ELSIF obj.name = 'alembic_version' OR obj.relkind IN ('v', 'm') THEN
      EXECUTE format('GRANT SELECT ON %s TO geo_app', obj.name);
    ELSE
      EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO geo_app', obj.name);
    END IF;
  END LOOP;
END $$
"""

GUARD_BY_ROLE = """
CREATE OR REPLACE FUNCTION audit_log_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    RAISE EXCEPTION 'audit_log rows cannot be changed';
  END IF;
  IF TG_OP = 'TRUNCATE' THEN
    RAISE EXCEPTION 'audit_log cannot be truncated';
  END IF;
  -- the role, not a setting: any session may set a custom setting, only a DBA grants a role
  IF NOT pg_has_role(current_user, 'geo_purge', 'MEMBER') THEN
    RAISE EXCEPTION 'audit_log rows cannot be deleted except by the purge role (geo_purge)';
  END IF;
  RETURN OLD;
END $$
"""

GUARD_BY_SETTING = """
CREATE OR REPLACE FUNCTION audit_log_guard() RETURNS trigger LANGUAGE plpgsql AS $$
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


def upgrade() -> None:
    """Create missing roles, grant the application and purge roles their rights, guard the
    audit log by role, and run partition DDL as the owner."""
    op.execute(CREATE_ROLES)
    op.execute(DATABASE_GRANTS)
    # PostgreSQL 15 already keeps CREATE on public from PUBLIC; older servers do not.
    op.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    op.execute(f"GRANT USAGE ON SCHEMA public TO {APP_ROLE}, {PURGE_ROLE}")
    op.execute(TABLE_GRANTS)
    # the purge deletes old rows and records itself; it may touch nothing else
    op.execute(f"GRANT SELECT, INSERT, DELETE ON audit_log TO {PURGE_ROLE}")
    op.execute(f"GRANT USAGE ON SEQUENCE audit_log_id_seq TO {PURGE_ROLE}")
    # Tables later migrations (or the partition function) create are covered as well.
    op.execute(
        "ALTER DEFAULT PRIVILEGES IN SCHEMA public "
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {APP_ROLE}"
    )
    op.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {APP_ROLE}"
    )
    op.execute(GUARD_BY_ROLE)
    op.execute(
        "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_guard()"
    )
    # The incident triggers (run as the application role) call this to create a new year's
    # partition: the DDL runs as the function's owner, with a search_path nobody can redirect.
    op.execute(
        "ALTER FUNCTION incident_cum_year_cover(int, int) "
        "SECURITY DEFINER SET search_path = public, pg_temp"
    )
    op.execute("REVOKE EXECUTE ON FUNCTION incident_cum_year_cover(int, int) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION incident_cum_year_cover(int, int) TO {APP_ROLE}")


def downgrade() -> None:
    """Back to the setting-guarded audit log and the rights PostgreSQL grants by default."""
    op.execute("GRANT EXECUTE ON FUNCTION incident_cum_year_cover(int, int) TO PUBLIC")
    op.execute(
        "ALTER FUNCTION incident_cum_year_cover(int, int) SECURITY INVOKER RESET search_path"
    )
    op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
    op.execute(GUARD_BY_SETTING)
    op.execute(
        "ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE USAGE, SELECT ON SEQUENCES "
        f"FROM {APP_ROLE}"
    )
    op.execute(
        "ALTER DEFAULT PRIVILEGES IN SCHEMA public "
        f"REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM {APP_ROLE}"
    )
    op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {APP_ROLE}, {PURGE_ROLE}")
    op.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {APP_ROLE}, {PURGE_ROLE}")
    op.execute(f"REVOKE USAGE ON SCHEMA public FROM {APP_ROLE}, {PURGE_ROLE}")
    op.execute(
        "DO $$ BEGIN EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO PUBLIC', "
        "current_database()); END $$"
    )
