"""The embedded cluster's roles and their credentials (least privilege, issue 13).

The bootstrap superuser only creates the roles and the databases; migrations run as the owner
of the schema; the API and the CLI connect as the application role (DML, audit rows
insert-only); only the purge role may delete audit rows. Passwords live in the data
directory's ``credentials`` file (0600), one ``role password`` a line.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import psycopg
from psycopg import sql

# The cluster's bootstrap superuser: it only creates the roles below and the databases.
ROLE = "geo"
# Least privilege (issue 13): migrations run as the owner of the schema; the API and the CLI
# connect as the application role (DML, audit rows insert-only); only the purge role may delete
# audit rows. The names are fixed: migration 0017 grants to them and the audit trigger checks
# membership of PURGE_ROLE.
OWNER_ROLE = "geo_owner"
APP_ROLE = "geo_app"
PURGE_ROLE = "geo_purge"
RoleName = Literal["admin", "owner", "app", "purge"]
ROLES: dict[str, str] = {
    "admin": ROLE,
    "owner": OWNER_ROLE,
    "app": APP_ROLE,
    "purge": PURGE_ROLE,
}
# Extensions PostgreSQL lets only a superuser create (PostGIS is not "trusted").
SUPERUSER_EXTENSIONS = ("postgis", "pgcrypto")

# Hand every object of schema public that the superuser owns (tables, sequences not tied to a
# column, functions, types; extension members excepted) to the owner role. Run on every start:
# it is a few catalogue reads when there is nothing to do.
TRANSFER_OWNERSHIP = sql.SQL("""
DO $$
DECLARE
  owner text := {owner};
  obj record;
BEGIN
  FOR obj IN
    SELECT c.oid::regclass::text AS name, c.relkind
    FROM pg_class c
    WHERE c.relnamespace = 'public'::regnamespace
      AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
      AND pg_get_userbyid(c.relowner) <> owner
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                      AND d.objid = c.oid AND d.deptype = 'e')
      -- a serial/identity sequence follows its table
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                      AND d.objid = c.oid AND d.refclassid = 'pg_class'::regclass
                      AND d.deptype IN ('a', 'i') AND c.relkind = 'S')
    ORDER BY c.relkind = 'S'
  LOOP
    EXECUTE format('ALTER %s %s OWNER TO %I',
                   CASE obj.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
                        WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN TABLE'
                        ELSE 'TABLE' END,
                   obj.name, owner);
  END LOOP;
  FOR obj IN
    SELECT p.oid::regprocedure::text AS name, p.prokind
    FROM pg_proc p
    WHERE p.pronamespace = 'public'::regnamespace
      AND pg_get_userbyid(p.proowner) <> owner
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                      AND d.objid = p.oid AND d.deptype = 'e')
  LOOP
    EXECUTE format('ALTER %s %s OWNER TO %I',
                   CASE obj.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE'
                        ELSE 'FUNCTION' END, obj.name, owner);
  END LOOP;
  FOR obj IN
    SELECT t.oid::regtype::text AS name
    FROM pg_type t
    WHERE t.typnamespace = 'public'::regnamespace
      AND t.typtype IN ('e', 'd', 'r')
      AND pg_get_userbyid(t.typowner) <> owner
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass
                      AND d.objid = t.oid AND d.deptype = 'e')
  LOOP
    EXECUTE format('ALTER TYPE %s OWNER TO %I', obj.name, owner);
  END LOOP;
END $$
""")


def read_credentials(data_dir: Path) -> dict[str, str]:
    """Passwords by role name, as the credentials file keeps them ({} when there is none)."""
    path = data_dir / "credentials"
    if not path.exists():
        return {}
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        fields = line.split()
        if len(fields) == 1:  # the one bare line of a cluster made before the roles
            out[ROLE] = fields[0]
        elif len(fields) == 2:
            out[fields[0]] = fields[1]
    return out


def ensure_credentials(data_dir: Path) -> None:
    """Give every role a random password in the credentials file (kept, once made)."""
    known = read_credentials(data_dir)
    if all(name in known for name in ROLES.values()):
        return
    for name in ROLES.values():
        known.setdefault(name, secrets.token_urlsafe(24))
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "credentials"
    tmp = path.with_name("credentials.tmp")
    tmp.unlink(missing_ok=True)
    # created 0600 from the start: the passwords are never readable by others
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.writelines(f"{name} {pw}\n" for name, pw in known.items())
    os.replace(tmp, path)


def ensure_roles(conn: psycopg.Connection, password: Callable[[RoleName], str]) -> None:
    """Create the owner, application and purge roles, or reset their attributes and
    passwords to what the credentials file says (idempotent; ``conn`` as the superuser)."""
    keys: tuple[RoleName, ...] = ("owner", "app", "purge")
    for key in keys:
        name = ROLES[key]
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
        attributes = sql.SQL(
            " ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS "
            "PASSWORD {}"
        ).format(sql.Identifier(name), sql.Literal(password(key)))
        if not exists:
            try:
                conn.execute(sql.SQL("CREATE") + attributes)
                continue
            except psycopg.errors.DuplicateObject:  # another process made it just now
                pass
        conn.execute(sql.SQL("ALTER") + attributes)


def ensure_owned_database(server: psycopg.Connection, database: str) -> None:
    """Create ``database`` owned by the owner role, or hand an older one to it (``server``:
    the superuser on the maintenance database, autocommit)."""
    owner = server.execute(
        "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (database,)
    ).fetchone()
    if owner is None:
        try:
            server.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(database), sql.Identifier(OWNER_ROLE)
                )
            )
        except (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
            pass  # another process made it just now
    elif owner[0] != OWNER_ROLE:
        server.execute(
            sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                sql.Identifier(database), sql.Identifier(OWNER_ROLE)
            )
        )


def prepare_schema(db: psycopg.Connection) -> None:
    """Create the extensions only a superuser may, and give the owner role every object of
    schema public (``db``: the superuser on the database, autocommit)."""
    for extension in SUPERUSER_EXTENSIONS:
        db.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(extension)))
    # A cluster started before the roles existed: its tables belong to the superuser.
    db.execute(TRANSFER_OWNERSHIP.format(owner=sql.Literal(OWNER_ROLE)))
