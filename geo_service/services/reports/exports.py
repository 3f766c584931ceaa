"""The performance report as files: CSV (UTF-8 with a byte-order mark, so Excel on a Chinese
Windows opens it right), XLSX (openpyxl) and an A4 PDF (ReportLab) with a CJK font.

Every figure comes from ``performance.performance``'s answer; nothing is counted here.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pandas as pd

from geo_service.errors import MissingFontError
from geo_service.i18n import gettext
from geo_service.services.reports.labels import localized_labels
from geo_service.services.reports.periods import local_stamp, percent_text, period_text

# Where a TrueType CJK font is found (Debian's fonts-wqy-microhei first; GEO_REPORTS_FONT
# names another). ReportLab embeds TrueType outlines only, so OpenType/CFF fonts such as
# Noto Sans CJK cannot be used.
CJK_FONTS = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
)
# A cell a spreadsheet would run as a formula gets a leading apostrophe (OWASP CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _safe(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _pct(r: dict[str, Any]) -> float | None:
    # two decimals: 77,064 of 77,344 is 99.64, not a rounded 100
    return None if r["rate"] is None else round(100 * r["rate"], 2)


def _share(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 2)


def flat_row(
    kind: str, item: dict[str, Any], report: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One area, worker or the total as a flat row of named columns (the CSV/XLSX table).

    ``kind`` is ``area``, ``total`` or ``worker``; ``id`` is the area's id or the
    worker's responder id; ``code`` and ``name`` are the area's (empty for a worker);
    ``worker_callsign``, ``grid_id`` and ``grid_code`` (the worker's home grid) are set on
    worker rows only. With ``report``, the window and ``as_of`` close the row as local
    date-times with their offset."""
    worker = kind == "worker"
    grid = item.get("grid") or {}
    row: dict[str, Any] = {
        "kind": kind,
        "id": item.get("responder_id") if worker else item.get("id"),
        "code": None if worker else item.get("code"),
        "name": None if worker else item.get("name"),
        "worker_callsign": item.get("callsign") if worker else None,
        "grid_id": grid.get("id"),
        "grid_code": grid.get("code"),
        "received": item["received"],
    }
    for source, n in item["by_source"].items():
        row[f"source_{source}"] = n
    row |= {k: item[k] for k in ("handled", "closed", "cancelled", "open")}
    closure = item["closure_rate"]
    row |= {
        "closure_rate_pct": _pct(closure),
        "closure_low_pct": _share(closure["low"]),
        "closure_high_pct": _share(closure["high"]),
    }
    for stage, data in item["on_time"].items():
        row[f"on_time_{stage}_pct"] = _pct(data["all"])
        row[f"on_time_{stage}_n"] = data["all"]["denominator"]
        for tier, r in data["tiers"].items():
            row[f"on_time_{stage}_p{tier}_pct"] = _pct(r)
        row[f"{stage}_median_min"] = _minutes(data["times"]["median_s"])
        row[f"{stage}_p90_min"] = _minutes(data["times"]["p90_s"])
    row["escalated"] = item["escalations"]["escalated"]
    for level, n in item["escalations"]["by_level"].items():
        row[f"escalated_to_{level}"] = n
    row["resolved_in_grid_pct"] = _pct(item["resolved_in_grid"])
    row["resolved_in_community_pct"] = _pct(item["resolved_in_community"])
    row["disputes"] = item["disputes"]["received"]
    row["disputes_mediated_pct"] = _pct(item["disputes"]["mediated"])
    row["reopened"] = item["reopened"]
    for band, n in item["backlog"].items():
        row[f"backlog_{band}"] = n
    visits = item.get("visits")  # areas and the total (published counts); not workers
    row["visit_households"] = visits["households"] if visits else None
    row["visit_visited"] = visits["visited"] if visits else None
    row["visit_coverage_pct"] = _share(visits["coverage"]) if visits else None
    row["open_at_as_of"] = item["open_at_as_of"]  # added late: earlier columns keep their places
    if report is not None:
        row |= {k: report[k] for k in ("since", "until", "as_of")}
    return {k: _safe(v) for k, v in row.items()}


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60, 1)


