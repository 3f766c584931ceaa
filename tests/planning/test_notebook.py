"""The planners' notebook runs top to bottom against the test database (nbclient)."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient
from sqlalchemy import Engine, text

from geo_service.demo.city import DemoCity

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "rebalance_walkthrough.ipynb"


def test_rebalance_walkthrough_runs(
    loaded_city: DemoCity, database_url: str, engine: Engine, monkeypatch
) -> None:  # noqa: ANN001
    monkeypatch.setenv("GEO_DATABASE_URL", database_url)
    with engine.connect() as conn:
        before = conn.execute(text("SELECT coalesce(max(id), 0) FROM boundary_versions")).scalar()
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3").execute()
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    text_out = "".join(o.get("text", "") for o in outputs)
    assert "valid: True" in text_out and "contiguous: 1.0" in text_out
    assert sum(1 for o in outputs if "image/png" in o.get("data", {})) >= 3  # the plots
    with engine.begin() as conn:  # the draft it made
        conn.execute(text("DELETE FROM boundary_versions WHERE id > :v"), {"v": before})
