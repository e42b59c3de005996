"""`faceledger optout ...` and `faceledger retention run`: the registry and the clean-up.

Thin layers over `faceledger.policy.optouts` and `faceledger.services.retention`: each
command authenticates, calls one service function, commits, and only then drops purged
faces from the indexes (store first, index second).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from faceledger.auth.roles import Role, require_role
from faceledger.cli.app import (
    JsonOption,
    app,
    err,
    out,
    settings_of,
)
from faceledger.cli.auth import acting_user
from faceledger.cli.probe import probe_face
from faceledger.policy.optouts import (
    add_optout,
    list_optouts,
    remove_optout,
)
from faceledger.search.probes import probe_hash
from faceledger.services.retention import run_retention
from faceledger.store.models import Collection
from faceledger.workspace import Workspace

optout_app = typer.Typer(
    help="The opt-out registry: people whose faces are purged and never returned.",
    no_args_is_help=True,
)
retention_app = typer.Typer(
    help="Delete what is kept past its retention period.", no_args_is_help=True
)
app.add_typer(optout_app, name="optout")
app.add_typer(retention_app, name="retention")


@optout_app.command("add")
def optout_add(
    ctx: typer.Context,
    photo: Annotated[
        Path, typer.Argument(help="A photo of the person.", exists=True, dir_okay=False)
    ],
    face: Annotated[
        int | None, typer.Option("--face", help="Which face of the photo (1-based).")
    ] = None,
    label: Annotated[
        str | None, typer.Option("--label", help="A reference to the request (not a name).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Opt the person in PHOTO out: purge their faces now, skip them from now on (admin)."""
    workspace = Workspace(settings_of(ctx))
    data = photo.read_bytes()
    photo_hash = probe_hash(data)
    with workspace.sessions() as session:
        actor = acting_user(session)
        require_role(actor, Role.ADMIN)  # before anything is read from the photo
        chosen = probe_face(workspace, data, face)
        with err.status("purging matching faces"):
            optout, purge = add_optout(
                workspace, session, actor, chosen.embedding, label, photo_hash
            )
            purged = {session.get_one(Collection, cid).name: n for cid, n in purge.counts.items()}
            session.commit()
    purge.apply_to_indexes()
    if as_json:
        answer = {"id": optout.id, "label": label, "photo_hash": photo_hash, "purged": purged}
        print(json.dumps(answer))
        return
    out.print(f"opt-out [bold]{optout.id}[/] registered; {sum(purged.values())} faces purged")
    for name, count in purged.items():
        out.print(f"  {escape(name)}: {count}")


@optout_app.command("remove")
def optout_remove(
    ctx: typer.Context,
    optout_id: Annotated[int, typer.Argument(help="The opt-out's id (see `optout list`).")],
    reason: Annotated[str, typer.Option("--reason", help="Why it is lifted (ledgered).")],
    as_json: JsonOption = False,
) -> None:
    """Stop honouring an opt-out (admin). Faces already purged stay purged."""
    with Workspace(settings_of(ctx)).sessions() as session:
        actor = acting_user(session)
        optout = remove_optout(session, actor, optout_id, reason)
        session.commit()
    removed_at = optout.removed_at.isoformat() if optout.removed_at else None
    if as_json:
        print(json.dumps({"id": optout.id, "removed_at": removed_at}))
    else:
        out.print(f"opt-out [bold]{optout.id}[/] removed")


@optout_app.command("list")
def optout_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Opt-outs by id, with labels and dates, never templates (admins and auditors)."""
    with Workspace(settings_of(ctx)).sessions() as session:
        actor = acting_user(session)
        rows = [info.as_dict() for info in list_optouts(session, actor)]
    if as_json:
        print(json.dumps({"optouts": rows}))
        return
    table = Table("id", "label", "added by", "added", "removed by", "removed")
    for row in rows:
        table.add_row(
            str(row["id"]),
            escape(row["label"] or ""),
            escape(row["created_by"]),
            row["created_at"][:19],
            escape(row["removed_by"] or ""),
            (row["removed_at"] or "")[:19],
        )
    out.print(table)


def _print_retention(report: dict[str, Any]) -> None:
    out.print(f"retention run at {report['now'][:19]}")
    out.print(f"  probe photos deleted: {len(report['probes_deleted'])}")
    for name, counts in report["collections"].items():
        out.print(f"  {escape(name)}: {counts['images']} images, {counts['faces']} faces deleted")


@retention_app.command("run")
def retention_run(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Delete probe photos and collection images past their retention, and ledger it (admin)."""
    workspace = Workspace(settings_of(ctx))
    with workspace.sessions() as session:
        actor = acting_user(session)
        with err.status("deleting what is past its retention"):
            report = run_retention(workspace, session, actor)
            session.commit()
    report.apply_to_indexes()
    if as_json:
        print(json.dumps(report.as_dict()))
    else:
        _print_retention(report.as_dict())