# whole numbers that a missing value would turn into floats ("247.0") in pandas
_INTEGER_COLUMNS = ("id", "grid_id", "visit_households", "visit_visited")


def report_table(report: dict[str, Any]) -> pd.DataFrame:
    """The areas, then the total, then the grid workers, one row each (``flat_row``); ids as
    integers."""
    rows = [flat_row("area", a, report) for a in report["areas"]]
    rows.append(flat_row("total", {**report["total"], "code": "", "name": ""}, report))
    rows += [flat_row("worker", w, report) for w in report["workers"]]
    table = pd.DataFrame(rows)
    return table.astype({c: "Int64" for c in _INTEGER_COLUMNS if c in table})


def to_csv(report: dict[str, Any]) -> bytes:
    """The report table as CSV, UTF-8 with a byte-order mark; the header is the stable
    column keys (``flat_row``), for programs."""
    return report_table(report).to_csv(index=False).encode("utf-8-sig")


def to_xlsx(report: dict[str, Any], words: dict[str, str] | None = None) -> bytes:
    """The report as a workbook: ``report`` (areas, total, workers), ``weeks``, ``months``
    and ``rankings`` sheets. On every sheet row 1 names the columns in the request's
    language (``words``, default ``labels.localized_labels()``), row 2 (hidden) holds the
    stable keys of the CSV (``pd.read_excel(..., header=1)`` reads by key), rows from 3 the
    data; percentages show with up to two decimals."""
    words = words or localized_labels()
    buffer = io.BytesIO()
    ranks = [
        {"ranking": name, **{k: _safe(v) for k, v in entry.items()}}
        for name, entries in report["rankings"].items()
        for entry in entries
    ]
    sheets = {
        "report": report_table(report),
        "weeks": _trend_table(report["trends"]["weeks"]),
        "months": _trend_table(report["trends"]["months"]),
        "rankings": pd.DataFrame(ranks),
    }
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        for sheet, table in sheets.items():
            table.to_excel(writer, sheet_name=sheet, index=False, startrow=1)
            _label_header(writer.sheets[sheet], list(table.columns), words)
    return buffer.getvalue()


def _label_header(sheet: Any, keys: list[str], words: dict[str, str]) -> None:
    """Row 1: the columns' labels; row 2 (written by pandas): the keys, hidden; percentage
    columns in a number format that keeps 99.64 from reading 100."""
    from openpyxl.styles import Font

    for i, key in enumerate(keys, start=1):
        cell = sheet.cell(row=1, column=i, value=column_label(key, words))
        cell.font = Font(bold=True)
        if key.endswith("_pct") or key in ("rate", "low", "high"):
            fmt = "0.0#" if key.endswith("_pct") else "0.0##%"
            for (data,) in sheet.iter_rows(min_row=3, min_col=i, max_col=i):
                data.number_format = fmt
    sheet.row_dimensions[2].hidden = True
    sheet.freeze_panes = "A3"


_TREND_COLUMNS = [
    "start",
    "whole",
    "received",
    "closed",
    "closure_rate_pct",
    "on_time_resolution_pct",
    "on_time_resolution_n",
    "partial",  # added last: earlier columns keep their places
    "days",
    "period_days",
]


def _trend_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "start": r["start"],
                "whole": r["whole"],
                "received": r["received"],
                "closed": r["closed"],
                "closure_rate_pct": _pct(r["closure_rate"]),
                "on_time_resolution_pct": _pct(r["on_time_resolution"]),
                "on_time_resolution_n": r["on_time_resolution"]["denominator"],
                "partial": r["partial"],
                "days": r["days"],
                "period_days": r["period_days"],
            }
            for r in rows
        ],
        columns=_TREND_COLUMNS,
    )


