"""Least privilege in the database (issue 13, item 6): the application's credentials cannot
tamper with the audit log, change the schema, or reach the host; only the purge role deletes
audit rows; and the API still works end to end as the application role.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql
from sqlalchemy import Engine, text

from geo_service.db.cluster import EmbeddedCluster
from geo_service.db.cluster_roles import APP_ROLE, OWNER_ROLE, PURGE_ROLE
from geo_service.db.cluster_tools import libpq_url
from geo_service.settings import DatabaseSettings
from tests.conftest import TEST_DATABASE, embedded_cluster, grid_point, role_url

THIS_YEAR = datetime.now(UTC).year

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("GEO_DATABASE_URL")),
    reason="an external server's roles are its DBA's: the embedded cluster sets them up",
)


def _conninfo(url: str) -> str:
    return libpq_url(url)


def _connect(role: str) -> psycopg.Connection:
    return psycopg.connect(_conninfo(role_url(TEST_DATABASE, role)))


@pytest.fixture
def app_conn(loaded_city) -> Iterator[psycopg.Connection]:  # noqa: ANN001
    """A raw connection with the application's own credentials (autocommit: each statement
    stands alone, as an attacker holding them would send it)."""
    conn = _connect("app")
    conn.autocommit = True
    yield conn
    conn.close()


def _audit_rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM audit_log")).scalar_one()


@pytest.fixture
def audited(engine: Engine) -> int:
    """An audit row of this test (the clean-up removes it as the purge role); the row count."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO audit_log (who, action, entity, entity_id, diff) "
                "VALUES ('tests', 'probe', 'test', '1', '{}'::jsonb)"
            )
        )
    return _audit_rows(engine)


@pytest.mark.parametrize(
    ("statements", "refusal"),
    [
        (["TRUNCATE audit_log"], psycopg.errors.InsufficientPrivilege),
        (["UPDATE audit_log SET who = 'nobody'"], psycopg.errors.InsufficientPrivilege),
        (["DELETE FROM audit_log"], psycopg.errors.InsufficientPrivilege),
        (
            ["SET geo.audit_purge = 'on'", "DELETE FROM audit_log"],
            psycopg.errors.InsufficientPrivilege,
        ),
        (
            ["ALTER TABLE audit_log DISABLE TRIGGER audit_log_immutable"],
            psycopg.errors.InsufficientPrivilege,
        ),
        (["ALTER TABLE audit_log DISABLE TRIGGER ALL"], psycopg.errors.InsufficientPrivilege),
        (["SET session_replication_role = replica"], psycopg.errors.InsufficientPrivilege),
        (["SET ROLE geo_purge"], psycopg.errors.InsufficientPrivilege),
        (["SET ROLE geo_owner"], psycopg.errors.InsufficientPrivilege),
        (["DROP TRIGGER audit_log_immutable ON audit_log"], psycopg.errors.InsufficientPrivilege),
        (["DROP TABLE audit_log"], psycopg.errors.InsufficientPrivilege),
        (["DROP TABLE incidents CASCADE"], psycopg.errors.InsufficientPrivilege),
        (["CREATE TABLE planted (i int)"], psycopg.errors.InsufficientPrivilege),
        (["CREATE SCHEMA planted"], psycopg.errors.InsufficientPrivilege),
        (
            ["CREATE FUNCTION public.now() RETURNS timestamptz LANGUAGE sql AS 'SELECT 1'"],
            psycopg.errors.InsufficientPrivilege,
        ),
        (["ALTER TABLE incidents ADD COLUMN planted int"], psycopg.errors.InsufficientPrivilege),
        (["COPY audit_log TO PROGRAM 'id > /tmp/geo-pwned'"], psycopg.errors.InsufficientPrivilege),
        (
            ["COPY (SELECT 1) TO PROGRAM 'touch /tmp/geo-pwned'"],
            psycopg.errors.InsufficientPrivilege,
        ),
        (["COPY audit_log TO '/tmp/geo-audit-copy'"], psycopg.errors.InsufficientPrivilege),
        (["SELECT pg_read_file('PG_VERSION')"], psycopg.errors.InsufficientPrivilege),
        (["CREATE EXTENSION IF NOT EXISTS dblink"], psycopg.errors.InsufficientPrivilege),
        (["UPDATE alembic_version SET version_num = '0001'"], psycopg.errors.InsufficientPrivilege),
        ([f"DROP TABLE incident_cum_year_y{THIS_YEAR}"], psycopg.errors.InsufficientPrivilege),
        (
            [f"ALTER FUNCTION incident_cum_year_cover(int, int) OWNER TO {APP_ROLE}"],
            psycopg.errors.InsufficientPrivilege,
        ),
    ],
    ids=lambda v: v[-1] if isinstance(v, list) else "",
)
def test_application_role_cannot_tamper(
    app_conn: psycopg.Connection,
    engine: Engine,
    audited: int,
    statements: list[str],
    refusal: type[Exception],
) -> None:
    """Each statement the attack ran as a superuser fails with the application's credentials,
    and the audit log keeps every row."""
    *setup, attack = statements
    for statement in setup:
        app_conn.execute(statement)
    with pytest.raises(refusal):
        app_conn.execute(attack)
    assert _audit_rows(engine) == audited
    assert not os.path.exists("/tmp/geo-pwned")


