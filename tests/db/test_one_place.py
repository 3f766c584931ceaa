"""One place each: the audit writer, the vocabulary, the long SQL statements."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

import geo_service
from geo_service import vocabulary
from geo_service.db import models
from geo_service.db.sql import sql, sql_source
from geo_service.services.access.audit import list_audit, record_audit

PACKAGE = Path(geo_service.__file__).parent
MIGRATIONS = PACKAGE / "migrations" / "versions"


def _sources(*suffixes: str) -> list[Path]:
    return [
        p
        for suffix in suffixes
        for p in sorted(PACKAGE.rglob(f"*{suffix}"))
        if MIGRATIONS not in p.parents  # revisions keep frozen copies on purpose
    ]


def test_only_the_audit_module_writes_audit_rows() -> None:
    writer = PACKAGE / "services" / "access" / "audit.py"
    pattern = re.compile(r"INSERT\s+INTO\s+audit_log|(?<!class )AuditEntry\(", re.IGNORECASE)
    writers = [
        str(p.relative_to(PACKAGE))
        for p in _sources(".py", ".sql")
        if p != writer and pattern.search(p.read_text(encoding="utf-8"))
    ]
    assert writers == []


def test_open_incident_statuses_are_typed_only_in_the_vocabulary() -> None:
    # any two open statuses side by side as SQL literals: an IN list typed by hand
    pairs = [
        f"'{a}', '{b}'"
        for a in vocabulary.OPEN_INCIDENT_STATUSES
        for b in vocabulary.OPEN_INCIDENT_STATUSES
        if a != b
    ]
    typed = [
        str(p.relative_to(PACKAGE))
        for p in _sources(".py", ".sql")
        if p.name != "vocabulary.py"
        and any(pair in p.read_text(encoding="utf-8") for pair in pairs)
    ]
    assert typed == []


def test_models_reexport_the_vocabulary_unchanged() -> None:
    for name in ("AREA_LEVELS", "INCIDENT_STATUSES", "OPEN_INCIDENT_STATUSES", "ROLES"):
        assert getattr(models, name) is getattr(vocabulary, name)
    assert set(vocabulary.CLOSED_INCIDENT_STATUSES) == (
        set(vocabulary.INCIDENT_STATUSES) - set(vocabulary.OPEN_INCIDENT_STATUSES)
    )


def test_sql_in_refuses_what_is_not_a_vocabulary_word() -> None:
    assert vocabulary.sql_in("s", ("on_scene", "x-1")) == "s IN ('on_scene', 'x-1')"
    with pytest.raises(ValueError, match="vocabulary"):
        vocabulary.sql_in("s", ("a', 'b",))


def test_every_sql_resource_loads_with_bound_parameters_only() -> None:
    names = sorted(p.stem for p in (PACKAGE / "db" / "sql").glob("*.sql"))
    assert {"heatmap_by_area", "scope_jurisdiction", "incident_possible_duplicate"} <= set(names)
    for name in names:
        statement = sql(name)
        assert statement is sql(name)  # loaded once
        assert "{" not in sql_source(name), f"{name}.sql looks like a format template"
    assert sorted(sql("scope_jurisdiction").compile().params) == ["root"]


def test_sql_comments_name_no_parameters() -> None:
    # the duplicate check's header comment mentions :deg and friends; only the body binds
    assert "--" not in sql_source("incident_possible_duplicate")


@pytest.mark.parametrize("name", ["missing_statement", "../models/base", "Heatmap"])
def test_sql_refuses_unknown_or_unsafe_names(name: str) -> None:
    with pytest.raises((LookupError, ValueError)):
        sql(name)


def _entries(engine: Engine, action: str) -> list[dict]:
    with Session(engine) as session:
        return [e for e in list_audit(session, entity="probe")["data"] if e["action"] == action]


def test_record_audit_writes_in_the_callers_transaction(engine: Engine) -> None:
    with Session(engine) as session:
        record_audit(
            session,
            who="tests",
            action="on-session",
            entity="probe",
            entity_id="1",
            diff={"at": engine.dialect.name, "n": 1},
        )
        session.commit()
    with engine.begin() as conn:
        record_audit(conn, who="tests", action="on-connection", entity="probe", entity_id=None)
    with engine.connect() as conn:
        record_audit(conn, who="tests", action="rolled-back", entity="probe", entity_id="3")
        conn.rollback()

    (on_session,) = _entries(engine, "on-session")
    assert (on_session["who"], on_session["entity_id"]) == ("tests", "1")
    assert on_session["diff"] == {"at": "postgresql", "n": 1}
    (on_connection,) = _entries(engine, "on-connection")
    assert on_connection["entity_id"] is None and on_connection["diff"] == {}
    assert _entries(engine, "rolled-back") == []


def test_record_audit_writes_values_json_lacks_as_text(engine: Engine) -> None:
    import uuid
    from datetime import UTC, datetime

    ident = uuid.UUID(int=7)
    with engine.begin() as conn:
        record_audit(
            conn,
            who="tests",
            action="odd-values",
            entity="probe",
            entity_id=str(ident),
            diff={"id": ident, "at": datetime(2026, 1, 2, tzinfo=UTC)},
        )
        diff = conn.execute(
            text("SELECT diff FROM audit_log WHERE action = 'odd-values'")
        ).scalar_one()
    assert diff == {"id": str(ident), "at": "2026-01-02 00:00:00+00:00"}
