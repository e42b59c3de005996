"""`faceledger watch ...`: alerts for consenting people over scoped crawls, no face database.

Thin layer over `faceledger.watch`: enrol and withdraw people, run watch rounds (once, or
`--every` MINUTES `--times` N; cron is the alternative), list and re-deliver alerts, and
write takedown letters.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from faceledger.cli.app import (
    JsonOption,
    WorkersOption,
    app,
    err,
    out,
    settings_of,
)
from faceledger.cli.auth import acting_user
from faceledger.cli.probe import probe_face
from faceledger.cli.scope import (
    AllowAddressOption,
    AllowDomainOption,
    MaxDepthOption,
    MaxMegabytesOption,
    MaxPagesOption,
    MaxPerShapeOption,
    PathPrefixOption,
    SeedsArgument,
    scope_options,
)
from faceledger.crawl.settings import crawl_config
from faceledger.crawl.stats import CrawlStats
from faceledger.errors import UsageError
from faceledger.search.probes import probe_hash
from faceledger.watch.alerts import delivery_counts, list_alerts, redeliver
from faceledger.watch.enrol import (
    enrol_subject,
    list_subjects,
    remove_subject,
)
from faceledger.watch.refusals import require_admin
from faceledger.watch.run import RoundSummary, run_round
from faceledger.watch.takedown import KINDS, takedown_letter
from faceledger.workspace import Workspace

watch_app = typer.Typer(
    help="Watch crawls for consenting people's faces; keep nothing of anyone else.",
    no_args_is_help=True,
)
app.add_typer(watch_app, name="watch")


@watch_app.command("add")
def watch_add(
    ctx: typer.Context,
    photo: Annotated[
        Path, typer.Argument(help="A photo of the person.", exists=True, dir_okay=False)
    ],
    name: Annotated[str, typer.Option("--name", help="A label for the person or the case.")],
    basis: Annotated[
        str, typer.Option("--basis", help="The recorded basis: the person's consent, by whom.")
    ],
    face: Annotated[
        int | None, typer.Option("--face", help="Which face of the photo (1-based).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Enrol a consenting adult to be watched for: their template only (admin; ledgered)."""
    workspace = Workspace(settings_of(ctx))
    data = photo.read_bytes()
    photo_hash = probe_hash(data)
    with workspace.sessions() as session:
        actor = acting_user(session)
        require_admin(session, actor, "enrol", photo_hash=photo_hash)  # before the photo is read
        chosen = probe_face(workspace, data, face)
        subject = enrol_subject(session, actor, chosen, name, basis, photo_hash)
        session.commit()
    if as_json:
        print(json.dumps({"id": subject.id, "label": subject.label, "photo_hash": photo_hash}))
    else:
        out.print(f"enrolled [bold]{subject.id}[/] ({escape(subject.label)}); photo not kept")


@watch_app.command("remove")
def watch_remove(
    ctx: typer.Context,
    subject_id: Annotated[int, typer.Argument(help="The enrolled person's id (`watch list`).")],
    reason: Annotated[str, typer.Option("--reason", help="Why (ledgered).")],
    as_json: JsonOption = False,
) -> None:
    """Stop watching for a person and erase their template (admin). Their alerts stay."""
    with Workspace(settings_of(ctx)).sessions() as session:
        actor = acting_user(session)
        subject = remove_subject(session, actor, subject_id, reason)
        session.commit()
    if as_json:
        print(json.dumps({"id": subject.id, "removed": True}))
    else:
        out.print(f"enrolled person [bold]{subject.id}[/] removed; template erased")