def test_application_role_is_no_superuser_and_owns_nothing(app_conn: psycopg.Connection) -> None:
    """The role has no cluster-wide power and is the owner of no object in the database."""
    attrs = app_conn.execute(
        "SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, "
        "current_user FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    assert attrs == (False, False, False, False, False, APP_ROLE)
    owned = app_conn.execute(
        """
        SELECT (SELECT count(*) FROM pg_class WHERE relowner = r.oid)
             + (SELECT count(*) FROM pg_proc WHERE proowner = r.oid)
             + (SELECT count(*) FROM pg_type WHERE typowner = r.oid)
             + (SELECT count(*) FROM pg_namespace WHERE nspowner = r.oid)
             + (SELECT count(*) FROM pg_database WHERE datdba = r.oid)
        FROM pg_roles r WHERE r.rolname = current_user
        """
    ).fetchone()
    assert owned == (0,)
    memberships = app_conn.execute(
        "SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member "
        "WHERE r.rolname = current_user"
    ).fetchone()
    assert memberships == (0,)


def test_application_role_refreshes_area_statistics_only_through_the_owner(
    app_conn: psycopg.Connection,
) -> None:
    """Found by a new user: publishing's ``ANALYZE areas`` was skipped under this role (only
    the owner may analyze), so a fresh import's joins ran 38.6 s. ``analyze_areas()``
    (migration 0031) runs it as the owner; the role still cannot analyze by itself."""
    before = app_conn.execute(
        "SELECT coalesce(last_analyze, 'epoch') FROM pg_stat_user_tables WHERE relname = 'areas'"
    ).fetchone()
    app_conn.execute("SELECT analyze_areas()")
    after = app_conn.execute(
        "SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'areas'"
    ).fetchone()
    assert after[0] is not None and after[0] >= before[0]
    notices: list[str] = []
    app_conn.add_notice_handler(lambda n: notices.append(n.message_primary))
    app_conn.execute("ANALYZE areas")  # a warning, and nothing done
    assert any("only table or database owner can analyze" in n for n in notices), notices


def test_application_role_may_insert_and_read_audit_rows_only(
    app_conn: psycopg.Connection,
) -> None:
    """On audit_log the application holds INSERT and SELECT, nothing else; on the other
    tables no TRUNCATE, REFERENCES or TRIGGER."""
    privileges = {
        p: app_conn.execute("SELECT has_table_privilege('audit_log', %s)", (p,)).fetchone()[0]
        for p in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
    }
    assert privileges == {
        "SELECT": True,
        "INSERT": True,
        "UPDATE": False,
        "DELETE": False,
        "TRUNCATE": False,
        "REFERENCES": False,
        "TRIGGER": False,
    }
    (beyond_dml,) = app_conn.execute(
        """
        SELECT count(*) FROM pg_class c
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
          AND (has_table_privilege(c.oid, 'TRUNCATE') OR has_table_privilege(c.oid, 'TRIGGER')
               OR has_table_privilege(c.oid, 'REFERENCES'))
        """
    ).fetchone()
    assert beyond_dml == 0


def test_owner_role_cannot_truncate_or_delete_audit_rows_either(
    engine: Engine, audited: int
) -> None:
    """The trigger refuses the schema's owner too: deleting needs the purge role."""
    from sqlalchemy.exc import DBAPIError

    with engine.connect() as conn:
        assert conn.execute(text("SELECT current_user")).scalar_one() == OWNER_ROLE
    for statement in ("TRUNCATE audit_log", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="audit_log"), engine.begin() as conn:
            conn.execute(text("SET LOCAL geo.audit_purge = 'on'"))
            conn.execute(text(statement))
    assert _audit_rows(engine) == audited


def test_purge_role_deletes_old_audit_rows(engine: Engine, purge_engine: Engine) -> None:
    """Retention: the purge role deletes rows older than a cut-off, and nothing newer; it may
    not change or truncate the log, nor touch another table."""
    from sqlalchemy.exc import DBAPIError

    old_at = datetime.now(UTC) - timedelta(days=800)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO audit_log (who, at, action, entity, entity_id, diff) VALUES "
                "('tests', :at, 'probe-old', 'test', '1', '{}'::jsonb), "
                "('tests', now(), 'probe-new', 'test', '2', '{}'::jsonb)"
            ),
            {"at": old_at},
        )
    cut_off = datetime.now(UTC) - timedelta(days=730)
    with purge_engine.begin() as conn:
        assert conn.execute(text("SELECT current_user")).scalar_one() == PURGE_ROLE
        deleted = conn.execute(
            text("DELETE FROM audit_log WHERE at < :cut AND who = 'tests'"), {"cut": cut_off}
        ).rowcount
    assert deleted == 1
    with engine.connect() as conn:
        left = conn.execute(
            text("SELECT action FROM audit_log WHERE action LIKE 'probe-%' ORDER BY action")
        ).scalars()
        assert list(left) == ["probe-new"]
    for statement in (
        "TRUNCATE audit_log",
        "UPDATE audit_log SET who = 'x'",
        "INSERT INTO incidents (category) VALUES ('x')",
        "DELETE FROM incidents",
    ):
        with pytest.raises(DBAPIError, match="permission denied"), purge_engine.begin() as conn:
            conn.execute(text(statement))


