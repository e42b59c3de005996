"""The Typer application and what every command shares: settings, errors, output, progress.

Commands raise `faceledger.errors.FaceledgerError`s and never print or exit for them: the
root group (`_Commands`) turns any of them into its answer and exit status in one place.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from typer._click.core import Context as ClickContext  # the click Typer (pinned) ships
from typer.core import TyperGroup

from faceledger.config import Settings, load_settings
from faceledger.errors import FaceledgerError

err = Console(stderr=True)
out = Console()

# Where `--json` leaves its value: `ctx.meta` is one dict shared by a command's contexts.
_JSON = "faceledger.json"


def _remember_json(ctx: typer.Context, value: bool) -> bool:
    ctx.meta[_JSON] = value
    return value


JsonOption = Annotated[
    bool,
    typer.Option("--json", help="Print one JSON object for machines.", callback=_remember_json),
]


def error_exit(error: FaceledgerError, as_json: bool) -> typer.Exit:
    """Print `error` as its answer (JSON on stdout, or a line on stderr) and give its exit.

    With several faces to choose from, the line comes with a table of them.
    """
    if as_json:
        print(json.dumps(error.as_dict()))
        return typer.Exit(error.exit_status)
    faces: list[dict[str, Any]] = error.details.get("faces", [])
    if faces:
        table = Table("face", "box (left, top, width, height)", "estimated age")
        for face in faces:
            table.add_row(str(face["face"]), str(face["box"]), f"{face['estimated_age']:.0f}")
        err.print(table)
    err.print(f"[bold red]error:[/] {escape(str(error))}")
    return typer.Exit(error.exit_status)


class _Commands(TyperGroup):
    """The root group: every command runs inside it, so its errors all end up here."""

    def invoke(self, ctx: ClickContext) -> Any:
        try:
            return super().invoke(ctx)
        except FaceledgerError as error:
            raise error_exit(error, bool(ctx.meta.get(_JSON))) from None


app = typer.Typer(
    cls=_Commands,
    help="faceledger: a self-hosted face search engine with a ledger.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
WorkersOption = Annotated[
    int | None, typer.Option("--workers", "-w", help="Worker processes (default: all cores).")
]


def settings_of(ctx: typer.Context) -> Settings:
    return ctx.obj


@app.callback()
def main(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", envvar="FACELEDGER_DATA_DIR", help="Where data is kept."),
    ] = None,
) -> None:
    ctx.obj = load_settings(data_dir)


def progress_bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    )
