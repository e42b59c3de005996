"""The Typer application and what every command shares: settings, errors, output, progress."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from faceledger.config import Settings, load_settings

# Exit statuses, stable for scripts: refusals (no face, a minor, policy) share one status;
# 2 is a usage error, as click reports its own (a value given is not acceptable).
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_AUTH = 4
EXIT_CHOOSE_FACE = 5
EXIT_BAD_IMAGE = 6
EXIT_NOT_FOUND = 7

app = typer.Typer(
    help="faceledger: a self-hosted face search engine with a ledger.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

err = Console(stderr=True)
out = Console()

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object for machines.")]
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


def fail(message: str, code: int, as_json: bool, **extra: Any) -> typer.Exit:
    if as_json:
        print(json.dumps({"error": extra.pop("error", "error"), "message": message, **extra}))
    else:
        err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


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