@watch_app.command("list")
def watch_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Enrolled people with their basis, never templates (admins and auditors)."""
    with Workspace(settings_of(ctx)).sessions() as session:
        actor = acting_user(session)
        rows = [info.as_dict() for info in list_subjects(session, actor)]
    if as_json:
        print(json.dumps({"subjects": rows}))
        return
    table = Table("id", "label", "basis", "enrolled by", "enrolled", "removed")
    for row in rows:
        table.add_row(
            str(row["id"]),
            escape(row["label"]),
            escape(row["basis"]),
            escape(row["created_by"]),
            row["created_at"][:19],
            (row["removed_at"] or "")[:19],
        )
    out.print(table)


def _print_round(summary: RoundSummary) -> None:
    data = summary.as_dict()
    out.print(
        f"watch run [bold]{data['run']}[/]: {data['pages']} pages, {data['images']} images, "
        f"{data['faces_seen']} faces seen (none kept), [bold]{data['alerts']} alerts[/] "
        f"({data['repeats']} already raised), {data['minor_faces']} possible minors skipped"
    )
    for label in ("refused", "errors", "unreadable"):
        for reason, count in data[label].items():
            out.print(f"  {label} {count}: {reason.replace('_', ' ')}")
    if data["alert_ids"]:
        ids = ", ".join(map(str, data["alert_ids"]))
        out.print(f"  new alerts: {ids} (`faceledger watch alerts`)")


def _warn_failed(deliveries: dict[str, int]) -> None:
    if deliveries["failed"]:
        err.print(
            f"[yellow]warning:[/] {deliveries['failed']} deliveries failed (recorded on the "
            "alerts); retry with `faceledger watch deliver`"
        )


@watch_app.command("run")
def watch_run(
    ctx: typer.Context,
    seeds: SeedsArgument,
    allow_domain: AllowDomainOption = None,
    path_prefix: PathPrefixOption = None,
    max_depth: MaxDepthOption = 2,
    max_pages: MaxPagesOption = 1000,
    max_mb: MaxMegabytesOption = 1024,
    max_per_shape: MaxPerShapeOption = 50,
    allow_address: AllowAddressOption = None,
    every: Annotated[
        float | None, typer.Option("--every", min=0, help="Minutes between rounds.")
    ] = None,
    times: Annotated[int, typer.Option("--times", min=1, help="Rounds to run.")] = 1,
    workers: WorkersOption = None,
    as_json: JsonOption = False,
) -> None:
    """Crawl a scope afresh and alert on enrolled people's faces; discard all others (admin).

    Each round is a new crawl, deleted after its scan; `--json` prints a line per round.
    """
    settings = settings_of(ctx)
    if times > 1 and every is None:
        raise UsageError("--times needs --every MINUTES")
    options = scope_options(
        seeds, allow_domain, path_prefix, max_depth, max_pages, max_mb, allow_address, max_per_shape
    )
    try:
        options.scope()
        config = crawl_config(settings, options.allow_addresses)
    except ValueError as error:  # a scope or an address range that does not parse
        raise UsageError(str(error)) from None
    workspace = Workspace(settings)
    with workspace.sessions() as session:
        actor = acting_user(session)
    for number in range(1, times + 1):
        if number > 1 and every:
            time.sleep(every * 60)
        with err.status(f"watch round {number}: crawling") as status:

            def shown(stats: CrawlStats, number: int = number) -> None:
                status.update(
                    f"watch round {number}: {stats.pages} pages, {stats.images} images crawled"
                )

            summary = run_round(
                workspace,
                actor,
                options,
                config,
                workers=workers or settings.workers,
                progress=shown,
            )
        if as_json:
            print(json.dumps(summary.as_dict()), flush=True)
        else:
            _print_round(summary)
        _warn_failed(summary.deliveries)


def _alert_row(alert: dict[str, Any]) -> list[str]:
    counts = delivery_counts(list(alert["deliveries"].values()))
    return [
        str(alert["id"]),
        escape(alert["label"]),
        f"{alert['score']:.3f}",
        escape(alert["page_url"] or ""),
        escape(alert["image_url"]),
        (alert["captured_at"] or "")[:19],
        f"{counts['sent']} sent, {counts['failed']} failed",
    ]


@watch_app.command("alerts")
def watch_alerts(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Every alert with its evidence and delivery status (admins and auditors)."""
    with Workspace(settings_of(ctx)).sessions() as session:
        actor = acting_user(session)
        rows = list_alerts(session, actor)
    if as_json:
        print(json.dumps({"alerts": rows}))
        return
    table = Table("id", "person", "score", "page", "image", "captured", "deliveries")
    for row in rows:
        table.add_row(*_alert_row(row))
    out.print(table)


@watch_app.command("deliver")
def watch_deliver(
    ctx: typer.Context,
    alert_ids: Annotated[
        list[int] | None, typer.Argument(help="Alerts to retry (default: every failed one).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Retry failed deliveries to the targets still configured (admin)."""
    settings = settings_of(ctx)
    with Workspace(settings).sessions() as session:
        actor = acting_user(session)
        retried = redeliver(settings, session, actor, alert_ids or ())
        session.commit()
    counts = delivery_counts([outcome for outcomes in retried.values() for outcome in outcomes])
    if as_json:
        print(json.dumps({"alerts": sorted(retried), "deliveries": counts}))
    else:
        out.print(
            f"{len(retried)} alerts retried: {counts['sent']} sent, {counts['failed']} failed"
        )
    _warn_failed(counts)


@watch_app.command("takedown")
def watch_takedown(
    ctx: typer.Context,
    alert_id: Annotated[int, typer.Argument(help="The alert (`watch alerts`).")],
    path: Annotated[Path, typer.Option("--out", dir_okay=False, help="The letter to write.")],
    kind: Annotated[
        str, typer.Option("--kind", help=f"Which letter: {' or '.join(KINDS)}.")
    ] = "gdpr",
    sender: Annotated[str | None, typer.Option("--sender", help="Who signs it.")] = None,
    contact: Annotated[str | None, typer.Option("--contact", help="Where to answer.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Write a takedown letter to the site, with the alert's evidence (admin; ledgered)."""
    if kind not in KINDS:
        raise UsageError(f"--kind must be one of {', '.join(KINDS)}")
    with Workspace(settings_of(ctx)).sessions() as session:
        actor = acting_user(session)
        letter = takedown_letter(session, actor, alert_id, kind, sender, contact)
        path.write_text(letter, encoding="utf-8")
        session.commit()
    if as_json:
        print(json.dumps({"alert": alert_id, "kind": kind, "file": str(path)}))
    else:
        out.print(f"{kind} letter for alert {alert_id} written to {escape(str(path))}")