def column_label(key: str, words: dict[str, str]) -> str:
    """The label of a report column ``key`` in the language of ``words``
    (``labels.localized_labels()``); the key itself when it has none."""
    w = words.get
    stage = {s: w(f"stage_{s}", s) for s in ("dispatch", "arrival", "resolution")}
    fixed = {
        "kind": w("col_kind", key),
        "id": "ID",
        "code": w("code", key),
        "name": w("name", key),
        "worker_callsign": w("callsign", key),
        "grid_id": f"{w('grid', 'grid')} ID",
        "grid_code": w("grid", key),
        "cancelled": w("col_cancelled", key),
        "open": w("open", key),
        "closure_rate_pct": f"{w('closure_rate', key)} (%)",
        "closure_low_pct": f"{w('closure_rate', key)} {w('col_low', 'low')} (%)",
        "closure_high_pct": f"{w('closure_rate', key)} {w('col_high', 'high')} (%)",
        "escalated": w("col_escalated", key),
        "resolved_in_grid_pct": f"{w('resolved_in_grid', key)} (%)",
        "resolved_in_community_pct": f"{w('resolved_in_community', key)} (%)",
        "disputes_mediated_pct": f"{w('mediated', key)} (%)",
        "visit_households": w("visit_households", key),
        "visit_visited": w("visit_visited", key),
        "visit_coverage_pct": f"{w('visit_coverage', key)} (%)",
        "since": w("from", key),
        "until": w("col_until", key),
        "as_of": w("as_of", key),
        "start": w("col_start", key),
        "whole": w("col_whole", key),
        "partial": w("col_partial", key),
        "days": w("col_days", key),
        "period_days": w("col_period_days", key),
        "on_time_resolution_pct": f"{w('on_time_resolution', key)} (%)",
        "on_time_resolution_n": f"{w('on_time_resolution', key)} n",
        "ranking": w("col_ranking", key),
        "rank": w("col_rank", key),
        "rate": w("col_rate", key),
        "low": w("col_low", key),
        "high": w("col_high", key),
        "denominator": "n",
        "small_sample": w("small_sample", key),
    }
    if key in fixed:
        return fixed[key]
    if key in words:
        return words[key]
    parts = key.split("_")
    if key.startswith("source_"):
        return f"{w('source', 'source')}: {w(key[7:], key[7:])}"
    if key.startswith("backlog_"):
        return f"{w('backlog', 'backlog')} {key[8:]}"
    if key.startswith("escalated_to_"):
        return f"{w('col_escalated', 'escalated')}: {w('level_' + key[13:], key[13:])}"
    if key.startswith("on_time_") and parts[2] in stage:
        head = f"{w('on_time', 'on time')}: {stage[parts[2]]}"
        if parts[3] == "n":
            return f"{head} n"
        if parts[3].startswith("p") and parts[3][1:].isdigit():
            return f"{head} {parts[3].upper()} (%)"
        return f"{head} (%)"
    if parts[0] in stage and len(parts) == 3:
        what = w("median", "median") if parts[1] == "median" else w("p90", "p90")
        return f"{stage[parts[0]]}: {what} ({w('unit_min', 'min')})"
    return key


def cjk_font(configured: str | None = None) -> Path:
    """The TrueType font the PDF is set in (it holds Chinese); MissingFontError (503) when
    none is installed (``scripts/install_system_deps.sh`` installs fonts-wqy-microhei)."""
    for candidate in (configured, *CJK_FONTS):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise MissingFontError(
        gettext(
            "no CJK TrueType font for the PDF: install fonts-wqy-microhei or set GEO_REPORTS_FONT"
        )
    )


