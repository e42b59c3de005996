"""Charts for the oversight report, as PNG embedded in the page (base64 data URIs).

Embedded images keep the report one self-contained file an auditor can archive or mail.
Figures are drawn on matplotlib `Figure` objects with the Agg canvas, never through pyplot,
so no global backend or figure state is touched (safe in a server process too).
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from faceledger.reports.oversight import OversightReport, Table

COLOURS = {
    "done": "#2e7d32",
    "pending": "#f9a825",
    "approved": "#1565c0",
    "denied": "#c62828",
    "refused": "#6d4c41",
    "expired": "#9e9e9e",
    "purged": "#6a1b9a",
}
OTHER = "#607d8b"


@dataclass(frozen=True)
class Chart:
    title: str
    png: bytes

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


def _figure(rows: int) -> Figure:
    """A figure tall enough for `rows` labelled bars."""
    figure = Figure(figsize=(6.4, max(2.2, 0.9 + 0.32 * rows)), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _chart(title: str, figure: Figure) -> Chart:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return Chart(title, buffer.getvalue())


def outcomes_chart(table: Table) -> Chart | None:
    """Stacked horizontal bars: one bar per row of a crosstab, split by outcome."""
    if not table.rows:
        return None
    statuses = table.columns[2:-1]  # (key, searches, *statuses, results)
    labels = [str(row[0]) for row in table.rows][::-1]
    figure = _figure(len(labels))
    axes = figure.add_subplot()
    left = [0] * len(labels)
    for offset, status in enumerate(statuses, start=2):
        values = [int(row[offset] or 0) for row in table.rows][::-1]
        axes.barh(labels, values, left=left, color=COLOURS.get(status, OTHER), label=status)
        left = [a + b for a, b in zip(left, values, strict=True)]
    axes.set_xlabel("searches")
    _integer_ticks(axes)
    figure.legend(loc="outside right upper", fontsize="small")
    axes.spines[["top", "right"]].set_visible(False)
    return _chart(table.title, figure)


def _integer_ticks(axes: Axes) -> None:
    """Counts get whole-number ticks (the default locator is a MaxNLocator)."""
    locator = axes.xaxis.get_major_locator()
    if isinstance(locator, MaxNLocator):
        locator.set_params(integer=True)


def counts_chart(table: Table) -> Chart | None:
    """Plain horizontal bars of a (label, count) table."""
    if not table.rows:
        return None
    labels = [str(row[0]) for row in table.rows][::-1]
    figure = _figure(len(labels))
    axes = figure.add_subplot()
    axes.barh(labels, [int(row[1] or 0) for row in table.rows][::-1], color=COLOURS["refused"])
    axes.set_xlabel(table.columns[1])
    _integer_ticks(axes)
    axes.spines[["top", "right"]].set_visible(False)
    return _chart(table.title, figure)


def delays_chart(report: OversightReport) -> Chart | None:
    """Each decision as a dot on a log time axis, with the rubber-stamping line drawn in."""
    if not report.decisions:
        return None
    kinds = sorted({decision.decision for decision in report.decisions})
    figure = _figure(len(kinds) + 2)
    axes = figure.add_subplot()
    for row, kind in enumerate(kinds):
        waits = [max(d.waited_seconds, 0.1) for d in report.decisions if d.decision == kind]
        axes.scatter(waits, [row] * len(waits), color=COLOURS.get(kind, OTHER), alpha=0.7)
    limit = report.rules.quick_approval_seconds
    axes.axvline(limit, color=COLOURS["denied"], linestyle="--", linewidth=1)
    axes.annotate(f"{limit:g} s", (limit, len(kinds) - 0.5), color=COLOURS["denied"])
    axes.set_xscale("log")
    axes.set_yticks(range(len(kinds)), kinds)
    axes.set_ylim(-0.7, len(kinds) - 0.3)
    axes.set_xlabel("seconds from request to decision")
    axes.spines[["top", "right"]].set_visible(False)
    return _chart("Time to decision", figure)


def report_charts(report: OversightReport) -> list[Chart]:
    """The charts of the report's main tables, skipping those with nothing to show."""
    tables = {table.name: table for table in report.tables()}
    drawn = [
        outcomes_chart(tables["by_day"]),
        outcomes_chart(tables["by_user"]),
        outcomes_chart(tables["by_purpose"]),
        outcomes_chart(tables["by_collection"]),
        counts_chart(tables["refusals"]),
        delays_chart(report),
    ]
    return [chart for chart in drawn if chart is not None]
