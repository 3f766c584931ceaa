"""Array values (responders' skills) are bound, never built as literals (issue 14, bug 1).

``POST /imports/responders`` with a skill such as ``a}b`` or ``say "hi"`` used to answer 500,
and a skill named ``NULL`` was stored as NULL: the importer and the demo loader wrote
PostgreSQL array literals by hand. Every way an array reaches the database -- the importer's
COPY (insert and update), the demo loader's COPY, ``PATCH /responders`` -- must store each
element exactly, and every way it is read back must return it exactly.
"""

from __future__ import annotations

import io
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from geo_service.db.bulk import copy_frame
from geo_service.demo.city import DemoCity
from tests.conftest import grid_point

# Each a skill of its own: what an array literal gives a meaning to, and what it does not.
AWKWARD = [
    "a}b",
    "{c",
    "{}",
    'say "hi"',
    '"',
    "back\\slash",
    "\\",
    'ends with \\"',
    "NULL",
    "null",
    "first aid",
    "消防救援",
    '{"x" "y"}',
    "tab\there",
    "e'quote",
]
# The import's skills column separates skills by , ; or | (a comma cannot be part of one).
SEPARATOR = "|"


def _upload(rows: list[dict[str, Any]]) -> dict:
    buffer = io.StringIO()
    pd.DataFrame(rows).to_csv(buffer, index=False)
    return {"file": ("units.csv", buffer.getvalue().encode(), "text/csv")}


def _import(client: TestClient, rows: list[dict[str, Any]]) -> dict:
    response = client.post(
        "/imports/responders", files=_upload(rows), data={"source_name": "arrays"}
    )
    assert response.status_code == 200, response.text
    return response.json()


def _stored(engine: Engine, callsign: str) -> tuple[list[str], int, int]:
    """Skills as stored, their count, and how many elements are SQL NULL."""
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT skills, cardinality(skills), "
                "(SELECT count(*) FROM unnest(skills) s WHERE s IS NULL) "
                "FROM responders WHERE callsign = :c"
            ),
            {"c": callsign},
        ).one()
    return list(row[0]), int(row[1]), int(row[2])


def _listed(client: TestClient, callsign: str) -> dict[str, Any]:
    features = client.get("/responders", params={"kind": "patrol"}).json()["features"]
    (found,) = [f for f in features if f["properties"]["callsign"] == callsign]
    return found


def test_imported_skills_with_array_syntax_are_stored_and_read_back_exactly(
    client: TestClient, loaded_city: DemoCity, engine: Engine
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    rows = [
        {
            "callsign": "ARR-1",
            "kind": "patrol",
            "skills": SEPARATOR.join(AWKWARD),
            "lon": lon,
            "lat": lat,
        },
        {"callsign": "ARR-2", "kind": "patrol", "skills": "NULL", "lon": lon, "lat": lat},
        {"callsign": "ARR-3", "kind": "patrol", "skills": "a,b; c|d", "lon": lon, "lat": lat},
        {"callsign": "ARR-4", "kind": "patrol", "skills": "", "lon": lon, "lat": lat},
    ]

    body = _import(client, rows)

    assert (body["accepted"], body["inserted"], body["rejected"]) == (4, 4, 0), body
    assert _stored(engine, "ARR-1") == (AWKWARD, len(AWKWARD), 0)
    assert _stored(engine, "ARR-2") == (["NULL"], 1, 0)
    assert _stored(engine, "ARR-3") == (["a", "b", "c", "d"], 4, 0)
    assert _stored(engine, "ARR-4")[0] == []
    listed = _listed(client, "ARR-1")
    assert listed["properties"]["skills"] == AWKWARD
    ids = {c: _listed(client, c)["properties"]["id"] for c in ("ARR-1", "ARR-2")}
    for skill in ("a}b", 'say "hi"', "NULL", "null", "消防救援", "\\"):
        nearest = client.get(
            "/responders/nearest", params={"lon": lon, "lat": lat, "skill": skill}
        ).json()
        expected = {ids["ARR-1"], ids["ARR-2"]} if skill == "NULL" else {ids["ARR-1"]}
        assert {c["id"] for c in nearest["candidates"]} == expected, skill


def test_reimport_updates_skills_exactly(
    client: TestClient, loaded_city: DemoCity, engine: Engine
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    row = {"callsign": "ARR-UP", "kind": "patrol", "skills": "plain", "lon": lon, "lat": lat}
    assert _import(client, [row])["inserted"] == 1

    again = _import(client, [{**row, "skills": SEPARATOR.join(reversed(AWKWARD))}])

    assert again["inserted"] == 1, again  # updated: the skills changed
    assert _stored(engine, "ARR-UP") == (list(reversed(AWKWARD)), len(AWKWARD), 0)
    same = _import(client, [{**row, "skills": SEPARATOR.join(reversed(AWKWARD))}])
    assert (same["inserted"], same["already_present"]) == (0, 1), same


def test_patched_skills_keep_commas_and_array_syntax(
    client: TestClient, loaded_city: DemoCity, engine: Engine
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    _import(client, [{"callsign": "ARR-P", "kind": "patrol", "lon": lon, "lat": lat}])
    rid = _listed(client, "ARR-P")["properties"]["id"]
    skills = [*AWKWARD, "a,b", ",", '{"x","y"}', " padded "]

    response = client.patch(f"/responders/{rid}", json={"skills": skills})

    assert response.status_code == 200, response.text
    assert response.json()["skills"] == skills
    assert _stored(engine, "ARR-P") == (skills, len(skills), 0)
    assert _listed(client, "ARR-P")["properties"]["skills"] == skills


@pytest.mark.parametrize(
    "values",
    [
        [AWKWARD, ["a,b", ","], [], None, ["NULL", None, "null"], [" x "]],
        [[], []],  # no element anywhere: Arrow types the column list<null>
    ],
)
def test_copy_frame_binds_every_array_element(engine: Engine, values: list[Any]) -> None:
    """The loader under the importer and the demo city: list columns go in as arrays."""
    frame = pd.DataFrame({"n": range(len(values)), "tags": values, "note": 't\\e"x,t'})
    with engine.begin() as conn:
        conn.execute(
            text("CREATE TEMP TABLE copy_arrays (n int, tags text[], note text) ON COMMIT DROP")
        )
        assert copy_frame(conn, "copy_arrays", frame) == len(values)
        back = conn.execute(text("SELECT tags, note FROM copy_arrays ORDER BY n")).all()
    assert [r[0] for r in back] == values
    assert {r[1] for r in back} == {'t\\e"x,t'}
