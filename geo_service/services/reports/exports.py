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
    return None if r["rate"] is None else round(100 * r["rate"], 1)


def flat_row(kind: str, item: dict[str, Any]) -> dict[str, Any]:
    """One area, worker or the total as a flat row of named columns (the CSV/XLSX table)."""
    row: dict[str, Any] = {
        "kind": kind,
        "id": item.get("id", item.get("responder_id")),
        "code": item.get("code", item.get("callsign")),
        "name": item.get("name", (item.get("grid") or {}).get("code")),
        "received": item["received"],
    }
    for source, n in item["by_source"].items():
        row[f"source_{source}"] = n
    row |= {k: item[k] for k in ("handled", "closed", "cancelled", "open")}
    closure = item["closure_rate"]
    row |= {
        "closure_rate_pct": _pct(closure),
        "closure_low_pct": None if closure["low"] is None else round(100 * closure["low"], 1),
        "closure_high_pct": None if closure["high"] is None else round(100 * closure["high"], 1),
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
    return {k: _safe(v) for k, v in row.items()}


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60, 1)


def report_table(report: dict[str, Any]) -> pd.DataFrame:
    """The areas, then the total, then the grid workers, one row each."""
    rows = [flat_row("area", a) for a in report["areas"]]
    rows.append(flat_row("total", {**report["total"], "code": "", "name": ""}))
    rows += [flat_row("worker", w) for w in report["workers"]]
    return pd.DataFrame(rows)


def to_csv(report: dict[str, Any]) -> bytes:
    """The report table as CSV, UTF-8 with a byte-order mark."""
    return report_table(report).to_csv(index=False).encode("utf-8-sig")


def to_xlsx(report: dict[str, Any]) -> bytes:
    """The report as a workbook: ``report`` (areas, total, workers), ``weeks``, ``months``
    and ``rankings`` sheets."""
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        report_table(report).to_excel(writer, sheet_name="report", index=False)
        for unit in ("weeks", "months"):
            _trend_table(report["trends"][unit]).to_excel(writer, sheet_name=unit, index=False)
        ranks = [
            {"ranking": name, **{k: _safe(v) for k, v in entry.items()}}
            for name, entries in report["rankings"].items()
            for entry in entries
        ]
        pd.DataFrame(ranks).to_excel(writer, sheet_name="rankings", index=False)
    return buffer.getvalue()


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
            }
            for r in rows
        ],
        columns=[
            "start",
            "whole",
            "received",
            "closed",
            "closure_rate_pct",
            "on_time_resolution_pct",
            "on_time_resolution_n",
        ],
    )


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
    story: list[Any] = [
        Paragraph(esc(title), heading),
        Paragraph(
            esc(
                f"{words['period']}: {report['since'][:10]} – {report['until'][:10]} "
                f"({report['timezone']}); {words['as_of']} {report['as_of'][:16]}"
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
        [words["reopened"], total["reopened"], words["open"], total["open"]],
    ]
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
                _duration(data["times"]["median_s"]),
                _duration(data["times"]["p90_s"]),
            ]
        )
    story.append(_table(stage_rows, name))
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
        chart.categoryAxis.categoryNames = [
            p["start"][5:] if unit == "weeks" else p["start"][:7] for p in periods
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
                _duration(a["on_time"]["resolution"]["times"]["median_s"]),
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
    if report["workers"]:
        story.append(Paragraph(esc(words["workers"]), sub))
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
        for w in report["workers"]:
            worker_rows.append(
                [
                    w["callsign"],
                    w["grid"]["code"],
                    w["received"],
                    w["closed"],
                    _rate_text(w["on_time"]["resolution"]["all"]),
                    _duration(w["on_time"]["resolution"]["times"]["median_s"]),
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


def _pct_text(r: dict[str, Any]) -> str:
    return "–" if r["rate"] is None else f"{100 * r['rate']:.0f}%"


def _rate_text(r: dict[str, Any]) -> str:
    """``85% (78–90%, n=120)``; a small denominator is marked ``*``."""
    if r["rate"] is None:
        return "–"
    mark = "*" if r["small_sample"] else ""
    return (
        f"{100 * r['rate']:.0f}%{mark} ({100 * r['low']:.0f}–{100 * r['high']:.0f}%, "
        f"n={r['denominator']})"
    )


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"
