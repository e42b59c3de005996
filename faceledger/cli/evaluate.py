"""`faceledger eval`: accuracy on labelled data (verification, identification, ages)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from faceledger.cli.app import (
    JsonOption,
    WorkersOption,
    app,
    out,
    progress_bar,
    settings_of,
)
from faceledger.errors import NotFound
from faceledger.evaluate import runner

eval_app = typer.Typer(help="Measure accuracy on labelled data.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")


def _run(
    description: str,
    job: Callable[[runner.Progress], dict[str, Any]],
    as_json: bool,
    hide: tuple[str, ...] = (),
) -> None:
    """Run an evaluation under a progress bar, then print its report (a table, or JSON)."""
    with progress_bar() as progress:
        task = progress.add_task(description, total=None, status="")
        report = job(lambda done, total: progress.update(task, completed=done, total=total))
    if as_json:
        print(json.dumps(report))
        return
    table = Table("measure", "value")
    for key, value in report.items():
        if key not in hide:
            table.add_row(key, json.dumps(value))
    out.print(table)


@eval_app.command("verify")
def eval_verify(
    ctx: typer.Context,
    pairs: Annotated[Path, typer.Argument(help="CSV with left,right,same.", exists=True)],
    workers: WorkersOption = None,
    as_json: JsonOption = False,
) -> None:
    """Verification accuracy on a pairs file (cross-validated over its folds), AUC, TAR@FAR."""
    settings = settings_of(ctx)
    count = workers or settings.workers
    _run("embedding", lambda update: runner.verify(pairs, settings, count, update), as_json)


@eval_app.command("identify")
def eval_identify(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Argument(help="Folder of Person/*.jpg.", exists=True)],
    workers: WorkersOption = None,
    as_json: JsonOption = False,
) -> None:
    """Open-set identification: rank-1, rank-5 and false match rate at the default threshold."""
    settings = settings_of(ctx)
    count = workers or settings.workers
    _run("embedding", lambda update: runner.identify(folder, settings, count, update), as_json)


@eval_app.command("age")
def eval_age(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Argument(help="Folder with labels.csv (file,age,...).")],
    as_json: JsonOption = False,
) -> None:
    """Age error and the minors gate's decision for every labelled face."""
    if not (folder / "labels.csv").is_file():
        raise NotFound(f"{folder} has no labels.csv")
    settings = settings_of(ctx)
    _run(
        "estimating ages",
        lambda update: runner.ages(folder, settings, progress=update),
        as_json,
        hide=("files",),
    )
