"""Commands over the accountable search service: search, requests, reviews, evidence.

Every command authenticates the acting person first and then calls one service method;
what is allowed, what is refused and what is ledgered is the service's decision.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from faceledger.cli.app import (
    JsonOption,
    app,
    err,
    out,
    settings_of,
)
from faceledger.cli.auth import acting_user
from faceledger.search.outcome import REFUSED, SearchOutcome
from faceledger.search.requests import visible_requests
from faceledger.search.review import request_summary
from faceledger.search.service import SearchService
from faceledger.store.models import User
from faceledger.workspace import Workspace

request_app = typer.Typer(
    help="Search requests: list, show results, approve, deny, run, authorise, export.",
    no_args_is_help=True,
)
app.add_typer(request_app, name="request")

CollectionsOption = Annotated[
    list[str], typer.Option("--collection", "-c", help="Collection(s) to search.")
]
ReasonOption = Annotated[str, typer.Option("--reason", help="Why (kept in the ledger).")]


def _service(ctx: typer.Context) -> tuple[SearchService, User]:
    """The service and the authenticated person (exit 4 without valid credentials)."""
    workspace = Workspace(settings_of(ctx))
    with workspace.sessions() as session:
        user = acting_user(session)
        session.refresh(user)
        session.expunge(user)
    return SearchService(workspace), user


def _results_table(results: list[dict[str, Any]]) -> Table:
    """Best first; `result` is the id to review. Boxes and digests are in --json."""
    table = Table("result", "score", "captured", "decision")
    table.add_column("image", overflow="fold")
    table.add_column("page", overflow="fold")
    for row in results:
        decision = row.get("my_decision") or "-"
        if row.get("confirmed"):
            decision += " (confirmed by two)"
        table.add_row(
            str(row["result_id"]),
            f"{row['score']:.3f}",
            (row["captured_at"] or "-")[:10],
            decision,
            escape(row["image_url"] or "-"),
            escape(row["page_url"] or "-"),
        )
    return table


def print_outcome(outcome: SearchOutcome, as_json: bool) -> None:
    """Print an outcome and exit with its status (0 done or waiting, else its refusal's)."""
    if as_json:
        print(json.dumps(outcome.as_dict()))
    elif outcome.status == REFUSED:
        err.print(
            f"[bold red]refused[/] (request {outcome.request_id}): {escape(outcome.reason or '')}"
        )
    elif outcome.results is not None:
        out.print(f"request {outcome.request_id}: {len(outcome.results)} results")
        if outcome.results:
            out.print(_results_table(outcome.results))
        out.print("Each result is a candidate until two people confirm it: `faceledger review`.")
    else:
        out.print(f"request {outcome.request_id}: {outcome.status}. {outcome.reason or ''}")
    refusal = outcome.refusal()
    if refusal is not None:
        raise typer.Exit(refusal.exit_status)


@app.command()
def search(
    ctx: typer.Context,
    photo: Annotated[Path, typer.Argument(help="The probe photo.", exists=True, dir_okay=False)],
    collection: CollectionsOption,
    purpose: Annotated[
        str | None, typer.Option(help="Why: one of the configured purposes.")
    ] = None,
    case: Annotated[str | None, typer.Option("--case", help="The case reference.")] = None,
    justification: Annotated[
        str | None, typer.Option(help="Why this search is necessary and proportionate.")
    ] = None,
    face: Annotated[
        int | None, typer.Option("--face", help="Which face of the probe (1-based).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Ask for a search: it runs at once, waits for approval, or is refused (all ledgered)."""
    service, user = _service(ctx)
    outcome = service.request(
        user,
        photo.read_bytes(),
        collections=collection,
        purpose=purpose,
        case_ref=case,
        justification=justification,
        face=face,
    )
    print_outcome(outcome, as_json)


@request_app.command("list")
def request_list(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(help="Only requests with this status.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Requests you made (an approver sees every request: the inbox is `--status pending`)."""
    workspace = Workspace(settings_of(ctx))
    with workspace.sessions() as session:
        user = acting_user(session)
        rows = [request_summary(session, r) for r in visible_requests(session, user, status)]
    if as_json:
        print(json.dumps({"requests": rows}))
        return
    table = Table("id", "status", "requester", "purpose", "case", "collections", "requested")
    for row in rows:
        table.add_row(
            str(row["request_id"]),
            row["status"],
            row["requester"],
            row["purpose"] or "-",
            escape(row["case"] or "-"),
            ", ".join(row["collections"]),
            row["created_at"][:19],
        )
    out.print(table)


@request_app.command("show")
def request_show(
    ctx: typer.Context,
    request_id: Annotated[int, typer.Argument(help="The request.")],
    as_json: JsonOption = False,
) -> None:
    """A request's results (viewing is ledgered; others' decisions show after your own)."""
    service, user = _service(ctx)
    view = service.results(user, request_id)
    if as_json:
        print(json.dumps(view.as_dict()))
        return
    request = view.request
    out.print(
        f"request {request['request_id']} by {request['requester']}: {request['status']}, "
        f"purpose {request['purpose']}, case {escape(request['case'] or '-')}"
    )
    out.print(_results_table(view.results))


@request_app.command("approve")
def request_approve(
    ctx: typer.Context, request_id: int, reason: ReasonOption, as_json: JsonOption = False
) -> None:
    """Approve a waiting request (approver role; never your own)."""
    service, user = _service(ctx)
    print_outcome(service.approve(user, request_id, reason), as_json)


@request_app.command("deny")
def request_deny(
    ctx: typer.Context, request_id: int, reason: ReasonOption, as_json: JsonOption = False
) -> None:
    """Deny a waiting request (approver role; never your own)."""
    service, user = _service(ctx)
    print_outcome(service.deny(user, request_id, reason), as_json)


@request_app.command("run")
def request_run(
    ctx: typer.Context,
    request_id: int,
    photo: Annotated[
        Path | None,
        typer.Option(help="The probe again: it must be the approved one.", dir_okay=False),
    ] = None,
    collection: Annotated[
        list[str] | None,
        typer.Option("--collection", "-c", help="Collections again: must be the approved ones."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Run an approved request, once (only the person who asked)."""
    service, user = _service(ctx)
    probe = photo.read_bytes() if photo else None
    outcome = service.run(user, request_id, probe=probe, collections=collection or None)
    print_outcome(outcome, as_json)


@request_app.command("authorise")
def request_authorise(
    ctx: typer.Context,
    request_id: int,
    reference: Annotated[
        str | None, typer.Option(help="The authority's reference for its decision.")
    ] = None,
    refused: Annotated[
        bool, typer.Option("--refused", help="The authority refused: purge the results.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Record an external (judicial or administrative) authorisation, or its refusal."""
    service, user = _service(ctx)
    outcome = service.record_authorisation(user, request_id, reference, not refused)
    print_outcome(outcome, as_json)


@request_app.command("export")
def request_export(
    ctx: typer.Context,
    request_id: int,
    folder: Annotated[Path, typer.Argument(help="Where to write the evidence sheet.")],
    candidates: Annotated[
        bool,
        typer.Option(help="Include unconfirmed candidates (ledgered as such)."),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Write the evidence sheet (JSON and printable HTML): doubly confirmed matches only."""
    service, user = _service(ctx)
    written = service.export(user, request_id, folder, candidates)
    if as_json:
        print(json.dumps({"files": [str(path) for path in written]}))
        return
    for path in written:
        out.print(f"wrote {path}")


@app.command()
def review(
    ctx: typer.Context,
    result_id: Annotated[int, typer.Argument(help="The result (see `request show`).")],
    decision: Annotated[str, typer.Argument(help="confirm or reject")],
    as_json: JsonOption = False,
) -> None:
    """Confirm or reject one match; it counts as confirmed when two people confirmed it."""
    service, user = _service(ctx)
    outcome = service.review(user, result_id, decision)
    if as_json:
        print(json.dumps(outcome.as_dict()))
        return
    state = "confirmed by two people" if outcome.confirmed else "not (yet) confirmed by two"
    out.print(f"result {outcome.result_id}: you chose {outcome.decision}; the match is {state}")
    for decided in outcome.decisions:
        out.print(f"  {decided['user']}: {decided['decision']} at {decided['at'][:19]}")
