"""Versioned boundaries: draft -> validate -> publish (re-attribution, crosswalk) -> diff."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from geo_service.db.engine import make_engine
from geo_service.demo.city import DemoCity, generate_city
from geo_service.demo.load import load_city
from geo_service.errors import ConflictError, InvalidInputError, NotFoundError
from geo_service.services.boundaries.areas import lookup_point
from geo_service.services.boundaries.catalogue import list_versions
from geo_service.services.boundaries.crosswalk import diff_versions
from geo_service.services.boundaries.publish import publish_version
from geo_service.services.boundaries.validation import validate_version
from geo_service.services.ingest.imports import ImportOptions, import_file
from tests.conftest import TEST_DATABASE, make_database

SWITCH = datetime.now(UTC).replace(microsecond=0) - timedelta(days=30)


def _draft_from(city: DemoCity, tmp: Path, engine: Engine, grids: gpd.GeoDataFrame) -> int:
    version = None
    for level, parent in (
        ("district", None),
        ("street", "district"),
        ("community", "street"),
        ("grid", "community"),
    ):
        frame = grids if level == "grid" else city.areas[city.areas.level == level]
        path = tmp / f"{level}.geojson"
        frame[["code", "name", "parent_code", "geometry"]].to_file(path, driver="GeoJSON")
        report = import_file(
            engine,
            "boundaries",
            path,
            ImportOptions(
                level=level,
                parent_level=parent,
                version_id=version,
                version_name="redrawn",
                rejects_path=tmp / "r.csv",
            ),
            actor="planner",
        )
        assert report.rejected == 0, report.rejects
        version = report.version_id
    assert version is not None
    return version


@pytest.fixture(scope="module")
def published(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    # parallel runs on one server: a database of their own each
    engine = make_engine(make_database(f"{TEST_DATABASE}_versions"))
    city = generate_city(
        seed=13, grids=16, incidents=2000, households_per_grid=20, end_date=date.today()
    )
    load_city(engine, city)
    grids = city.areas[city.areas.level == "grid"].copy()
    first_community = grids.parent_code.iloc[0]
    pair = grids[grids.parent_code == first_community].iloc[:2]
    merged = gpd.GeoDataFrame(
        {
            "code": [f"{first_community}-G90"],
            "name": ["Merged grid"],
            "parent_code": [first_community],
            "level": ["grid"],
        },
        geometry=[shapely.union_all(pair.geometry.values)],
        crs=4326,
    )
    new_grids = gpd.GeoDataFrame(
        gpd.pd.concat([grids[~grids.code.isin(pair.code)], merged], ignore_index=True), crs=4326
    )
    tmp = tmp_path_factory.mktemp("versions")
    draft = _draft_from(city, tmp, engine, new_grids)
    validation = validate_version(engine, draft)
    with engine.connect() as conn:
        old_version = conn.execute(
            text("SELECT id FROM boundary_versions WHERE status = 'published'")
        ).scalar_one()
        before = {
            "households": dict(
                conn.execute(
                    text(
                        "SELECT a.code, count(*) FROM households h "
                        "JOIN areas a ON a.id = h.grid_id GROUP BY a.code"
                    )
                ).all()
            ),
            "early_incident": conn.execute(
                text(
                    "SELECT i.id, a.code FROM incidents i JOIN areas a ON a.id = i.grid_id "
                    "WHERE i.reported_at < :t AND a.code = ANY(:codes) LIMIT 1"
                ),
                {"t": SWITCH, "codes": list(pair.code)},
            ).one(),
        }
    result = publish_version(engine, draft, SWITCH, actor="planner")
    yield {
        "engine": engine,
        "city": city,
        "draft": draft,
        "old": old_version,
        "validation": validation,
        "result": result,
        "pair": list(pair.code),
        "merged": f"{first_community}-G90",
        "before": before,
        "tmp": tmp,
    }
    engine.dispose()


def test_a_clean_redraw_validates(published: dict) -> None:
    report = published["validation"]
    assert report["valid"], report["summary"]
    assert report["areas"]["grid"] == 15


def test_publish_retires_the_old_version_at_the_switch(published: dict) -> None:
    versions = {v["id"]: v for v in list_versions(published["engine"])}
    old, new = versions[published["old"]], versions[published["draft"]]
    assert old["status"] == "retired" and new["status"] == "published"
    assert old["effective_to"] == new["effective_from"] == SWITCH.isoformat()


def test_households_follow_the_new_grids_and_the_crosswalk_counts_them(published: dict) -> None:
    engine = published["engine"]
    moved_in = sum(published["before"]["households"].get(c, 0) for c in published["pair"])
    with engine.connect() as conn:
        now = dict(
            conn.execute(
                text(
                    "SELECT a.code, count(*) FROM households h JOIN areas a ON a.id = h.grid_id "
                    "GROUP BY a.code"
                )
            ).all()
        )
        version_of_grids = (
            conn.execute(
                text(
                    "SELECT DISTINCT a.version_id FROM households h "
                    "JOIN areas a ON a.id = h.grid_id"
                )
            )
            .scalars()
            .all()
        )
        crosswalk = conn.execute(
            text(
                "SELECT o.code, n.code, c.count FROM boundary_crosswalks c "
                "JOIN areas o ON o.id = c.old_grid_id JOIN areas n ON n.id = c.new_grid_id "
                "WHERE c.entity = 'households' AND o.code <> n.code"
            )
        ).all()
    assert version_of_grids == [published["draft"]]
    assert now[published["merged"]] == moved_in > 0
    assert {(o, n) for o, n, _ in crosswalk} == {
        (c, published["merged"])
        for c in published["pair"]
        if published["before"]["households"].get(c)
    }
    assert sum(n for *_, n in crosswalk) == moved_in
    assert published["result"]["reattributed"]["households"]["moved"] == moved_in


def test_incidents_keep_the_grid_in_force_when_they_were_reported(published: dict) -> None:
    engine = published["engine"]
    incident_id, old_code = published["before"]["early_incident"]
    with engine.connect() as conn:
        still = conn.execute(
            text(
                "SELECT a.code, a.version_id FROM incidents i JOIN areas a ON a.id = i.grid_id "
                "WHERE i.id = :i"
            ),
            {"i": incident_id},
        ).one()
        late_versions = (
            conn.execute(
                text(
                    "SELECT DISTINCT a.version_id FROM incidents i "
                    "JOIN areas a ON a.id = i.grid_id WHERE i.reported_at >= :t"
                ),
                {"t": SWITCH},
            )
            .scalars()
            .all()
        )
    assert still == (old_code, published["old"])
    assert late_versions == [published["draft"]]


def test_lookup_answers_from_the_version_in_force_at_a_time(published: dict) -> None:
    engine = published["engine"]
    merged = gpd.GeoSeries(
        [
            shapely.union_all(
                published["city"].areas.set_index("code").loc[published["pair"]].geometry.values
            )
        ]
    )
    point = merged.representative_point().iloc[0]
    with Session(engine) as session:
        now = lookup_point(session, point.x, point.y)
        then = lookup_point(session, point.x, point.y, at=SWITCH - timedelta(days=1))
    assert now["grid"]["code"] == published["merged"]
    assert then["grid"]["code"] in published["pair"]
    assert now["community"]["code"] == then["community"]["code"]


def test_diff_lists_added_removed_and_moves(published: dict) -> None:
    diff = diff_versions(published["engine"], published["old"], published["draft"])
    assert [a["code"] for a in diff["added"]] == [published["merged"]]
    assert sorted(r["code"] for r in diff["removed"]) == sorted(published["pair"])
    assert diff["changed"] == []
    assert diff["unchanged"] == 14 + sum(1 for lv in published["city"].areas.level if lv != "grid")
    moves = [m for m in diff["entity_moves"] if m["entity"] == "households"]
    assert {m["new_code"] for m in moves} == {published["merged"]}


def test_publish_refuses_what_it_must(published: dict) -> None:
    engine = published["engine"]
    with pytest.raises(ConflictError, match="not a draft"):
        publish_version(engine, published["draft"], datetime.now(UTC), actor="t")
    with pytest.raises(InvalidInputError, match="future"):
        publish_version(
            engine, published["draft"], datetime.now(UTC) + timedelta(days=3), actor="t"
        )
    with pytest.raises(InvalidInputError, match="timezone"):
        publish_version(engine, published["draft"], datetime(2026, 1, 1), actor="t")
    with pytest.raises(NotFoundError):
        publish_version(engine, 999_999, datetime.now(UTC), actor="t")
    # A draft that starts before the current version took effect cannot be published.
    city, tmp = published["city"], published["tmp"]
    again = _draft_from(city, tmp, engine, city.areas[city.areas.level == "grid"])
    with pytest.raises(ConflictError, match="must be after"):
        publish_version(engine, again, SWITCH - timedelta(days=1), actor="t")


def test_validation_finds_overlaps_gaps_crossings_and_slivers(published: dict) -> None:
    engine, city, tmp = published["engine"], published["city"], published["tmp"]
    grids = city.areas[city.areas.level == "grid"].copy()
    community = grids.parent_code.iloc[0]
    inside = grids[grids.parent_code == community]
    grids.loc[inside.index[0], "geometry"] = inside.geometry.iloc[0].buffer(0.002)  # overlap,
    # and it now crosses out of its community too
    grids.loc[inside.index[1], "geometry"] = inside.geometry.iloc[1].buffer(-0.0005)  # gap
    sliver = shapely.box(
        city.areas.total_bounds[0] + 0.01,
        city.areas.total_bounds[1] + 0.01,
        city.areas.total_bounds[0] + 0.01 + 5e-5,
        city.areas.total_bounds[1] + 0.01 + 5e-5,
    )
    grids.loc[grids.index.max() + 1] = {
        "code": "SLIVER",
        "name": "s",
        "parent_code": community,
        "level": "grid",
        "geometry": sliver,
        "area_m2": 0,
    }
    draft = _draft_from(city, tmp, engine, grids)
    report = validate_version(engine, draft)
    summary = report["summary"]
    assert not report["valid"]
    assert summary["sibling_overlaps"] >= 1 and summary["gaps_in_parent"] >= 1
    assert summary["children_crossing_parent"] >= 1 and summary["slivers"] == 1
    assert report["findings"]["slivers"][0]["code"] == "SLIVER"
    with pytest.raises(ConflictError, match="does not validate"):
        publish_version(engine, draft, datetime.now(UTC), actor="t")
