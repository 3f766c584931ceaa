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
    header = rows[1]  # row 1: the labels; row 2: the keys
    received = header.index("received")
    assert [r[received] for r in rows[2:] if r[0] == "area"] == [
        a["received"] for a in body["areas"]
    ]
    weeks = list(book["weeks"].iter_rows(values_only=True))[2:]
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
    assert "绩效报告" in words and "办结率" in words and "按时处置" in words
    assert "Closure rate" not in words
    subprocess.run(
        ["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", str(pdf),
         str(ARTIFACTS / "zh-CN_report-page")],
        check=True,
    )  # fmt: skip


# --- what a fresh user found (issue 19, polish) ----------------------------------------------


def _near_full(report: dict) -> dict:
    """The report with its total's closure rate set to 77,064 of 77,344 (99.6%, not 100%)."""
    from geo_service.analytics.performance import rate

    return {**report, "total": {**report["total"], "closure_rate": rate(77064, 77344)}}


def test_csv_ids_are_integers_and_worker_rows_have_their_own_columns(
    client: TestClient, loaded_city: DemoCity
) -> None:
    body = client.get("/reports/performance", params=PARAMS).json()
    answer = client.get("/reports/performance", params={**PARAMS, "format": "csv"})
    raw = answer.content.decode("utf-8-sig")
    header = raw.splitlines()[0].split(",")
    # the stable keys, for programs
    assert header[:8] == [
        "kind", "id", "code", "name", "worker_callsign", "grid_id", "grid_code", "received",
    ]  # fmt: skip
    assert header[-3:] == ["since", "until", "as_of"]
    table = pd.read_csv(io.StringIO(raw), dtype=str, keep_default_na=False)
    assert not any(v.endswith(".0") for v in table["id"]), "ids must be integers"
    areas = table[table.kind == "area"]
    assert list(areas["id"]) == [str(a["id"]) for a in body["areas"]]
    assert (areas.worker_callsign == "").all() and (areas.grid_code == "").all()
    workers = table[table.kind == "worker"]
    assert len(workers) == len(body["workers"]) > 0
    assert list(workers["id"]) == [str(w["responder_id"]) for w in body["workers"]]
    assert list(workers.worker_callsign) == [w["callsign"] for w in body["workers"]]
    assert list(workers.grid_code) == [w["grid"]["code"] for w in body["workers"]]
    assert list(workers.grid_id) == [str(w["grid"]["id"]) for w in body["workers"]]
    assert (workers.code == "").all() and (workers.name == "").all()
    # instants in the deployment's zone with their offset
    assert (table.since == "2025-01-01T00:00:00+08:00").all()
    assert (table.until == "2027-01-01T00:00:00+08:00").all()
    assert table.as_of.str.endswith("+08:00").all() and body["as_of"].endswith("+08:00")


def test_xlsx_headers_are_labels_in_the_requests_language_over_hidden_keys(
    client: TestClient, loaded_city: DemoCity
) -> None:
    answer = client.get(
        "/reports/performance",
        params={**PARAMS, "format": "xlsx"},
        headers={"Accept-Language": "zh-CN"},
    )
    assert answer.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(answer.content))
    sheet = book["report"]
    labels = [c.value for c in sheet[1]]
    keys = [c.value for c in sheet[2]]
    assert keys[:3] == ["kind", "id", "code"]
    assert labels[keys.index("closure_rate_pct")] == "办结率 (%)"
    assert labels[keys.index("worker_callsign")] == "网格员"
    assert labels[keys.index("source_hotline")] == "来源: 12345 热线"
    assert all(label for label in labels) and len(set(labels)) == len(labels)
    assert sheet.row_dimensions[2].hidden
    assert not sheet.row_dimensions[1].hidden
    closure = keys.index("closure_rate_pct") + 1
    assert sheet.cell(row=3, column=closure).number_format == "0.0#"
    for name in ("weeks", "months", "rankings"):
        assert book[name].row_dimensions[2].hidden
    # programs read it by key
    table = pd.read_excel(
        io.BytesIO(answer.content), sheet_name="report", header=1, engine="openpyxl"
    )
    assert list(table.columns) == keys
    english = client.get("/reports/performance", params={**PARAMS, "format": "xlsx"})
    sheet = openpyxl.load_workbook(io.BytesIO(english.content))["report"]
    assert [c.value for c in sheet[1]][closure - 1] == "Closure rate (%)"


