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
from tests.conftest import as_role, problem, version_in_force_id
from tests.planning.blocks import (
    a_movable_block,
    continues_by_area,
    draft_grids,
    street_blocks_of,
)


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
    today = version_in_force_id(engine)
    assert {g["code"]: g["continues"] for g in body["grids"]} == continues_by_area(
        engine, version, today, [source, target]
    )
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


def _touch(a: shapely.Geometry, b: shapely.Geometry) -> bool:
    return a.boundary.intersection(b.boundary).length > 1e-5


def _one_piece(geom: shapely.Geometry) -> bool:
    return sum(p.area > 1e-10 for p in shapely.get_parts(shapely.make_valid(geom))) == 1


def _grown(pieces: list, start: list, rest: shapely.Geometry, below: float) -> tuple[list, list]:
    """Pieces added one by one, each touching what is taken, while their area stays under
    ``below`` and what is left of ``rest`` stays in one piece; and the touching pieces left."""
    taken: list = list(start)
    grew = True
    while grew:
        grew = False
        for piece in sorted(pieces, key=lambda p: p.area):
            if any(piece.equals(t) for t in taken) or not any(_touch(piece, t) for t in taken):
                continue
            union = shapely.union_all(taken + [piece])
            if union.area < below and _one_piece(rest.difference(union)):
                taken.append(piece)
                grew = True
    union = shapely.union_all(taken)
    edge = [p for p in pieces if not any(p.equals(t) for t in taken) and _touch(p, union)]
    return taken, edge


def _a_draft_an_edit_tips(engine: Engine) -> dict:
    """A draft where one street block moved tips which grid of today a grid continues:
    today's grids A and a larger neighbour Z (same parent) become ``g`` (just over half of
    A), ``h`` (just under half of A, and more of Z than of A but under half of Z) and ``z``
    (the rest of Z); moving the block ``piece`` of g next to h gives h more than half of A.
    Shares are measured in degrees² with a margin of 0.2% of A (the UTM count differs by
    far less over a few km)."""
    today = version_in_force_id(engine)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT g.code, p.code AS parent, ST_AsBinary(g.geom), ST_AsBinary(p.geom) "
                "FROM areas g JOIN areas p ON p.id = g.parent_id "
                "WHERE g.version_id = :v AND g.level = 'grid' ORDER BY g.id"
            ),
            {"v": today},
        ).all()
        grids = [
            (r[0], r[1], shapely.from_wkb(bytes(r[2])), shapely.from_wkb(bytes(r[3]))) for r in rows
        ]
        for code_a, parent, a, outline in grids:
            for code_z, parent_z, z, _ in grids:
                if parent_z != parent or z.area < 3 * a.area or not _touch(a, z):
                    continue
                blocks = street_blocks_of(conn, outline)

                def parts(grid: shapely.Geometry, blocks=blocks) -> list:  # noqa: ANN001
                    return [
                        p
                        for b in blocks
                        for p in shapely.get_parts(shapely.make_valid(b.intersection(grid)))
                        if p.geom_type == "Polygon" and p.area > 1e-9
                    ]

                in_a, in_z = parts(a), parts(z)
                for first in sorted((p for p in in_a if _touch(p, z)), key=lambda p: p.area):
                    h_a, edge = _grown(in_a, [first], a, 0.498 * a.area)
                    h_a_geom = shapely.union_all(h_a)
                    g = a.difference(h_a_geom)
                    piece = next(
                        (
                            p
                            for p in sorted(edge, key=lambda p: p.area)
                            if h_a_geom.area + p.area > 0.502 * a.area
                            and p.area < 0.3 * g.area
                            and _one_piece(g.difference(p))
                        ),
                        None,
                    )
                    if piece is None or not _one_piece(g):
                        continue
                    start = [p for p in in_z if _touch(p, h_a_geom)]
                    if not start:
                        continue
                    h_z, _ = _grown(in_z, start[:1], z, 0.45 * z.area)
                    h_z_geom = shapely.union_all(h_z)
                    if h_z_geom.area < 1.2 * (h_a_geom.area + piece.area):
                        continue
                    return {
                        "today": today,
                        "a": code_a,
                        "z": code_z,
                        "parent": parent,
                        "g": a.difference(h_a_geom),
                        "h": shapely.union_all([h_a_geom, h_z_geom]),
                        "z_rest": z.difference(h_z_geom),
                        "piece": piece,
                    }
    raise AssertionError("no grid of the city with a larger neighbour to redraw")


def test_an_edit_says_again_which_grid_of_today_each_grid_continues(
    client: TestClient, engine: Engine, role_keys: dict, loaded_city: DemoCity
) -> None:
    plan = _a_draft_an_edit_tips(engine)
    h_code = f"{plan['parent']}-G90"
    with engine.begin() as conn:
        draft = conn.execute(
            text(
                "INSERT INTO boundary_versions (name, status) VALUES ('tipping', 'draft') "
                "RETURNING id"
            )
        ).scalar_one()
        for level in ("district", "street", "community", "grid"):
            conn.execute(
                text(
                    "INSERT INTO areas (version_id, level, code, name, parent_id, geom, area_m2) "
                    "SELECT :d, a.level, a.code, a.name, (SELECT n.id FROM areas n JOIN areas p "
                    "ON p.code = n.code WHERE n.version_id = :d AND p.id = a.parent_id), "
                    "a.geom, a.area_m2 FROM areas a WHERE a.version_id = :v AND a.level = :lv "
                    "AND NOT a.code = ANY(:skip) ORDER BY a.id"
                ),
                {"d": draft, "v": plan["today"], "lv": level, "skip": [plan["a"], plan["z"]]},
            )
        for code, geom in (
            (plan["a"], plan["g"]),
            (h_code, plan["h"]),
            (plan["z"], plan["z_rest"]),
        ):
            conn.execute(
                text(
                    "INSERT INTO areas (version_id, level, code, name, parent_id, geom, area_m2) "
                    "SELECT :d, 'grid', :code, :code, p.id, ST_Multi(ST_CollectionExtract("
                    "ST_MakeValid(ST_GeomFromWKB(:wkb, 4326)), 3)), "
                    "ST_Area(ST_GeomFromWKB(:wkb, 4326)::geography) "
                    "FROM areas p WHERE p.version_id = :d AND p.code = :parent"
                ),
                {"d": draft, "code": code, "wkb": geom.wkb, "parent": plan["parent"]},
            )
    codes = [plan["a"], h_code, plan["z"]]
    before = continues_by_area(engine, draft, plan["today"], codes)
    assert before == {plan["a"]: plan["a"], h_code: plan["z"], plan["z"]: plan["z"]}
    at = plan["piece"].representative_point()
    answer = client.post(
        f"/boundaries/versions/{draft}/edits",
        json={"lon": at.x, "lat": at.y, "to_grid": h_code},
        headers=as_role(role_keys, "planner"),
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["moved"]["from"] == plan["a"] and body["moved"]["to"] == h_code
    said = {g["code"]: g["continues"] for g in body["grids"]}
    # h now covers more than half of A: it continues A (it continued Z), and the rest of A
    # still continues A; both counted apart from the service
    assert said == {plan["a"]: plan["a"], h_code: plan["a"]}
    assert said == continues_by_area(engine, draft, plan["today"], [plan["a"], h_code])
    with engine.connect() as conn:
        audited = conn.execute(
            text(
                "SELECT diff FROM audit_log WHERE action = 'edit' AND entity_id = :v "
                "ORDER BY id DESC LIMIT 1"
            ),
            {"v": str(draft)},
        ).scalar_one()
    assert audited["continues"] == said
