"""``DELETE /boundaries/versions/{id}`` (issue 18): a draft nobody will publish goes, with its
areas, audited; only drafts, only by boundary writers (a user bound to an area: only their own
proposals); every refusal is problem details and writes nothing."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from geo_service.api.schemas.boundaries import DeletedVersionPublic
from geo_service.demo.city import DemoCity
from geo_service.services.access.audit import record_audit
from tests.boundaries.drafts import new_draft
from tests.conftest import as_role, bound_user, problem, version_in_force_id


def _draft(
    engine: Engine, name: str, *, proposed_by: str | None = None, only: str | None = None
) -> int:
    """A draft copying every area of the version in force (``only``: that district and what
    lies under it), with a ``propose`` audit row naming ``proposed_by`` as a proposal leaves."""
    version = version_in_force_id(engine)
    with engine.begin() as conn:
        draft = new_draft(conn, version, name, only=only)
        if proposed_by is not None:
            record_audit(
                conn,
                who=proposed_by,
                action="propose",
                entity="boundary_version",
                entity_id=str(draft),
                diff={"request": {}},
            )
    return int(draft)


def _counts(engine: Engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT (SELECT count(*) FROM boundary_versions), (SELECT count(*) FROM areas), "
                "(SELECT count(*) FROM audit_log)"
            )
        ).one()


def _areas_of(engine: Engine, version: int) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT level, count(*) FROM areas WHERE version_id = :v GROUP BY level"),
            {"v": version},
        ).all()
    return {str(level): int(n) for level, n in rows}


def test_a_planner_deletes_a_draft_with_its_areas_audited(
    client: TestClient, engine: Engine, role_keys: dict, loaded_city: DemoCity
) -> None:
    draft = _draft(engine, "left behind")
    areas = _areas_of(engine, draft)
    assert areas["grid"] == int((loaded_city.areas.level == "grid").sum())
    planner = as_role(role_keys, "planner")
    answer = client.delete(f"/boundaries/versions/{draft}", headers=planner)
    assert answer.status_code == 200, answer.text
    body = DeletedVersionPublic.model_validate(answer.json())
    assert body.model_dump() == {
        "version_id": draft,
        "name": "left behind",
        "status": "deleted",
        "areas": areas,
    }
    assert _areas_of(engine, draft) == {}
    listed = client.get("/boundaries/versions", headers=planner).json()["data"]
    assert draft not in {v["id"] for v in listed}
    with engine.connect() as conn:
        audited = conn.execute(
            text(
                "SELECT who, diff FROM audit_log WHERE action = 'delete' "
                "AND entity = 'boundary_version' AND entity_id = :v"
            ),
            {"v": str(draft)},
        ).one()
    assert audited.who == "test-planner (planner)"
    assert audited.diff == {"name": "left behind", "areas": areas}
    # the version in force and its areas are untouched
    assert _areas_of(engine, version_in_force_id(engine))["grid"] == areas["grid"]
    again = client.delete(f"/boundaries/versions/{draft}", headers=planner)
    assert problem(again)["status"] == 404
    assert problem(again)["detail"] == f"boundary version {draft} does not exist"


def test_only_drafts_are_deleted_and_refusals_write_nothing(
    client: TestClient, engine: Engine, role_keys: dict, loaded_city: DemoCity
) -> None:
    in_force = version_in_force_id(engine)
    scheduled = _draft(engine, "scheduled")
    retired = _draft(engine, "retired")
    draft = _draft(engine, "a draft")
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE boundary_versions SET status = 'scheduled', effective_from = :t "
                "WHERE id = :v"
            ),
            {"v": scheduled, "t": datetime(2199, 1, 1, tzinfo=UTC)},
        )
        conn.execute(
            text(
                "UPDATE boundary_versions SET status = 'retired', effective_from = :a, "
                "effective_to = :b WHERE id = :v"
            ),
            {
                "v": retired,
                "a": datetime(1990, 1, 1, tzinfo=UTC),
                "b": datetime(1990, 1, 2, tzinfo=UTC),
            },
        )
    before = _counts(engine)
    planner = as_role(role_keys, "planner")
    for version, headers, status, words in (
        (in_force, planner, 409, "is published: only drafts are deleted"),
        (scheduled, planner, 409, "is scheduled"),
        (retired, planner, 409, "is retired"),
        (2_000_000_000, planner, 404, "does not exist"),
        (draft, as_role(role_keys, "analyst"), 403, "boundaries:write"),
        (draft, as_role(role_keys, "grid_worker"), 403, "boundaries:write"),
        (draft, as_role(role_keys, "dispatcher"), 403, "boundaries:write"),
        (0, planner, 422, None),
        ("draft", planner, 422, None),
        (2**31, planner, 422, None),
    ):
        answer = client.delete(f"/boundaries/versions/{version}", headers=headers)
        body = problem(answer)
        assert body["status"] == status, (version, answer.text)
        if words:
            assert words in body["detail"], body
    unauthenticated = client.delete(f"/boundaries/versions/{draft}", headers={"X-API-Key": ""})
    assert problem(unauthenticated)["status"] == 401
    assert _counts(engine) == before
    assert _areas_of(engine, draft)["grid"] > 0


def test_a_user_bound_to_an_area_deletes_only_their_own_proposals(
    client: TestClient, engine: Engine, loaded_city: DemoCity
) -> None:
    districts = sorted(loaded_city.areas.code[loaded_city.areas.level == "district"])
    headers = bound_user(engine, "planner", districts[0])
    actor = f"planner@{districts[0]} (planner)"
    mine = _draft(engine, "mine", proposed_by=actor)
    theirs = _draft(engine, "theirs", proposed_by="test-planner (planner)")
    imported = _draft(engine, "an import")
    elsewhere = _draft(engine, "elsewhere", proposed_by=actor, only=districts[1])
    before = _counts(engine)
    for version, status in ((theirs, 403), (imported, 403), (elsewhere, 404)):
        answer = client.delete(f"/boundaries/versions/{version}", headers=headers)
        assert problem(answer)["status"] == status, (version, answer.text)
    assert problem(client.delete(f"/boundaries/versions/{elsewhere}", headers=headers))[
        "detail"
    ] == (f"boundary version {elsewhere} does not exist")
    assert _counts(engine) == before
    done = client.delete(f"/boundaries/versions/{mine}", headers=headers)
    assert done.status_code == 200, done.text
    assert done.json()["version_id"] == mine and _areas_of(engine, mine) == {}
    # a planner bound to no area deletes anyone's draft
    assert client.delete(f"/boundaries/versions/{theirs}").status_code == 200


def test_a_delete_waits_for_a_write_holding_the_version_and_sees_what_it_left(
    client: TestClient, engine: Engine, role_keys: dict, loaded_city: DemoCity
) -> None:
    """The version's row is locked for the delete's whole transaction: a delete arriving while
    another transaction changes the draft (a publish, an edit) waits for it and answers from
    what it committed, never from what it read before."""
    draft = _draft(engine, "in use")
    planner = as_role(role_keys, "planner")
    with ThreadPoolExecutor(1) as pool, engine.connect() as holder:
        with holder.begin():
            holder.execute(
                text("SELECT 1 FROM boundary_versions WHERE id = :v FOR UPDATE"), {"v": draft}
            )
            holder.execute(
                text(
                    "UPDATE boundary_versions SET status = 'retired', effective_from = :a, "
                    "effective_to = :b WHERE id = :v"
                ),
                {
                    "v": draft,
                    "a": datetime(1990, 1, 1, tzinfo=UTC),
                    "b": datetime(1990, 1, 2, tzinfo=UTC),
                },
            )
            waiting = pool.submit(client.delete, f"/boundaries/versions/{draft}", headers=planner)
            time.sleep(1.0)
            assert not waiting.done()  # held by the other transaction
        answer = waiting.result(timeout=30)
    assert problem(answer)["status"] == 409 and "is retired" in answer.json()["detail"]
    assert _areas_of(engine, draft)["grid"] > 0