def test_rates_near_100_percent_keep_their_decimal(
    client: TestClient, loaded_city: DemoCity, tmp_path: Path
) -> None:
    from geo_service.services.reports import exports
    from geo_service.services.reports.periods import percent_text

    assert percent_text(77064 / 77344) == "99.6%"
    assert percent_text(1.0) == "100.0%" and percent_text(0.99999) == "99.999%"
    report = _near_full(client.get("/reports/performance", params=PARAMS).json())
    pdf = tmp_path / "near.pdf"
    pdf.write_bytes(exports.to_pdf(report, title="near 100%"))
    words = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "99.6%* (" not in words and "99.6% (99.6–99.7%, n=77344)" in words, words[:1500]
    assert "100% (100" not in words
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", str(pdf),
         str(ARTIFACTS / "report-near-100-page")],
        check=True,
    )  # fmt: skip
    book = openpyxl.load_workbook(io.BytesIO(exports.to_xlsx(report)))
    sheet = book["report"]
    keys = [c.value for c in sheet[2]]
    total = next(r for r in sheet.iter_rows(min_row=3) if r[0].value == "total")
    cell = total[keys.index("closure_rate_pct")]
    assert cell.value == 99.64 and cell.number_format == "0.0#"
    table = pd.read_csv(io.BytesIO(exports.to_csv(report)), encoding="utf-8-sig")
    assert table[table.kind == "total"].closure_rate_pct.iloc[0] == 99.64


def test_the_pdf_shows_local_instants_and_the_last_day_included(
    client: TestClient, loaded_city: DemoCity, tmp_path: Path
) -> None:
    answer = client.get(
        "/reports/performance",
        params={"level": "district", "since": "2026-11-01", "until": "2026-12-01", "format": "pdf"},
        headers={"Accept-Language": "zh-CN"},
    )
    assert answer.status_code == 200, answer.text
    body = client.get(
        "/reports/performance",
        params={"level": "district", "since": "2026-11-01", "until": "2026-12-01"},
    ).json()
    pdf = tmp_path / "month.pdf"
    pdf.write_bytes(answer.content)
    words = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "2026-11-01 – 2026-11-30 (Asia/Shanghai)" in words
    from geo_service.services.reports.periods import local_stamp

    stamp = local_stamp(body["as_of"], "Asia/Shanghai")
    assert stamp.endswith(" +08:00") and stamp in words
    assert body["as_of"][:16].replace("T", " ") == stamp[:16]  # the JSON's as_of is local too


def _pdf_text(content: bytes, tmp_path: Path) -> str:
    pdf = tmp_path / "x.pdf"
    pdf.write_bytes(content)
    return subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout


def test_a_pdf_without_level_shows_the_level_below_the_callers_root(
    client: TestClient, role_keys: dict, engine: Engine, loaded_city: DemoCity, tmp_path: Path
) -> None:
    from tests.conftest import as_role, problem

    window = {"since": "2025-01-01", "until": "2027-01-01"}
    city = client.get("/reports/performance", params={**window, "format": "pdf"})
    assert city.status_code == 200
    assert 'filename="performance_district_' in city.headers["content-disposition"]
    assert "· district" in _pdf_text(city.content, tmp_path)
    bound = client.get(
        "/reports/performance",
        params={**window, "format": "pdf"},
        headers=as_role(role_keys, "analyst@district"),
    )
    assert 'filename="performance_street_' in bound.headers["content-disposition"]
    with engine.connect() as conn:
        street = conn.execute(
            text("SELECT id FROM areas WHERE level = 'street' ORDER BY code LIMIT 1")
        ).scalar_one()
    under = client.get(
        "/reports/performance", params={**window, "format": "pdf", "parent_id": street}
    )
    assert 'filename="performance_community_' in under.headers["content-disposition"]
    # the level named wins; JSON and the other files keep grid as their default
    named = client.get("/reports/performance", params={**window, "format": "pdf", "level": "grid"})
    assert 'filename="performance_grid_' in named.headers["content-disposition"]
    assert client.get("/reports/performance", params=window).json()["level"] == "grid"
    csv = client.get("/reports/performance", params={**window, "format": "csv"})
    assert 'filename="performance_grid_' in csv.headers["content-disposition"]
    # bad input: a clear 4xx in problem details
    bad = client.get("/reports/performance", params={**window, "format": "pdf", "level": "x"})
    assert bad.status_code == 422
    problem(bad)
    missing = client.get(
        "/reports/performance", params={**window, "format": "pdf", "parent_id": 2**31 - 1}
    )
    assert missing.status_code == 404
    problem(missing)


