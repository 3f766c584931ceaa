"""The performance report as CSV (UTF-8 with a BOM), XLSX and an A4 PDF: the same figures as
the JSON, read back with pandas, openpyxl and poppler (pdfinfo, pdftotext, pdftoppm: the
pages are rendered to PNG in tests/artifacts to be looked at), a Chinese area name set in
the PDF's CJK font."""

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from geo_service.demo.city import DemoCity
from tests.conftest import ARTIFACTS

PARAMS = {"level": "community", "since": "2025-01-01", "until": "2027-01-01"}
CHINESE = "江汉区花楼街道"


@pytest.fixture
def chinese_district(engine: Engine, loaded_city: DemoCity) -> Iterator[dict]:
    """The first district, named in Chinese for the test (its name is put back after)."""
    with engine.begin() as conn:
        row = conn.execute(
            text("SELECT id, name FROM areas WHERE level = 'district' ORDER BY code LIMIT 1")
        ).one()
        conn.execute(text("UPDATE areas SET name = :n WHERE id = :i"), {"n": CHINESE, "i": row.id})
    try:
        yield {"id": row.id}
    finally:
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE areas SET name = :n WHERE id = :i"), {"n": row.name, "i": row.id}
            )


def test_csv_has_a_bom_and_the_json_figures(client: TestClient, loaded_city: DemoCity) -> None:
    body = client.get("/reports/performance", params=PARAMS).json()
    answer = client.get("/reports/performance", params={**PARAMS, "format": "csv"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert (
        'filename="performance_community_2025-01-01_2027-01-01.csv"'
        in (answer.headers["content-disposition"])
    )
    assert answer.content.startswith(b"\xef\xbb\xbf")
    table = pd.read_csv(io.BytesIO(answer.content), encoding="utf-8-sig")
    areas = table[table.kind == "area"]
    assert list(areas.code) == [a["code"] for a in body["areas"]]
    assert list(areas.received) == [a["received"] for a in body["areas"]]
    assert list(areas.closed) == [a["closed"] for a in body["areas"]]
    assert list(areas.source_hotline) == [a["by_source"]["hotline"] for a in body["areas"]]
    total = table[table.kind == "total"].iloc[0]
    assert total.received == body["total"]["received"] > 0
    assert total.closure_rate_pct == pytest.approx(
        100 * body["total"]["closure_rate"]["rate"], abs=0.05
    )
    assert len(table[table.kind == "worker"]) == len(body["workers"])


def test_xlsx_holds_the_report_weeks_months_and_rankings(
    client: TestClient, loaded_city: DemoCity
) -> None:
    body = client.get("/reports/performance", params=PARAMS).json()
    answer = client.get("/reports/performance", params={**PARAMS, "format": "xlsx"})
    assert answer.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(answer.content), read_only=True)
    assert book.sheetnames == ["report", "weeks", "months", "rankings"]
    rows = list(book["report"].iter_rows(values_only=True))
    header = rows[0]
    received = header.index("received")
    assert [r[received] for r in rows[1:] if r[0] == "area"] == [
        a["received"] for a in body["areas"]
    ]
    weeks = list(book["weeks"].iter_rows(values_only=True))[1:]
    assert [w[2] for w in weeks] == [w["received"] for w in body["trends"]["weeks"]]


def test_a_formula_in_an_area_name_is_not_run(
    client: TestClient, engine: Engine, loaded_city: DemoCity
) -> None:
    with engine.begin() as conn:
        row = conn.execute(
            text("SELECT id, name FROM areas WHERE level = 'community' ORDER BY code LIMIT 1")
        ).one()
        conn.execute(
            text("UPDATE areas SET name = '=HYPERLINK(\"http://x\")' WHERE id = :i"), {"i": row.id}
        )
    try:
        csv = client.get("/reports/performance", params={**PARAMS, "format": "csv"}).content
        xlsx = client.get("/reports/performance", params={**PARAMS, "format": "xlsx"}).content
    finally:
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE areas SET name = :n WHERE id = :i"), {"n": row.name, "i": row.id}
            )
    assert b"'=HYPERLINK" in csv
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx))["report"]
    names = [c.value for c in sheet["D"]]
    assert '\'=HYPERLINK("http://x")' in names
    assert all(c.data_type != "f" for row in sheet.iter_rows() for c in row)


def test_the_pdf_is_a4_and_renders_chinese(
    client: TestClient, city_with_lifecycles: DemoCity, chinese_district: dict, tmp_path: Path
) -> None:
    answer = client.get(
        "/reports/performance",
        params={**PARAMS, "parent_id": chinese_district["id"], "format": "pdf"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/pdf"
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(answer.content)
    assert answer.content.startswith(b"%PDF")
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert "595.276 x 841.89 pts (A4)" in info
    words = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert CHINESE in words  # set in the embedded CJK font, with its Unicode map
    assert "Closure rate" in words and "Resolved on time" in words
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("report-page-*.png"):
        old.unlink()
    subprocess.run(
        ["pdftoppm", "-png", "-r", "60", str(pdf), str(ARTIFACTS / "report-page")], check=True
    )
    pages = sorted(ARTIFACTS.glob("report-page-*.png"))
    assert pages and all(p.stat().st_size > 5000 for p in pages)
    assert shutil.which("pdftoppm")


def test_the_pdf_speaks_the_requests_language(
    client: TestClient, city_with_lifecycles: DemoCity, chinese_district: dict, tmp_path: Path
) -> None:
    answer = client.get(
        "/reports/performance",
        params={**PARAMS, "parent_id": chinese_district["id"], "format": "pdf"},
        headers={"Accept-Language": "zh-CN"},
    )
    assert answer.status_code == 200, answer.text
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(answer.content)
    words = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "绩效报告" in words and "结案率" in words and "按时办结" in words
    assert "Closure rate" not in words
    subprocess.run(
        ["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", str(pdf),
         str(ARTIFACTS / "zh-CN_report-page")],
        check=True,
    )  # fmt: skip
