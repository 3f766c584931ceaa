"""What the import tests share: where the field cases are, posting a file to
``POST /imports/{kind}``, running ``geo-service import``, zipping a shapefile, and reading the
CLI summary's counts."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Engine, text
from typer.testing import CliRunner, Result

from geo_service.cli.main import app
from tests.conftest import as_role

# ../shared/cases beside the checkout, or where GEO_SHARED_CASES says
CASES = Path(
    os.environ.get("GEO_SHARED_CASES") or Path(__file__).resolve().parents[3] / "shared" / "cases"
)
SUMMARY_LABELS = ("read", "accepted", "inserted", "already present", "rejected")


def post_import(
    client: TestClient,
    role_keys: dict[str, str],
    kind: str,
    name: str,
    content: bytes,
    role: str = "admin",
    **data: object,
) -> Response:
    """``POST /imports/{kind}`` with ``content`` as the file ``name`` and ``data`` as form
    fields, signed in as ``role``."""
    return client.post(
        f"/imports/{kind}",
        files={"file": (name, content, "application/octet-stream")},
        data=data,
        headers=as_role(role_keys, role),
    )


def cli_import(url: str, monkeypatch: pytest.MonkeyPatch, *args: str) -> Result:
    """``geo-service import ARGS`` against the database at ``url``."""
    monkeypatch.setenv("GEO_DATABASE_URL", url)
    return CliRunner().invoke(app, ["import", *args])


def count_rows(engine: Engine, table: str) -> int:
    """How many rows ``table`` holds."""
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def zip_shapefile(shp: Path) -> bytes:
    """The parts of a shapefile (``x.shp``, ``x.dbf``, ...) zipped at the archive's root."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for part in sorted(shp.parent.glob(shp.stem + ".*")):
            archive.write(part, part.name)
    return buffer.getvalue()


def summary_counts(output: str) -> dict[str, int]:
    """The CLI summary table's counts by label (read, accepted, inserted, ...)."""
    found = {}
    for label in SUMMARY_LABELS:
        for line in output.splitlines():
            cells = [c.strip() for c in line.strip("│|").split("│")]
            if len(cells) == 2 and cells[0] == label:
                found[label] = int(cells[1].replace(",", ""))
    return found
