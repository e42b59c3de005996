"""Writing reports: a self-contained HTML page (Jinja2, autoescaped) and one CSV per table.

Everything shown comes from user input somewhere (names, case references, page URLs), so
the templates escape everything, links are only made for http(s) and file URLs, and CSV
cells that a spreadsheet would run as a formula are defused.
"""

from __future__ import annotations

import csv
from pathlib import Path
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, StrictUndefined

from faceledger.reports.charts import report_charts
from faceledger.reports.oversight import Cell, OversightReport, Table
from faceledger.reports.subject import SubjectReport

LINKABLE = frozenset({"http", "https", "file"})
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def link(url: str | None) -> str | None:
    """The URL if it is safe to put in an href, else None (shown as text instead)."""
    return url if url and urlsplit(url).scheme.lower() in LINKABLE else None


def _environment() -> Environment:
    environment = Environment(
        loader=PackageLoader("faceledger", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["link"] = link
    return environment


_ENV = _environment()


def render_oversight(report: OversightReport) -> str:
    return _ENV.get_template("report.html").render(
        report=report,
        summary=report.summary(),
        tables=report.tables(),
        charts=report_charts(report),
    )


def render_subject(report: SubjectReport) -> str:
    return _ENV.get_template("subject.html").render(report=report, counts=report.counts())


def csv_cell(value: Cell) -> Cell:
    """A cell as written to CSV: text a spreadsheet would evaluate gets a leading quote."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def write_csv(table: Table, path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(table.columns)
        writer.writerows([csv_cell(cell) for cell in row] for row in table.rows)
    return path


def write_oversight(report: OversightReport, directory: Path) -> list[Path]:
    """Write DIRECTORY/report.html and DIRECTORY/<table>.csv; return the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    html = directory / "report.html"
    html.write_text(render_oversight(report), encoding="utf-8")
    return [html, *(write_csv(t, directory / f"{t.name}.csv") for t in report.tables())]


def write_subject(report: SubjectReport, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_subject(report), encoding="utf-8")
    return path
