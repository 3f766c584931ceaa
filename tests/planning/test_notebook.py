"""The planners' notebook runs top to bottom against the test database (nbclient)."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient
from sqlalchemy import Connection, text

from geo_service.db.engine import make_engine
from geo_service.demo.city import DemoCity
from geo_service.demo.load import load_city
from tests.conftest import TEST_DATABASE, make_database

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "rebalance_walkthrough.ipynb"


def test_rebalance_walkthrough_runs(demo_city: DemoCity, monkeypatch) -> None:  # noqa: ANN001
    # the notebook publishes its plan: a database of its own, never the shared one
    url = make_database(f"{TEST_DATABASE}_notebook")
    engine = make_engine(url)
    load_city(engine, demo_city)
    monkeypatch.setenv("GEO_DATABASE_URL", url)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3").execute()
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    text_out = "".join(o.get("text", "") for o in outputs)
    assert "valid: True" in text_out and "contiguous: 1.0" in text_out
    assert "borders on roads:" in text_out and "grid workers to settle:" in text_out
    assert sum(1 for o in outputs if "image/png" in o.get("data", {})) >= 3  # the plots
    with engine.connect() as conn:  # the plan it made is in force, its edit audited
        assert_plan_in_force_and_edit_audited(conn)
    engine.dispose()


def assert_plan_in_force_and_edit_audited(conn: Connection) -> None:
    """A notebook's plan is the one version published (the old one retired) and its one
    hand edit is in the audit log (shared by the notebooks' tests)."""
    statuses = dict(
        conn.execute(text("SELECT status, count(*) FROM boundary_versions GROUP BY status")).all()
    )
    assert statuses.get("published") == 1 and statuses.get("retired") == 1, statuses
    edits = conn.execute(
        text("SELECT count(*) FROM audit_log WHERE action = 'edit' AND who = 'notebook'")
    ).scalar_one()
    assert edits == 1
