"""`faceledger ledger`: verify, export, checkpoint, read and erase in the tamper-evident ledger.

Reading payloads (show, export) and signing need an admin or auditor, checked at the top of
each `with` block before anything is read or written; erasing needs an admin. `verify`
needs nobody: it prints only whether the chain holds and which entry breaks it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy.orm import Session

from faceledger.auth.roles import Role, require_role
from faceledger.cli.app import (
    JsonOption,
    app,
    err,
    out,
    settings_of,
)
from faceledger.cli.auth import acting_user
from faceledger.errors import EXIT_FAILED
from faceledger.ledger import keys
from faceledger.ledger.checkpoints import checkpoint
from faceledger.ledger.export import FORMAT_VERSION, check_target, export_bundle, remove_bundle
from faceledger.ledger.log import append
from faceledger.ledger.verify import VerifyReport, checkpoint_record, recent_records, verify
from faceledger.services.erasure import erase
from faceledger.store.models import User
from faceledger.workspace import Workspace

ledger_app = typer.Typer(
    help="The tamper-evident ledger: verify, export, checkpoint, show.", no_args_is_help=True
)
app.add_typer(ledger_app, name="ledger")


def _reader(session: Session) -> User:
    """The acting admin or auditor: the ledger's payloads name people, cases and probes."""
    actor = acting_user(session)
    require_role(actor, Role.ADMIN, Role.AUDITOR)
    return actor


def _print_report(report: VerifyReport) -> None:
    if report.ok:
        out.print(
            f"[bold green]Ledger is whole:[/] {report.entries} entries "
            f"({report.erased} payloads erased), {report.checkpoints} checkpoints"
        )
        if report.signed_seq < report.head_seq:
            out.print(
                f"entries after {report.signed_seq} are not covered by a signed checkpoint yet "
                "(run `faceledger ledger checkpoint`)"
            )
        return
    err.print(f"[bold red]Ledger is broken:[/] {escape(report.problem or '')}")
    err.print(f"{report.entries} entries, {report.checkpoints} checkpoints read")


@ledger_app.command("verify")
def ledger_verify(
    ctx: typer.Context,
    public_key: Annotated[
        Path | None,
        typer.Option(
            "--public-key",
            exists=True,
            dir_okay=False,
            help="Check checkpoints with this key PEM (default: the data directory's key).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Check every entry, link, payload and checkpoint; exit 1 naming the first bad entry."""
    settings = settings_of(ctx)
    with Workspace(settings).sessions() as session:
        key = (
            keys.load_public_key(public_key.read_bytes())
            if public_key
            else keys.existing_public_key(settings)
        )
        report = verify(session, key)
    if as_json:
        print(json.dumps(report.as_dict()))
    else:
        _print_report(report)
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)  # like the bundle's verify.py


@ledger_app.command("export")
def ledger_export(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(help="A new (or empty) directory for the bundle.")],
    as_json: JsonOption = False,
) -> None:
    """Write a bundle an auditor can check with its own verify.py (the export is ledgered)."""
    settings = settings_of(ctx)
    with Workspace(settings).sessions() as session:
        actor = _reader(session).name
        target = directory.resolve()
        check_target(target)
        append(
            session,
            actor=actor,
            action="ledger.export",
            subject=str(target),
            payload={"format_version": FORMAT_VERSION},
        )
        summary = export_bundle(session, settings, target)
        try:
            session.commit()
        except BaseException:
            remove_bundle(target)
            raise
    if as_json:
        print(json.dumps(summary.as_dict()))
        return
    out.print(
        f"Exported {summary.entries} entries and {summary.checkpoints} checkpoints "
        f"(key {summary.key_id}) to {escape(str(target))}"
    )
    out.print(
        f"Check it anywhere with: python {escape(str(target / 'verify.py'))} {escape(str(target))}"
    )


@ledger_app.command("checkpoint")
def ledger_checkpoint(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Sign the current head now (refused when the chain does not check out)."""
    settings = settings_of(ctx)
    with Workspace(settings).sessions() as session:
        _reader(session)
        signed = checkpoint(session, settings)
        session.commit()
    record = checkpoint_record(signed) if signed else None
    if as_json:
        print(json.dumps({"checkpoint": record}))
    elif record is None:
        out.print("Nothing to sign: the ledger is empty or its head is already checkpointed.")
    else:
        out.print(
            f"Checkpoint {record['id']} signs entry {record['seq']} "
            f"({record['entry_hash']}) with key {record['key_id']}"
        )


def _payload_text(record: dict[str, Any]) -> str:
    if record["erased"]:
        return "(erased)"
    text = json.dumps(record["payload"], ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


@ledger_app.command("show")
def ledger_show(
    ctx: typer.Context,
    last: Annotated[int, typer.Option("--last", "-n", min=1, help="How many entries.")] = 20,
    action: Annotated[str | None, typer.Option("--action", help="Only this action.")] = None,
    as_json: JsonOption = False,
) -> None:
    """The newest entries, oldest first."""
    settings = settings_of(ctx)
    with Workspace(settings).sessions() as session:
        _reader(session)
        records = recent_records(session, last=last, action=action)
    if as_json:
        print(json.dumps({"entries": records}, ensure_ascii=False))
        return
    table = Table("seq", "time", "actor", "action", "subject", "payload")
    for record in records:
        table.add_row(
            str(record["seq"]),
            escape(record["created_at"][:19]),
            escape(record["actor"] or "-"),
            escape(record["action"]),
            escape(record["subject"] or "-"),
            escape(_payload_text(record)),
        )
    out.print(table)


@ledger_app.command("erase")
def ledger_erase(
    ctx: typer.Context,
    seq: Annotated[int, typer.Argument(help="The entry whose payload to erase.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (e.g. the erasure request).")],
    as_json: JsonOption = False,
) -> None:
    """Erase one entry's payload (right to erasure); its hash keeps the chain verifiable."""
    settings = settings_of(ctx)
    with Workspace(settings).sessions() as session:
        actor = acting_user(session)
        erase(session, actor, seq, reason)
        session.commit()
    if as_json:
        print(json.dumps({"erased": seq}))
    else:
        out.print(f"Erased the payload of entry {seq}; the chain still verifies by its hash.")
