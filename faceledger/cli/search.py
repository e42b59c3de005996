"""Commands over the accountable search service: search, requests, reviews, evidence.

Every command authenticates the acting person first and then calls one service method;
what is allowed, what is refused and what is ledgered is the service's decision.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.markup import escape
from rich.table import Table

from faceledger.cli.app import (
    EXIT_AUTH,
    EXIT_BAD_IMAGE,
    EXIT_NOT_FOUND,
    EXIT_REFUSED,
    JsonOption,
    app,
    err,
    fail,
    out,
    settings_of,
)
from faceledger.cli.auth import acting_user
from faceledger.cli.probe import faces_listing
from faceledger.search.engine import FaceChoiceRequired
from faceledger.search.outcome import REFUSED, NotFound, SearchOutcome, ServiceRefusal
from faceledger.search.requests import visible_requests
from faceledger.search.review import request_summary
from faceledger.search.service import SearchService
from faceledger.store.models import User
from faceledger.workspace import Workspace

T = TypeVar("T")

request_app = typer.Typer(
    help="Search requests: list, show results, approve, deny, run, authorise, export.",
    no_args_is_help=True,
)
app.add_typer(request_app, name="request")

CollectionsOption = Annotated[
    list[str], typer.Option("--collection", "-c", help="Collection(s) to search.")
]
ReasonOption = Annotated[str, typer.Option("--reason", help="Why (kept in the ledger).")]


def _exit_code(code: str | None, permission: bool) -> int:
    if permission:
        return EXIT_AUTH
    return {"bad_image": EXIT_BAD_IMAGE, "unknown_collection": EXIT_NOT_FOUND}.get(
        code or "", EXIT_REFUSED
    )


def _service(ctx: typer.Context) -> tuple[SearchService, User]:
    """The service and the authenticated person (exit 4 without valid credentials)."""
    workspace = Workspace(settings_of(ctx))
    with workspace.sessions() as session:
        user = acting_user(ctx, session)
        session.refresh(user)
        session.expunge(user)
    return SearchService(workspace), user


def _call(action: Callable[[], T], as_json: bool) -> T:
    """Run a service call, turning its refusals into the documented exits."""
    try:
        return action()
    except ServiceRefusal as problem:
        code = _exit_code(problem.code, problem.is_permission)
        raise fail(
            str(problem), code, as_json, error=problem.code, status="refused", reason=str(problem)
        ) from None
    except NotFound as problem:
        raise fail(str(problem), EXIT_NOT_FOUND, as_json, error="not_found") from None


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
    """Print an outcome and exit with its status (0 done or waiting, 3 refused, 4 denied role)."""
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
    if outcome.status == REFUSED:
        raise typer.Exit(_exit_code(outcome.refusal_code, outcome.is_permission))


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
    try:
        outcome = _call(
            lambda: service.request(
                user,
                photo.read_bytes(),
                collections=collection,
                purpose=purpose,
                case_ref=case,
                justification=justification,
                face=face,
            ),
            as_json,
        )
    except FaceChoiceRequired as error:
        raise faces_listing(error, as_json) from None
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
        user = acting_user(ctx, session)
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
    view = _call(lambda: service.results(user, request_id), as_json)
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
    print_outcome(_call(lambda: service.approve(user, request_id, reason), as_json), as_json)


@request_app.command("deny")
def request_deny(
    ctx: typer.Context, request_id: int, reason: ReasonOption, as_json: JsonOption = False
) -> None:
    """Deny a waiting request (approver role; never your own)."""
    service, user = _service(ctx)
    print_outcome(_call(lambda: service.deny(user, request_id, reason), as_json), as_json)


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
    outcome = _call(
        lambda: service.run(user, request_id, probe=probe, collections=collection or None),
        as_json,
    )
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
    outcome = _call(
        lambda: service.record_authorisation(user, request_id, reference, not refused), as_json
    )
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
    written = _call(lambda: service.export(user, request_id, folder, candidates), as_json)
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
    outcome = _call(lambda: service.review(user, result_id, decision), as_json)
    if as_json:
        print(json.dumps(outcome.as_dict()))
        return
    state = "confirmed by two people" if outcome.confirmed else "not (yet) confirmed by two"
    out.print(f"result {outcome.result_id}: you chose {outcome.decision}; the match is {state}")
    for decided in outcome.decisions:
        out.print(f"  {decided['user']}: {decided['decision']} at {decided['at'][:19]}")