def test_purge_audit_command_deletes_old_rows_as_the_purge_role_and_records_itself(
    engine: Engine,
    loaded_city,
    monkeypatch: pytest.MonkeyPatch,  # noqa: ANN001
) -> None:
    """`geo-service db purge-audit` removes rows past the retention and logs the purge."""
    from typer.testing import CliRunner

    from geo_service.cli.main import app

    cluster = embedded_cluster()
    assert cluster is not None
    monkeypatch.delenv("GEO_DATABASE_URL", raising=False)
    monkeypatch.setenv("GEO_DATA_DIR", str(cluster.data_dir))
    monkeypatch.setenv("GEO_DATABASE_NAME", TEST_DATABASE)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO audit_log (who, at, action, entity, entity_id) VALUES "
                "('tests', now() - interval '800 days', 'probe-old', 'test', '1')"
            )
        )
    result = CliRunner().invoke(app, ["db", "purge-audit", "--older-than-days", "730", "--yes"])
    assert result.exit_code == 0, result.output
    with engine.connect() as conn:
        left = conn.execute(
            text("SELECT count(*) FROM audit_log WHERE action = 'probe-old'")
        ).scalar_one()
        purge = conn.execute(
            text("SELECT who, diff FROM audit_log WHERE action = 'purge' ORDER BY id DESC")
        ).first()
    assert left == 0
    assert purge is not None and purge.who == "cli (retention purge)"
    assert purge.diff["deleted"] >= 1
    too_short = CliRunner().invoke(app, ["db", "purge-audit", "--older-than-days", "1"])
    assert too_short.exit_code == 2