def test_a_pdf_lists_the_best_and_last_workers_when_there_are_many(
    client: TestClient, loaded_city: DemoCity, tmp_path: Path
) -> None:
    from geo_service.services.reports import exports

    body = client.get("/reports/performance", params={**PARAMS, "level": "district"}).json()
    assert len(body["workers"]) > exports.WORKERS_SHOWN
    shown, cut = exports.pdf_workers(body)
    ranked = [r["id"] for r in body["rankings"]["workers_on_time_resolution"]]
    assert cut == exports.WORKERS_SHOWN // 2
    assert [w["responder_id"] for w in shown if w] == ranked[:cut] + ranked[-cut:]
    words = _pdf_text(exports.to_pdf(body, title="district"), tmp_path)
    assert f"{len(ranked)} grid workers: the 10 best and the 10 last" in words
    best = next(w for w in body["workers"] if w["responder_id"] == ranked[0])
    middle = next(w for w in body["workers"] if w["responder_id"] == ranked[len(ranked) // 2])
    assert best["callsign"] in words and middle["callsign"] not in words
    # the files keep every row
    csv = pd.read_csv(io.BytesIO(exports.to_csv(body)), encoding="utf-8-sig")
    assert len(csv[csv.kind == "worker"]) == len(body["workers"])


# --- what a fresh user found (issue 19, the second look) ---------------------------------------


@pytest.mark.parametrize(
    ("language", "units", "foreign", "heading", "levels"),
    [
        ("en", (" min", " h"), ("分钟", "小时"), "Escalations by level",
         ("community", "street", "district")),
        ("zh-CN", ("分钟", "小时"), (" min ", " h "), "各层级上交次数", ("社区", "街道", "区")),
    ],
)  # fmt: skip
def test_the_pdf_has_the_escalations_by_level_and_time_units_in_its_language(
    client: TestClient,
    city_with_lifecycles: DemoCity,
    window: dict,
    tmp_path: Path,
    language: str,
    units: tuple,
    foreign: tuple,
    heading: str,
    levels: tuple,
) -> None:
    """The escalations per level the page's chart and the API show, as a table; stage times
    in the reader's units (分钟, 小时, 天 under zh-CN); the card's open count at as_of."""
    params = {"level": "district", "since": window["since"].date().isoformat(),
              "until": window["until"].date().isoformat()}  # fmt: skip
    headers = {"Accept-Language": language}
    body = client.get("/reports/performance", params=params, headers=headers).json()
    answer = client.get("/reports/performance", params={**params, "format": "pdf"}, headers=headers)
    assert answer.status_code == 200, answer.text
    words = _pdf_text(answer.content, tmp_path)
    by_level = body["total"]["escalations"]["by_level"]
    assert all(by_level.values())
    assert heading in words
    lines = words.splitlines()
    start = next(i for i, line in enumerate(lines) if heading in line)
    table = "\n".join(lines[start : start + 12])
    for level, name in zip(("community", "street", "district"), levels, strict=True):
        row = next(line for line in table.splitlines() if line.split()[:1] == [name])
        assert row.split()[-1] == str(by_level[level]), row
    assert str(body["total"]["escalations"]["escalated"]) in table
    assert all(unit in words for unit in units), units
    assert not any(unit in words for unit in foreign), foreign
    open_label = "Open at" if language == "en" else "时未结"
    line = next(line for line in lines if open_label in line)
    assert line.split()[-1] == str(body["total"]["open_at_as_of"])
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(answer.content)
    subprocess.run(
        ["pdftoppm", "-png", "-r", "60", str(pdf), str(ARTIFACTS / f"{language}_report-levels")],
        check=True,
    )


def test_a_workers_grid_is_named_in_the_json_and_the_pdf(
    client: TestClient, city_with_lifecycles: DemoCity, engine: Engine, tmp_path: Path
) -> None:
    # a fresh user's review: the worker table's grid column showed a code only
    zh = {"Accept-Language": "zh-CN"}
    workers = client.get("/reports/performance", params=PARAMS, headers=zh).json()["workers"]
    assert workers
    with engine.connect() as conn:
        names = dict(
            conn.execute(
                text("SELECT id, coalesce(names ->> 'zh-CN', name) FROM areas WHERE id = ANY(:g)"),
                {"g": sorted({w["grid"]["id"] for w in workers})},
            ).all()
        )
    assert [w["grid"]["name"] for w in workers] == [names[w["grid"]["id"]] for w in workers]
    assert any("网格" in w["grid"]["name"] for w in workers)
    english = client.get("/reports/performance", params=PARAMS).json()["workers"]
    assert all("网格" not in w["grid"]["name"] for w in english)  # names as given, in English
    answer = client.get("/reports/performance", params={**PARAMS, "format": "pdf"}, headers=zh)
    assert answer.status_code == 200, answer.text
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(answer.content)
    words = subprocess.run(
        ["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    joined = "".join(words.split())  # a cell wraps its text
    # the PDF lists the best and the last workers: some of them, each grid named
    named = [f"{w['grid']['name']}({w['grid']['code']})" in joined for w in workers]
    assert any(named), joined[-600:]
