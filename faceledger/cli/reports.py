"""`faceledger report` (oversight) and `faceledger subject report` (data-subject access).

Both are for auditors and admins, and both are ledgered: the entry is appended before the
files are written and committed after, so a report that failed to write leaves no entry.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from rich.markup import escape
from rich.table import Table

from faceledger.cli.app import (
    JsonOption,
    app,
    out,
    settings_of,
)
from faceledger.cli.auth import acting_user
from faceledger.errors import BadInput
from faceledger.ledger import keys
from faceledger.reports.oversight import OversightReport, oversight_report
from faceledger.reports.records import Period
from faceledger.reports.render import write_oversight, write_subject
from faceledger.reports.signals import SignalRules
from faceledger.reports.subject import SubjectReport, subject_report
from faceledger.workspace import Workspace

DAY = ["%Y-%m-%d"]

subject_app = typer.Typer(help="Data-subject access requests.", no_args_is_help=True)
app.add_typer(subject_app, name="subject")


def _print_oversight(report: OversightReport, html: Path) -> None:
    period = report.period
    title = f"Oversight report {period.start.date()} to {period.end.date()} (end excluded)"
    table = Table("figure", "value", title=title)
    for key, value in report.summary().items():
        table.add_row(key.replace("_", " "), escape(str(value)))
    out.print(table)
    for signal in report.signals:
        entries = ", ".join(map(str, signal.seqs))
        out.print(f"[bold red]signal:[/] {escape(signal.summary)} (ledger entries {entries})")
    if not report.ledger.ok:
        out.print(f"[bold red]ledger does not verify:[/] {escape(report.ledger.problem or '')}")
    out.print(f"Written to {escape(str(html))} (and one CSV per table beside it)")


@app.command("report")
def report(
    ctx: typer.Context,
    start: Annotated[
        datetime, typer.Option("--from", formats=DAY, help="First day (UTC) included.")
    ],
    end: Annotated[
        datetime, typer.Option("--to", formats=DAY, help="First day (UTC) no longer included.")
    ],
    directory: Annotated[
        Path, typer.Option("--out", file_okay=False, help="Folder for report.html and CSVs.")
    ],
    zone: Annotated[
        str, typer.Option("--timezone", help="Zone of the working hours (07:00-20:00).")
    ] = "UTC",
    as_json: JsonOption = False,
) -> None:
    """Oversight report for [FROM, TO): use, outcomes, people affected, misuse signals."""
    settings = settings_of(ctx)
    try:
        period = Period.days(start.date(), end.date())
        rules = SignalRules(zone=ZoneInfo(zone), same_face_threshold=settings.match_threshold)
    except (ValueError, ZoneInfoNotFoundError) as error:
        raise BadInput(str(error)) from None
    with Workspace(settings).sessions() as session:
        actor = acting_user(session)
        made = oversight_report(
            session, actor, period, public_key=keys.existing_public_key(settings), rules=rules
        )
        files = write_oversight(made, directory)
        session.commit()
    if as_json:
        print(json.dumps({**made.as_dict(), "files": [str(path) for path in files]}))
    else:
        _print_oversight(made, files[0])


def _print_subject(made: SubjectReport, path: Path) -> None:
    out.print(", ".join(f"{key}: {value}" for key, value in made.counts().items()))
    if made.opted_out_since:
        out.print(f"opted out since {made.opted_out_since.date()}")
    out.print(f"Written to {escape(str(path))}")


@subject_app.command("report")
def subject_report_command(
    ctx: typer.Context,
    photo: Annotated[
        Path, typer.Argument(help="A photo of the person.", exists=True, dir_okay=False)
    ],
    path: Annotated[Path, typer.Option("--out", dir_okay=False, help="The HTML file to write.")],
    face: Annotated[
        int | None, typer.Option("--face", help="Which face of the photo (1-based).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Where this person's face is held and which searches returned it (who, when, why)."""
    from faceledger.faces.pipeline import FacePipeline

    settings = settings_of(ctx)
    workspace = Workspace(settings)
    with workspace.sessions() as session:
        actor = acting_user(session)
        made = subject_report(
            workspace,
            FacePipeline(settings, threads=2),
            session,
            actor,
            photo.read_bytes(),
            face=face,
        )
        write_subject(made, path)
        session.commit()
    if as_json:
        print(json.dumps({**made.as_dict(), "file": str(path)}))
    else:
        _print_subject(made, path)