def test_api_works_end_to_end_as_the_application_role(
    client: TestClient, engine: Engine, loaded_city
) -> None:  # noqa: ANN001
    """The app under test logs in as geo_app, and a write (an incident, with its rollups,
    cumulative partitions and audit row) and reads all succeed."""
    app_engine = client.app.state.engine  # type: ignore[attr-defined]
    with app_engine.connect() as conn:
        assert conn.execute(text("SELECT current_user")).scalar_one() == APP_ROLE
    lon, lat, code = grid_point(loaded_city)
    created = client.post(
        "/incidents",
        json={
            "category": "sanitation",
            "priority": 3,
            "description": "db roles end to end",
            "location": {"type": "Point", "coordinates": [lon, lat]},
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["grid"]["code"] == code
    with engine.connect() as conn:
        audit = conn.execute(
            text("SELECT who FROM audit_log WHERE entity = 'incident' AND entity_id = :i"),
            {"i": str(created.json()["id"])},
        ).scalar_one()
    assert audit
    listed = client.get("/incidents", params={"limit": 5})
    assert listed.status_code == 200, listed.text
    assert client.get("/audit").status_code == 200
    health = client.get("/health").json()
    assert health["database"] == "ok"


def test_new_year_partition_is_made_by_the_owner_for_the_application(
    app_conn: psycopg.Connection, engine: Engine
) -> None:
    """The one piece of DDL at run time runs as the function's owner: the application role
    makes a far year's partition of the cumulative arrays without owning it."""
    year = 2999
    try:
        app_conn.execute("SELECT incident_cum_year_cover(%s, %s)", (year, year))
        with engine.connect() as conn:
            owner = conn.execute(
                text("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = :n"),
                {"n": f"incident_cum_year_y{year}"},
            ).scalar_one()
        assert owner == OWNER_ROLE
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP TABLE IF EXISTS incident_cum_year_y{year}"))


def test_credentials_of_an_older_cluster_keep_its_password_and_gain_the_roles(
    tmp_path: Path,
) -> None:
    """A credentials file of one bare line (the superuser's) gains a password per role, keeps
    the superuser's, and stays readable by its owner only."""
    data_dir = tmp_path / ".geo-service"
    data_dir.mkdir()
    (data_dir / "credentials").write_text("old-superuser-secret\n")
    os.chmod(data_dir / "credentials", 0o600)
    cluster = EmbeddedCluster(data_dir, log=lambda m: None)
    cluster.ensure_credentials()
    assert cluster.password("admin") == "old-superuser-secret"
    passwords = {role: cluster.password(role) for role in ("owner", "app", "purge")}
    assert len(set(passwords.values())) == 3 and all(len(p) >= 32 for p in passwords.values())
    assert stat.S_IMODE((data_dir / "credentials").stat().st_mode) == 0o600
    cluster.ensure_credentials()  # kept, once made
    assert {role: cluster.password(role) for role in passwords} == passwords


def test_database_made_before_the_roles_is_brought_under_them_by_migrate(
    database_url: str,
) -> None:
    """A database an older geo-service made (the superuser owns every table, migrated to
    0013) is handed to the owner role by `migrate`, and the application role then works in
    it with its narrow rights."""
    from alembic import command

    from geo_service.db.migrate import alembic_config, migrate_database

    cluster = embedded_cluster()
    assert cluster is not None
    name = f"{TEST_DATABASE}_legacy"[:63]
    cluster.drop_database(name)
    with psycopg.connect(_conninfo(cluster.url("postgres", role="admin")), autocommit=True) as c:
        c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        command.upgrade(alembic_config(cluster.url(name, role="admin")), "0013")
        migrate_database(DatabaseSettings(data_dir=cluster.data_dir, database_name=name))
        with psycopg.connect(_conninfo(cluster.url(name, role="app")), autocommit=True) as app:
            not_owned = app.execute(
                """
                SELECT count(*) FROM pg_class c
                WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'S')
                  AND pg_get_userbyid(c.relowner) <> %s
                  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid
                                  AND d.deptype = 'e')
                """,
                (OWNER_ROLE,),
            ).fetchone()
            assert not_owned == (0,)
            app.execute(
                "INSERT INTO audit_log (who, action, entity, entity_id) "
                "VALUES ('tests', 'probe', 'test', '1')"
            )
            assert app.execute("SELECT count(*) FROM audit_log").fetchone() == (1,)
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                app.execute("TRUNCATE audit_log")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                app.execute("CREATE TABLE planted (i int)")
    finally:
        cluster.drop_database(name)
