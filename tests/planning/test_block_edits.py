"""A planner moves a street block of a draft to the grid next to it: the two polygons change
by exactly that block, the parent stays tiled, the edit is audited; bad moves are refused
with nothing written."""

from __future__ import annotations

import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from geo_service.demo.city import DemoCity
from geo_service.services.planning.proposals import ProposalRequest, propose
from tests.conftest import as_role, problem
from tests.planning.blocks import a_movable_block, draft_grids


@pytest.fixture(scope="module")
def draft(loaded_city: DemoCity, engine: Engine) -> tuple[int, str]:
    """A proposal's draft for the community with most grids."""
    grids = loaded_city.areas[loaded_city.areas.level == "grid"]
    community = str(grids.parent_code.value_counts().index[0])
    made = propose(engine, ProposalRequest(parent_codes=[community]), actor="test")
    yield made["version_id"], community
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM boundary_versions WHERE id = :v"), {"v": made["version_id"]})


def test_a_block_moves_to_the_neighbouring_grid(
    client: TestClient, engine: Engine, role_keys: dict, draft: tuple[int, str]
) -> None:
    version, parent = draft
    source, target, piece = a_movable_block(engine, version, parent)
    before = draft_grids(engine, version, parent)
    at = piece.representative_point()
    answer = client.post(
        f"/boundaries/versions/{version}/edits",
        json={"lon": at.x, "lat": at.y, "to_grid": target},
        headers=as_role(role_keys, "planner"),
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["moved"]["from"] == source and body["moved"]["to"] == target
    assert body["moved"]["kind"] == "block"
    after = draft_grids(engine, version, parent)
    # exactly that block changed hands (with any crumb of under 1e-10 deg², ~1 m², the cut
    # left at the grid's edge); the rest of the parent is as it was
    assert after[source].symmetric_difference(before[source].difference(piece)).area < 1e-10
    assert after[target].symmetric_difference(before[target].union(piece)).area < 1e-10
    assert {c for c in after if not after[c].equals(before[c])} == {source, target}
    assert shapely.get_num_geometries(after[source]) == 1
    assert {g["code"] for g in body["grids"]} == {source, target}
    report = client.get(f"/boundaries/versions/{version}/validation").json()
    assert report["valid"], report["summary"]
    with engine.connect() as conn:
        audited = conn.execute(
            text(
                "SELECT diff FROM audit_log WHERE action = 'edit' AND entity_id = :v "
                "ORDER BY id DESC LIMIT 1"
            ),
            {"v": str(version)},
        ).scalar_one()
    assert audited["from"] == source and audited["to"] == target


def test_bad_moves_are_refused_and_nothing_changes(
    client: TestClient, engine: Engine, role_keys: dict, draft: tuple[int, str]
) -> None:
    version, parent = draft
    source, target, piece = a_movable_block(engine, version, parent)
    at = piece.representative_point()
    grids = draft_grids(engine, version, parent)
    far = next(
        c
        for c, g in sorted(grids.items())
        if c not in (source, target) and g.distance(piece) > 1e-4
    )
    with engine.connect() as conn:
        in_force = conn.execute(
            text("SELECT id FROM boundary_versions WHERE status = 'published' ORDER BY id LIMIT 1")
        ).scalar_one()
    planner = as_role(role_keys, "planner")
    cases = [
        (version, {"lon": at.x, "lat": at.y, "to_grid": far}, planner, 422, "touch"),
        (version, {"lon": at.x, "lat": at.y, "to_grid": source}, planner, 422, "already"),
        (version, {"lon": at.x, "lat": at.y, "to_grid": "NO-SUCH"}, planner, 422, "no grid"),
        (version, {"lon": 0.0, "lat": 0.0, "to_grid": target}, planner, 422, "no grid"),
        (in_force, {"lon": at.x, "lat": at.y, "to_grid": target}, planner, 409, "draft"),
        (version, {"lon": at.x, "lat": at.y, "to_grid": target, "x": 1}, planner, 422, None),
        (version, {"lon": 500, "lat": at.y, "to_grid": target}, planner, 422, None),
        (
            version,
            {"lon": at.x, "lat": at.y, "to_grid": target},
            as_role(role_keys, "analyst"),
            403,
            None,
        ),
        (999_999, {"lon": at.x, "lat": at.y, "to_grid": target}, planner, 404, None),
    ]
    with engine.connect() as conn:
        audits = conn.execute(text("SELECT count(*) FROM audit_log")).scalar_one()
    for target_version, body, headers, status, words in cases:
        answer = client.post(
            f"/boundaries/versions/{target_version}/edits", json=body, headers=headers
        )
        assert answer.status_code == status, (body, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
        if words:
            assert words in problem(answer)["detail"], problem(answer)
    after = draft_grids(engine, version, parent)
    assert all(after[c].equals(g) for c, g in grids.items())
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_log")).scalar_one() == audits