def to_pdf(report: dict[str, Any], *, title: str, font: str | None = None) -> bytes:
    """The report as an A4 PDF: the period and key figures, weekly received and closed as a
    bar chart, the areas' table (closure and on-time rates with their 95% Wilson intervals,
    a small denominator marked) and the grid workers'. ``title`` names the area; the words
    are in the current language (``labels.localized_labels``)."""
    from reportlab.graphics.charts.barcharts import VerticalBarChart
    from reportlab.graphics.shapes import Drawing, String
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer

    path = cjk_font(font)
    name = "ReportCJK"
    if name not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont(name, str(path), subfontIndex=0))
    body = ParagraphStyle("body", fontName=name, fontSize=9, leading=12)
    heading = ParagraphStyle("heading", fontName=name, fontSize=15, leading=20, spaceAfter=4)
    sub = ParagraphStyle("sub", fontName=name, fontSize=11, leading=15, spaceBefore=8)

    esc = _escape
    words = localized_labels()
    total = report["total"]
    tz = report["timezone"]
    story: list[Any] = [
        Paragraph(esc(title), heading),
        Paragraph(
            esc(
                f"{words['period']}: {period_text(report['since'], report['until'], tz)} "
                f"({tz}); {words['as_of']} {local_stamp(report['as_of'], tz)}"
            ),
            body,
        ),
        Spacer(1, 3 * mm),
    ]
    key_rows = [
        [words["received"], total["received"], words["closed"], total["closed"]],
        [
            words["closure_rate"],
            _rate_text(total["closure_rate"]),
            words["on_time_resolution"],
            _rate_text(total["on_time"]["resolution"]["all"]),
        ],
        [
            words["resolved_in_grid"],
            _rate_text(total["resolved_in_grid"]),
            words["resolved_in_community"],
            _rate_text(total["resolved_in_community"]),
        ],
        [
            words["disputes"],
            total["disputes"]["received"],
            words["mediated"],
            _rate_text(total["disputes"]["mediated"]),
        ],
        [
            words["reopened"],
            total["reopened"],
            words["open_at"].format(as_of=local_stamp(report["as_of"], tz)),
            total["open_at_as_of"],
        ],
    ]
    visits = total.get("visits")
    if visits:  # published counts (issue 20): rounded unless the reader may see the rows
        key_rows.append(
            [
                words["visit_coverage"],
                "–" if visits["coverage"] is None else percent_text(visits["coverage"]),
                words["visit_period"].format(days=visits["period_days"]),
                f"{visits['visited']} / {visits['households']}",
            ]
        )
    for source, n in total["by_source"].items():
        key_rows.append([words["source"] + ": " + words.get(source, source), n, "", ""])
    story.append(_table(key_rows, name, header=False, widths=[45 * mm, 45 * mm, 45 * mm, 45 * mm]))
    story.append(Paragraph(esc(words["stages"]), sub))
    stage_rows = [
        [
            words["stage"],
            words["on_time"],
            "P1",
            "P2",
            "P3",
            "P4",
            words["median"],
            words["p90"],
        ]
    ]
    for stage, data in total["on_time"].items():
        stage_rows.append(
            [
                words[f"stage_{stage}"],
                _rate_text(data["all"]),
                *(_pct_text(data["tiers"][t]) for t in ("1", "2", "3", "4")),
                _duration(data["times"]["median_s"], words),
                _duration(data["times"]["p90_s"], words),
            ]
        )
    story.append(_table(stage_rows, name))
    # escalations by level, as the page's chart and the API's escalations.by_level
    story.append(Paragraph(esc(words["escalations"]), sub))
    escalation_rows = [[words["level"], words["col_escalations"]]]
    for level, n in total["escalations"]["by_level"].items():
        escalation_rows.append([words.get(f"level_{level}", level), n])
    escalation_rows.append([words["escalated_incidents"], total["escalations"]["escalated"]])
    story.append(_table(escalation_rows, name, widths=[60 * mm, 30 * mm]))
    # a dozen weeks read at a glance; a longer window by month
    unit = "weeks" if len(report["trends"]["weeks"]) <= 16 else "months"
    periods = report["trends"][unit]
    if periods:
        story.append(
            Paragraph(esc(words["weekly_trend" if unit == "weeks" else "monthly_trend"]), sub)
        )
        drawing = Drawing(170 * mm, 55 * mm)
        chart = VerticalBarChart()
        chart.x, chart.y, chart.width, chart.height = 12 * mm, 8 * mm, 150 * mm, 42 * mm
        chart.data = [[p["received"] for p in periods], [p["closed"] for p in periods]]
        # a partial period (cut by the window, or not over) is marked * and drawn pale
        chart.categoryAxis.categoryNames = [
            (p["start"][5:] if unit == "weeks" else p["start"][:7]) + ("*" if p["partial"] else "")
            for p in periods
        ]
        chart.categoryAxis.labels.fontName = name
        chart.categoryAxis.labels.fontSize = 6
        chart.categoryAxis.labels.angle = 35
        chart.categoryAxis.labels.boxAnchor = "ne"
        chart.valueAxis.labels.fontName = name
        chart.valueAxis.labels.fontSize = 7
        chart.valueAxis.valueMin = 0
        chart.bars[0].fillColor = colors.HexColor("#5470c6")
        chart.bars[1].fillColor = colors.HexColor("#91cc75")
        for i, p in enumerate(periods):
            if p["partial"]:
                chart.bars[(0, i)].fillColor = colors.HexColor("#c6d2ee")
                chart.bars[(1, i)].fillColor = colors.HexColor("#d3ebc8")
        drawing.add(chart)
        for i, (key, colour) in enumerate((("received", "#5470c6"), ("closed", "#91cc75"))):
            drawing.add(
                String(
                    (14 + 30 * i) * mm,
                    52 * mm,
                    f"■ {words[key]}",
                    fontName=name,
                    fontSize=7,
                    fillColor=colors.HexColor(colour),
                )
            )
        story.append(drawing)
        if any(p["partial"] for p in periods):
            story.append(Paragraph(esc(words["partial_mark"]), body))
    story.append(Paragraph(esc(words["areas"]), sub))
    area_rows = [
        [
            words["code"],
            words["name"],
            words["received"],
            words["closed"],
            words["closure_rate"],
            words["on_time_resolution"],
            words["median"],
            words["backlog"],
        ]
    ]
    for a in report["areas"]:
        area_rows.append(
            [
                a["code"],
                a["name"],
                a["received"],
                a["closed"],
                _rate_text(a["closure_rate"]),
                _rate_text(a["on_time"]["resolution"]["all"]),
                _duration(a["on_time"]["resolution"]["times"]["median_s"], words),
                sum(a["backlog"].values()),
            ]
        )
    story.append(
        _table(
            area_rows,
            name,
            widths=[30 * mm, 34 * mm, 16 * mm, 14 * mm, 28 * mm, 28 * mm, 16 * mm, 14 * mm],
        )
    )
    workers, cut = pdf_workers(report)
    if workers:
        story.append(Paragraph(esc(words["workers"]), sub))
        if cut:
            ranked = len(report["rankings"]["workers_on_time_resolution"])
            story.append(Paragraph(esc(words["workers_cut"].format(n=ranked, k=cut)), body))
        unranked = report["rankings"].get("workers_not_ranked", [])
        if unranked and len(report["workers"]) > WORKERS_SHOWN:
            story.append(Paragraph(esc(words["not_ranked"].format(n=len(unranked))), body))
        worker_rows = [
            [
                words["callsign"],
                words["grid"],
                words["assigned"],
                words["closed"],
                words["on_time_resolution"],
                words["median"],
                words["discovered"],
            ]
        ]
        for w in workers:
            if w is None:  # between the best and the last
                worker_rows.append(["…", "", "", "", "", "", ""])
                continue
            worker_rows.append(
                [
                    w["callsign"],
                    f"{w['grid']['name']} ({w['grid']['code']})",  # the name, and its code
                    w["received"],
                    w["closed"],
                    _rate_text(w["on_time"]["resolution"]["all"]),
                    _duration(w["on_time"]["resolution"]["times"]["median_s"], words),
                    w["discovered_in_grid"],
                ]
            )
        story.append(_table(worker_rows, name))
    story.append(Spacer(1, 3 * mm))
    story.append(Paragraph(esc(words["pdf_note"]), body))
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=15 * mm,
        bottomMargin=15 * mm,
        title=title,
        author="geo-service",
    )

    def footer(canvas: Any, document: Any) -> None:
        canvas.saveState()
        canvas.setFont(name, 7)
        canvas.setFillColor(colors.grey)
        canvas.drawString(15 * mm, 8 * mm, f"geo-service · {title}")
        canvas.drawRightString(A4[0] - 15 * mm, 8 * mm, str(document.page))
        canvas.restoreState()

    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()


