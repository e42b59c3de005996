"""The ledger: entries with their payloads, filtered and paged (admins and auditors), and
verification of the whole chain (anyone signed in, as `faceledger ledger verify`).

Verifying walks every entry, so it is its own page rather than part of every ledger page.
The export button posts to the API's export (a zip bundle with its own verifier, ledgered).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, BeforeValidator, PositiveInt
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from faceledger.ledger import keys
from faceledger.ledger.log import head
from faceledger.ledger.verify import find_records, verify
from faceledger.store.models import LedgerEntry
from faceledger.web.deps import Actor, App, Overseer
from faceledger.web.pages.render import NavItem, page

router = APIRouter()
NAV_ITEMS = (NavItem("Ledger", "/ledger", ("admin", "auditor")),)
PAGE = 50


def _blank(value: Any) -> Any:
    """A form field left empty means "no filter"."""
    return None if value == "" else value


Blank = BeforeValidator(_blank)


class LedgerFilter(BaseModel):
    action: Annotated[str | None, Blank] = None
    actor: Annotated[str | None, Blank] = None
    subject: Annotated[str | None, Blank] = None
    since: Annotated[dt.date | None, Blank] = None
    until: Annotated[dt.date | None, Blank] = None
    first: Annotated[PositiveInt | None, Blank] = None

    def query(self, **changes: Any) -> str:
        values = self.model_dump() | changes
        return urlencode({key: value for key, value in values.items() if value is not None})


def _stamp(day: dt.date) -> str:
    """Midnight UTC of `day` as a ledger timestamp (UTC ISO strings sort as times do)."""
    return dt.datetime.combine(day, dt.time(), dt.UTC).isoformat(timespec="microseconds")


def _seq_range(session: Session, since: dt.date | None, until: dt.date | None) -> range:
    """The seqs written from `since` through `until` (whole UTC days; the ledger only grows)."""
    newest = head(session)
    first, last = 1, newest.seq if newest else 0
    if since is not None:
        found = session.scalar(
            select(func.min(LedgerEntry.seq)).where(LedgerEntry.created_at >= _stamp(since))
        )
        first = found if found is not None else last + 1
    if until is not None:
        end = _stamp(until + dt.timedelta(days=1))
        found = session.scalar(
            select(func.max(LedgerEntry.seq)).where(LedgerEntry.created_at < end)
        )
        last = found if found is not None else 0
    return range(first, last + 1)


def _shown(record: dict[str, Any]) -> dict[str, Any]:
    payload = record["payload"]
    text = None if payload is None else json.dumps(payload, indent=2, ensure_ascii=False)
    return record | {"payload_text": text}


@router.get("/ledger", response_class=HTMLResponse)
def ledger(
    request: Request, app: App, user: Overseer, where: Annotated[LedgerFilter, Query()]
) -> HTMLResponse:
    with app.workspace.sessions() as session:
        seqs = _seq_range(session, where.since, where.until)
        found = find_records(
            session,
            action=where.action,
            actor=where.actor,
            subject=where.subject,
            first=max(seqs.start, where.first or 1),
            last=seqs.stop - 1,
            limit=PAGE,
        )
        actions = list(session.scalars(select(LedgerEntry.action).distinct().order_by("action")))
        newest = head(session)
    following = where.query(first=found[-1]["seq"] + 1) if len(found) == PAGE else None
    return page(
        request,
        "web/ledger.html",
        user,
        entries=[_shown(record) for record in found],
        where=where,
        actions=actions,
        head={"seq": newest.seq, "hash": newest.entry_hash} if newest else None,
        following=following,
        page_size=PAGE,
    )


@router.get("/ledger/verify", response_class=HTMLResponse)
def check(request: Request, app: App, user: Actor) -> HTMLResponse:
    """Walk the whole chain now: whether it holds and which entry breaks it (no payloads)."""
    started = time.monotonic()
    with app.workspace.sessions() as session:
        report = verify(session, keys.existing_public_key(app.settings)).as_dict()
    seconds = time.monotonic() - started
    return page(request, "web/verify.html", user, report=report, seconds=seconds)
