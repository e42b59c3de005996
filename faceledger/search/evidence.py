"""Evidence sheets: what a search found and who confirmed it, as JSON and printable HTML.

Only doubly confirmed matches go in, unless the person exports candidates explicitly,
which the ledger records. The sheet cites the ledger entries behind every statement, so
a court can check it against an exported, independently verified ledger.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from faceledger.auth.roles import Role, has_role
from faceledger.config import Settings
from faceledger.faces.decode import sniff_format
from faceledger.ledger import log
from faceledger.render import render
from faceledger.search import probes
from faceledger.search.outcome import DONE, ServiceRefusal, result_dict
from faceledger.search.requests import subject
from faceledger.search.review import decisions_on, is_confirmed, request_summary
from faceledger.store.models import LedgerEntry, SearchRequest, User


def _ledger_refs(session: Session, subjects: list[str]) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(LedgerEntry)
        .where(or_(*(LedgerEntry.subject == s for s in subjects)))
        .order_by(LedgerEntry.seq)
    )
    return [
        {
            "seq": e.seq,
            "action": e.action,
            "actor": e.actor,
            "at": e.created_at,
            "hash": e.entry_hash,
        }
        for e in rows
    ]


def _probe_image(settings: Settings, row: SearchRequest) -> str | None:
    """The probe as a data URI while retention still keeps it."""
    data = probes.load(settings, row.probe_file)
    if data is None:
        return None
    kind = sniff_format(data) or "octet-stream"
    return f"data:image/{kind.lower()};base64,{base64.b64encode(data).decode()}"


def export(
    session: Session,
    settings: Settings,
    row: SearchRequest,
    user: User,
    folder: Path,
    candidates: bool,
) -> list[Path]:
    """Write evidence-request-N.json and .html into `folder`; return their paths."""
    if row.requester_id != user.id and not has_role(user, Role.APPROVER):
        raise ServiceRefusal(
            "not_allowed", f"{user.name} may not export request {row.id}: requester or approver"
        )
    if row.status != DONE:
        raise ServiceRefusal("no_results", f"request {row.id} is {row.status}: nothing to export")
    live = [r for r in row.results if r.purged_at is None]
    chosen = live if candidates else [r for r in live if is_confirmed(row, r)]
    if not chosen:
        raise ServiceRefusal(
            "nothing_confirmed",
            f"no match of request {row.id} has been confirmed by two people; "
            "export unconfirmed candidates explicitly (--candidates) if you must",
        )
    entry = log.append(
        session,
        actor=user.name,
        action="evidence.exported",
        subject=subject(row),
        payload={"candidates": candidates, "result_ids": [r.id for r in chosen]},
    )
    sheet = {
        "request": request_summary(session, row),
        "probe": {"hash": row.probe_hash, "box": row.probe_box, "estimated_age": row.probe_age},
        "candidates_included": candidates,
        "matches": [
            result_dict(r)
            | {"confirmed": is_confirmed(row, r), "decisions": decisions_on(session, r)}
            for r in chosen
        ],
        "exported_by": user.name,
        "export_ledger_seq": entry.seq,
        "ledger_entries": _ledger_refs(
            session, [subject(row), *(f"result:{r.id}" for r in chosen)]
        ),
    }
    folder.mkdir(parents=True, exist_ok=True)
    base = folder / f"evidence-request-{row.id}"
    json_path, html_path = base.with_suffix(".json"), base.with_suffix(".html")
    json_path.write_text(json.dumps(sheet, indent=2))
    html_path.write_text(
        render("evidence.html", sheet=sheet, probe_image=_probe_image(settings, row))
    )
    return [json_path, html_path]