def _table(rows: list[list[Any]], font: str, header: bool = True, widths: Any = None) -> Any:
    """A table whose every cell is a paragraph of escaped text (wrapped in its column; a
    value from the database is never read as ReportLab markup)."""
    from reportlab.lib import colors
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.platypus import Paragraph, Table, TableStyle

    style = ParagraphStyle("cell", fontName=font, fontSize=7.5, leading=9)
    cells = [[Paragraph(_escape(cell), style) for cell in row] for row in rows]
    table = Table(cells, colWidths=widths, repeatRows=1 if header else 0)
    looks = [
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
    ]
    if header:
        looks.append(("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eef1f6")))
    table.setStyle(TableStyle(looks))
    return table


def _escape(value: Any) -> str:
    """Text for a ReportLab paragraph: its markup characters escaped."""
    text = "" if value is None else str(value)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# A PDF lists every worker up to this many, else the best and the last WORKERS_SHOWN / 2
# by the ranking on resolution on time (the CSV and XLSX keep every row).
WORKERS_SHOWN = 20


def pdf_workers(report: dict[str, Any]) -> tuple[list[dict[str, Any] | None], int]:
    """The workers a PDF lists: all of them up to ``WORKERS_SHOWN``; beyond, the ranked ones
    (workers with no case to rate are counted apart, never in the last ten): all of them up
    to ``WORKERS_SHOWN``, else the first and the last ``WORKERS_SHOWN // 2`` by the ranking
    on resolution on time (``None`` marks the gap), and how many of each end are shown (0:
    all)."""
    workers = report["workers"]
    if len(workers) <= WORKERS_SHOWN:
        return list(workers), 0
    by_id = {w["responder_id"]: w for w in workers}
    order = [by_id[r["id"]] for r in report["rankings"]["workers_on_time_resolution"]]
    if len(order) <= WORKERS_SHOWN:
        return order, 0
    k = WORKERS_SHOWN // 2
    return [*order[:k], None, *order[-k:]], k


def _pct_text(r: dict[str, Any]) -> str:
    return "–" if r["rate"] is None else percent_text(r["rate"])


def _rate_text(r: dict[str, Any]) -> str:
    """``99.6% (99.5–99.6%, n=77344)``; a small denominator is marked ``*``."""
    if r["rate"] is None:
        return "–"
    mark = "*" if r["small_sample"] else ""
    low, high = percent_text(r["low"])[:-1], percent_text(r["high"])
    return f"{percent_text(r['rate'])}{mark} ({low}–{high}, n={r['denominator']})"


def _duration(seconds: float | None, words: dict[str, str]) -> str:
    """A stage's time in minutes, hours or days, the unit in the language of ``words``.

    >>> _duration(5400, {"duration_h": "{n} 小时"}), _duration(None, {})
    ('1.5 小时', '–')
    """
    if seconds is None:
        return "–"
    if seconds < 3600:
        return words["duration_min"].format(n=f"{seconds / 60:.0f}")
    if seconds < 2 * 86400:
        return words["duration_h"].format(n=f"{seconds / 3600:.1f}")
    return words["duration_days"].format(n=f"{seconds / 86400:.1f}")
