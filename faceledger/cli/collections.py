"""`faceledger collection ...` and `faceledger collections`: collections and their policies.

Thin layers over `faceledger.policy.collections`. The policy options of `create` and `set`
are named after the policy fields, so the values given are read from `ctx.params` by name:
one list of options, one place that turns them into service arguments.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

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
from faceledger.policy.collections import (
    POLICY,
    create_collection,
    describe,
    get_collection,
    update_policy,
)
from faceledger.store import repo
from faceledger.workspace import Workspace

collection_app = typer.Typer(
    help="Collections: their legal basis, retention and search policy.", no_args_is_help=True
)
app.add_typer(collection_app, name="collection")

NameArgument = Annotated[str, typer.Argument(help="The collection's name.")]
LEGAL_BASIS_HELP = "On what legal basis the faces are held (required to create)."
LegalBasisOption = Annotated[str | None, typer.Option("--legal-basis", help=LEGAL_BASIS_HELP)]
SourceOption = Annotated[
    str | None, typer.Option("--source", help="Where the faces come from (folder, crawl...).")
]
RetentionOption = Annotated[
    int | None, typer.Option("--retention-days", help="Purge the collection after this many days.")
]
ApprovalOption = Annotated[
    bool | None,
    typer.Option(
        "--approval-required/--no-approval-required",
        help="Searches wait for an approver's decision.",
    ),
]
AuthorisationOption = Annotated[
    bool | None,
    typer.Option(
        "--authorisation-required/--no-authorisation-required",
        help="Searches need an external authority's reference within the deadline.",
    ),
]
RolesOption = Annotated[
    str | None,
    typer.Option("--search-roles", help="Roles that may search, comma-separated."),
]
LimitOption = Annotated[
    int | None, typer.Option("--result-limit", help="At most this many results (1-1000).")
]
ThresholdOption = Annotated[
    float | None,
    typer.Option("--threshold", help="Minimum cosine similarity (default: the calibrated one)."),
]
OptoutsOption = Annotated[
    bool | None,
    typer.Option("--honour-optouts/--no-honour-optouts", help="Opted-out people are excluded."),
]
EvidenceOption = Annotated[
    bool | None,
    typer.Option("--keep-evidence/--no-keep-evidence", help="Keep image bytes as evidence."),
]


def _given(ctx: typer.Context) -> dict[str, Any]:
    """The policy options given on the command line, as service arguments."""
    given = {f: v for f, v in ctx.params.items() if f in POLICY and v is not None}
    if "search_roles" in given:
        given["search_roles"] = [r for r in given["search_roles"].split(",") if r.strip()]
    return given


def _threshold(policy: dict[str, Any], default: float) -> str:
    return f"default ({default})" if policy["threshold"] is None else str(policy["threshold"])


def _needs(policy: dict[str, Any]) -> str:
    needed = [
        name
        for name, field in (
            ("approval", "approval_required"),
            ("authorisation", "authorisation_required"),
        )
        if policy[field]
    ]
    return " + ".join(needed) or "no"


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "-" if value is None else str(value)


def _print_policy(described: dict[str, Any], default_threshold: float) -> None:
    policy = described["policy"]
    table = Table("collection", escape(described["name"]))
    rows = {
        "images / faces": f"{described['images']} / {described['faces']}",
        "created": described["created_at"][:19],
        **{field.replace("_", " "): value for field, value in policy.items()},
        "search roles": ", ".join(policy["search_roles"]),
        "threshold": _threshold(policy, default_threshold),
    }
    for field, value in rows.items():
        table.add_row(field, escape(_shown(value)))
    out.print(table)


@collection_app.command("create")
def collection_create(
    ctx: typer.Context,
    name: NameArgument,
    legal_basis: Annotated[str, typer.Option("--legal-basis", help=LEGAL_BASIS_HELP)],
    source: SourceOption = None,
    retention_days: RetentionOption = None,
    approval_required: ApprovalOption = None,
    authorisation_required: AuthorisationOption = None,
    search_roles: RolesOption = None,
    result_limit: LimitOption = None,
    threshold: ThresholdOption = None,
    honour_optouts: OptoutsOption = None,
    keep_evidence: EvidenceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create an empty collection with its legal basis and search policy (admins)."""
    with Workspace(settings_of(ctx)).sessions() as session:
        actor = acting_user(session)
        collection = create_collection(session, actor, name, **_given(ctx))
        session.commit()
        described = describe(collection)
    if as_json:
        print(json.dumps(described))
    else:
        out.print(f"created collection [bold]{escape(name)}[/]")
        _print_policy(described, settings_of(ctx).match_threshold)


@collection_app.command("set")
def collection_set(
    ctx: typer.Context,
    name: NameArgument,
    legal_basis: LegalBasisOption = None,
    source: SourceOption = None,
    retention_days: RetentionOption = None,
    approval_required: ApprovalOption = None,
    authorisation_required: AuthorisationOption = None,
    search_roles: RolesOption = None,
    result_limit: LimitOption = None,
    threshold: ThresholdOption = None,
    honour_optouts: OptoutsOption = None,
    keep_evidence: EvidenceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change a collection's policy (admins); each change is ledgered with old and new value."""
    with Workspace(settings_of(ctx)).sessions() as session:
        actor = acting_user(session)
        changes = update_policy(session, actor, name, **_given(ctx))
        session.commit()
    if as_json:
        print(json.dumps({"name": name, "changes": changes}))
        return
    if not changes:
        out.print(f"[bold]{escape(name)}[/]: nothing changed")
    for field, change in changes.items():
        out.print(f"[bold]{escape(name)}[/] {field}: {change['old']!r} -> {change['new']!r}")


@collection_app.command("show")
def collection_show(ctx: typer.Context, name: NameArgument, as_json: JsonOption = False) -> None:
    """A collection's policy and how many images and faces it holds (anyone signed in)."""
    with Workspace(settings_of(ctx)).sessions() as session:
        acting_user(session)
        get_collection(session, name)
        described = next(
            describe(*row) for row in repo.list_collections(session) if row[0].name == name
        )
    if as_json:
        print(json.dumps(described))
    else:
        _print_policy(described, settings_of(ctx).match_threshold)


@app.command()
def collections(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List collections with their counts and search policies (anyone signed in)."""
    with Workspace(settings_of(ctx)).sessions() as session:
        acting_user(session)
        rows = [describe(*row) for row in repo.list_collections(session)]
    if as_json:
        print(json.dumps({"collections": rows}))
        return
    default = settings_of(ctx).match_threshold
    table = Table("collection", "images", "faces", "legal basis", "roles", "needs", "threshold")
    table.add_column("limit")
    table.add_column("created")
    for row in rows:
        policy = row["policy"]
        table.add_row(
            escape(row["name"]),
            str(row["images"]),
            str(row["faces"]),
            escape(policy["legal_basis"] or "-"),
            ", ".join(policy["search_roles"]),
            _needs(policy),
            _threshold(policy, default),
            str(policy["result_limit"]),
            row["created_at"][:19],
        )
    out.print(table)
