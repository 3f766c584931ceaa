"""``GET /heatmap/grids?version_id=`` counts the same history against any boundary version
(issue 18): a version not in force counts each incident in its grid holding the incident's
point (the point lookup's rule, the lowest grid id on a shared border), the version in force
keeps its stored answer.

The expected counts are made here apart from the service: the draft's polygons and the
incidents' points are read from the database and matched with shapely."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from geo_service.demo.city import DemoCity
from tests.boundaries.drafts import new_draft
from tests.conftest import as_role, bound_user, problem, version_in_force_id

# A fixed window end an hour ahead (it holds any incident filed during the test).
UNTIL = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)


@dataclass
class Drafts:
    """Two drafts of the version in force: an exact copy, and one merging two grids."""

    in_force: int
    copy: int
    merging: int
    merged: str  # code of the merged grid in ``merging``
    pair: tuple[str, str]  # the codes of today's grids it merges


@pytest.fixture
def drafts(client: TestClient, engine: Engine, loaded_city: DemoCity) -> Drafts:
    """A copy of today's version, and a draft with two neighbouring grids of one community
    merged into one (written last: the highest id); an incident filed at a corner the two
    share, which every map must count once. Removed by ``clean_writes``."""
    version = version_in_force_id(engine)
    with engine.begin() as conn:
        a, b, parent, lon, lat = conn.execute(
            text(
                "SELECT a.code, b.code, p.code, ST_X(v.geom), ST_Y(v.geom) FROM areas a "
                "JOIN areas b ON b.parent_id = a.parent_id AND b.id > a.id "
                "AND ST_Intersects(a.geom, b.geom) JOIN areas p ON p.id = a.parent_id "
                "CROSS JOIN LATERAL (SELECT (ST_DumpPoints(a.geom)).geom) v "
                "WHERE a.version_id = :v AND a.level = 'grid' "
                "AND ST_Intersects(v.geom, b.geom) AND NOT EXISTS (SELECT FROM areas c "
                "WHERE c.version_id = :v AND c.level = 'grid' AND c.id NOT IN (a.id, b.id) "
                "AND ST_Intersects(c.geom, v.geom)) ORDER BY a.id, b.id LIMIT 1"
            ),
            {"v": version},
        ).one()
        copy = new_draft(conn, version, "heatmap copy")
        merging = new_draft(conn, version, "heatmap merge", skip=(a, b))
        merged = f"{parent}-M01"
        conn.execute(
            text(
                "INSERT INTO areas (version_id, level, code, name, parent_id, geom, area_m2) "
                "SELECT :d, 'grid', :code, 'Merged grid', p.id, ST_Multi(ST_Union(g.geom)), "
                "sum(g.area_m2) FROM areas g, areas p WHERE g.version_id = :v "
                "AND g.code = ANY(:pair) AND p.version_id = :d AND p.code = :parent "
                "GROUP BY p.id"
            ),
            {"d": merging, "v": version, "code": merged, "pair": [a, b], "parent": parent},
        )
    filed = client.post(
        "/incidents", json={"category": "traffic", "location": {"lon": lon, "lat": lat}}
    )
    assert filed.status_code == 201, filed.text
    with engine.connect() as conn:
        holders = conn.execute(
            text(
                "SELECT a.code FROM areas a, incidents i WHERE i.id = :i AND a.version_id = :v "
                "AND a.level = 'grid' AND ST_Intersects(a.geom, i.location) ORDER BY a.id"
            ),
            {"i": filed.json()["id"], "v": version},
        ).all()
    assert [h[0] for h in holders] == [a, b]  # on their border: both hold it
    assert filed.json()["grid"]["code"] == a  # filed in the lowest id, as it is counted
    return Drafts(version, copy, merging, merged, (a, b))


def _counts(client: TestClient, **params: object) -> dict[str, int]:
    response = client.get("/heatmap/grids", params={"until": UNTIL.isoformat(), **params})
    assert response.status_code == 200, response.text
    return {f["properties"]["code"]: f["properties"]["count"] for f in response.json()["features"]}


def _shapely_counts(
    engine: Engine, version: int, since: datetime, until: datetime, category: str | None = None
) -> Counter:
    """Incidents of [since, until) (of ``category``) per grid code of ``version``, each in the
    lowest-id grid whose polygon intersects its point: shapely's count, not the service's."""
    with engine.connect() as conn:
        grids = conn.execute(
            text(
                "SELECT id, code, ST_AsBinary(geom) FROM areas "
                "WHERE version_id = :v AND level = 'grid' ORDER BY id"
            ),
            {"v": version},
        ).all()
        points = conn.execute(
            text(
                "SELECT ST_X(location), ST_Y(location), category FROM incidents "
                "WHERE reported_at >= :s AND reported_at < :u"
            ),
            {"s": since, "u": until},
        ).all()
    points = [p for p in points if category is None or p[2] == category]
    tree = shapely.STRtree(shapely.from_wkb([bytes(g[2]) for g in grids]))  # ids ascending
    point_at, grid_at = tree.query(
        shapely.points([p[0] for p in points], [p[1] for p in points]), predicate="intersects"
    )
    lowest = np.full(len(points), len(grids))
    np.minimum.at(lowest, point_at, grid_at)
    codes = [g[1] for g in grids]
    return Counter(codes[i] for i in lowest if i < len(grids))


def test_a_copy_of_today_counts_as_today_at_every_level(client: TestClient, drafts: Drafts) -> None:
    for level in ("grid", "community", "district"):
        today = client.get("/heatmap/grids", params={"level": level, "until": UNTIL.isoformat()})
        copy = client.get(
            "/heatmap/grids",
            params={"level": level, "until": UNTIL.isoformat(), "version_id": drafts.copy},
        )
        assert today.json()["attribution"] == "stored"
        assert today.json()["version_id"] == drafts.in_force
        assert copy.json()["attribution"] == "located"
        assert copy.json()["version_id"] == drafts.copy

        def by_code(body: dict) -> dict[str, tuple[int, dict]]:
            return {
                f["properties"]["code"]: (f["properties"]["count"], f["geometry"])
                for f in body["features"]
            }

        assert by_code(copy.json()) == by_code(today.json()), level
        assert copy.json()["total"] == today.json()["total"] > 0


def test_a_merged_grid_counts_the_sum_of_the_two_it_merges(
    client: TestClient, drafts: Drafts, engine: Engine
) -> None:
    today = _counts(client)
    merging = _counts(client, version_id=drafts.merging)
    assert merging[drafts.merged] == sum(today[c] for c in drafts.pair) > 0
    assert {c: n for c, n in merging.items() if c != drafts.merged} == {
        c: n for c, n in today.items() if c not in drafts.pair
    }
    # the same history: every incident once, under either map
    assert sum(merging.values()) == sum(today.values())
    assert _counts(client, version_id=drafts.merging, level="community") == _counts(
        client, level="community"
    )


def test_a_draft_counts_match_shapelys_count_with_window_and_category(
    client: TestClient, drafts: Drafts, engine: Engine
) -> None:
    with engine.connect() as conn:
        category = conn.execute(
            text("SELECT category FROM incidents GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")
        ).scalar_one()
    since = UNTIL - timedelta(days=100, hours=5)
    got = _counts(client, version_id=drafts.merging, since=since.isoformat(), category=category)
    expected = _shapely_counts(engine, drafts.merging, since, UNTIL, category)
    assert {c: n for c, n in got.items() if n} == dict(expected)
    assert got[drafts.merged] > 0
    everything = _counts(client, version_id=drafts.merging)
    assert {c: n for c, n in everything.items() if n} == dict(
        _shapely_counts(engine, drafts.merging, datetime(2000, 1, 1, tzinfo=UTC), UNTIL)
    )


def test_naming_the_version_in_force_is_todays_answer(client: TestClient, drafts: Drafts) -> None:
    for level in ("grid", "street"):
        params = {"level": level, "until": UNTIL.isoformat()}
        plain = client.get("/heatmap/grids", params=params).json()
        named = client.get("/heatmap/grids", params=params | {"version_id": drafts.in_force})
        assert named.json() == plain


def test_bad_or_unknown_versions_are_refused(
    client: TestClient, drafts: Drafts, role_keys: dict
) -> None:
    for value in (0, -3, "draft", 2**31, "1.5"):
        response = client.get("/heatmap/grids", params={"version_id": value})
        assert problem(response)["status"] == 422, value
    missing = client.get("/heatmap/grids", params={"version_id": 2_000_000_000})
    assert problem(missing)["status"] == 404
    assert problem(missing)["detail"] == "boundary version 2000000000 does not exist"
    bad_level = client.get("/heatmap/grids", params={"version_id": drafts.copy, "level": "city"})
    assert problem(bad_level)["status"] == 422
    # a grid worker reads layers but not boundary versions: another map is refused, today's
    # version (named or not) is answered as before
    worker = as_role(role_keys, "grid_worker")
    draft = client.get("/heatmap/grids", params={"version_id": drafts.copy}, headers=worker)
    assert problem(draft)["status"] == 403
    own = client.get("/heatmap/grids", params={"version_id": drafts.in_force}, headers=worker)
    assert own.status_code == 200
    assert own.json() == client.get("/heatmap/grids", headers=worker).json()


def test_a_caller_bound_to_an_area_sees_its_areas_of_a_draft(
    client: TestClient, drafts: Drafts, engine: Engine
) -> None:
    with engine.connect() as conn:
        community, district = conn.execute(
            text(
                "SELECT p.code, d.code FROM areas g JOIN areas p ON p.id = g.parent_id "
                "JOIN areas s ON s.id = p.parent_id JOIN areas d ON d.id = s.parent_id "
                "WHERE g.version_id = :v AND g.code = :c"
            ),
            {"v": drafts.in_force, "c": drafts.pair[0]},
        ).one()
        elsewhere = conn.execute(
            text(
                "SELECT code FROM areas WHERE version_id = :v AND level = 'district' "
                "AND code <> :d ORDER BY id LIMIT 1"
            ),
            {"v": drafts.in_force, "d": district},
        ).scalar_one()
    headers = bound_user(engine, "planner", community)
    params = {"until": UNTIL.isoformat()}
    today = client.get("/heatmap/grids", params=params, headers=headers).json()
    draft = client.get(
        "/heatmap/grids", params=params | {"version_id": drafts.merging}, headers=headers
    ).json()
    everyone = _counts(client, version_id=drafts.merging)
    today_codes = {f["properties"]["code"] for f in today["features"]}
    mine = {f["properties"]["code"]: f["properties"]["count"] for f in draft["features"]}
    assert drafts.merged in mine and set(drafts.pair) <= today_codes
    assert set(mine) == (today_codes - set(drafts.pair)) | {drafts.merged}
    assert mine == {c: everyone[c] for c in mine}
    assert draft["total"] == today["total"]
    # their community, and nothing above it
    level = client.get(
        "/heatmap/grids",
        params=params | {"version_id": drafts.merging, "level": "community"},
        headers=headers,
    ).json()
    assert [f["properties"]["code"] for f in level["features"]] == [community]
    assert level["total"] == draft["total"]
    above = client.get(
        "/heatmap/grids",
        params={"version_id": drafts.merging, "level": "district"},
        headers=headers,
    ).json()
    assert above["features"] == [] and above["total"] == 0
    # a version with nothing in their area does not exist for them
    with engine.begin() as conn:
        far = new_draft(conn, drafts.in_force, "far away")
        conn.execute(
            text("DELETE FROM areas WHERE version_id = :v AND code <> :c"),
            {"v": far, "c": elsewhere},
        )
    hidden = client.get("/heatmap/grids", params={"version_id": far}, headers=headers)
    assert problem(hidden)["status"] == 404
    assert problem(hidden)["detail"] == f"boundary version {far} does not exist"
    assert client.get("/heatmap/grids", params={"version_id": far}).status_code == 200
