"""The planners' notebook on real data (Chicago's police districts and beats, the 2019 crimes)
runs top to bottom on an empty database of its own (nbclient)."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from sqlalchemy import text

from geo_service.db.engine import make_engine
from tests.conftest import SHARED_DATA, TEST_DATABASE, make_database
from tests.planning.test_notebook import assert_plan_in_force_and_edit_audited

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "rebalance_chicago.ipynb"
CHICAGO = SHARED_DATA / "chicago"
FILES = (
    "chicago_district_bounds.geojson",
    "chicago_beat_bounds.geojson",
    "chicago_crimes_2019_sample50k.csv.gz",
    "chicago_police_stations.csv",
)


def test_rebalance_chicago_runs(monkeypatch) -> None:  # noqa: ANN001
    if not all((CHICAGO / name).is_file() for name in FILES):
        pytest.skip("shared Chicago data not present")
    # the notebook imports Chicago and publishes its plan: an empty database of its own
    url = make_database(f"{TEST_DATABASE}_notebook_chicago")
    engine = make_engine(url)
    monkeypatch.setenv("GEO_DATABASE_URL", url)
    monkeypatch.setenv("GEO_SHARED_DATA", str(SHARED_DATA))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3").execute()
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    text_out = "".join(o.get("text", "") for o in outputs)
    assert "borders on roads: None -> None" in text_out  # no road network: not measurable
    assert "grid workers to settle:" in text_out
    assert sum(1 for o in outputs if "image/png" in o.get("data", {})) >= 3  # the plots

    # the proposal's balance: better than today, and within its band or at its floor
    found = re.search(
        r"status: (\w+) \(band max/mean <= ([\d.]+); lowest possible ([\d.]+)\)", text_out
    )
    assert found, text_out
    status = found[1]
    with engine.connect() as conn:
        notes = conn.execute(
            text(
                "SELECT diff->'metrics' FROM audit_log "
                "WHERE action = 'propose' AND who = 'notebook'"
            )
        ).scalar_one()
    before = notes["workload_before"]["max_over_mean"]
    after = notes["workload_after"]["max_over_mean"]
    assert after < before
    assert notes["status"] == status
    if status == "outside":
        assert "override reason:" in text_out  # published, with the reason said
    else:
        assert status in ("within", "at_floor")
        floor = float(found[3])
        assert after <= max(1 + float(found[2]), floor * 1.005)

    with engine.connect() as conn:  # the plan it made is in force, its edit audited
        assert_plan_in_force_and_edit_audited(conn)
        # one grid worker per beat of the district, each homed in a grid of the new version
        district = re.search(r"^district (\w+): \d+ beats", text_out, re.M)
        assert district, text_out
        homes = conn.execute(
            text(
                "SELECT r.callsign, g.version_id, v.status, d.code FROM responders r "
                "LEFT JOIN areas g ON g.id = r.home_grid_id "
                "LEFT JOIN areas d ON d.id = g.parent_id "
                "LEFT JOIN boundary_versions v ON v.id = g.version_id "
                "WHERE r.kind = 'grid_worker'"
            )
        ).all()
        beats = int(re.search(r"^district \w+: (\d+) beats", text_out, re.M)[1])
        assert len(homes) == beats > 0
        assert all(state == "published" and code == district[1] for _, _, state, code in homes), (
            homes
        )
    engine.dispose()
