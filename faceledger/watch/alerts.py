"""Alerts: stored and ledgered before anything is sent, then delivered, each outcome kept.

An alert is committed with its ledger entry and its evidence file before any delivery is
tried, so a webhook or mail server that is down costs a delivery, never the alert; the
failed targets stay on the alert (`deliveries`) and `redeliver` tries them again.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from faceledger.auth.clock import as_utc
from faceledger.auth.roles import Role, require_role
from faceledger.config import Settings
from faceledger.errors import NotFound
from faceledger.ledger import log
from faceledger.store.models import User, WatchAlert, WatchSubject
from faceledger.watch.delivery import Notice, Target, configured_targets, send
from faceledger.watch.evidence import copy_captures
from faceledger.watch.scan import Hit


class UnknownAlert(NotFound):
    """No alert has that id."""


def alert_ref(alert_id: int) -> str:
    return f"watch-alert:{alert_id}"


def is_repeat(session: Session, hit: Hit) -> bool:
    """Whether this person was already alerted about these image bytes at this URL and page
    (a later round crawling the same site finds them again)."""
    item = hit.item
    found = session.scalar(
        select(WatchAlert.id).where(
            WatchAlert.subject_id == hit.subject_id,
            WatchAlert.content_hash == hit.content_hash,
            WatchAlert.image_url == item.image_url,
            WatchAlert.page_url.is_not_distinct_from(item.page_url),
        )
    )
    return found is not None


def record_alert(
    session: Session,
    actor: User,
    run_id: int,
    hit: Hit,
    warc_files: Sequence[Path],
    evidence_dir: Path,
) -> WatchAlert:
    """Store and ledger one match, with its captures copied out as evidence (the caller
    commits). The evidence file's SHA-256 goes to the ledger, so it is tamper-evident too."""
    item = hit.item
    alert = WatchAlert(
        run_id=run_id,
        subject_id=hit.subject_id,
        score=hit.score,
        image_url=item.image_url,
        page_url=item.page_url,
        page_title=item.page_title,
        captured_at=item.captured_at,
        warc_record_id=item.warc_record_id,
        warc_digest=item.warc_digest,
        content_hash=hit.content_hash,
        box=hit.box,
        deliveries={},
    )
    session.add(alert)
    session.flush()
    evidence = evidence_dir / f"alert-{alert.id}.warc.gz"
    uris = {item.image_url, *([item.page_url] if item.page_url else [])}
    copy_captures(warc_files, uris, evidence)
    alert.evidence_file = str(evidence)
    log.append(
        session,
        actor=actor.name,
        action="watch.alert",
        subject=alert_ref(alert.id),
        payload={
            **_evidence(alert),
            "run": run_id,
            "subject": hit.subject_id,
            "score": round(hit.score, 4),
            "box": hit.box,
            "evidence_sha256": hashlib.sha256(evidence.read_bytes()).hexdigest(),
        },
    )
    return alert


def _evidence(alert: WatchAlert) -> dict[str, Any]:
    """Where the face was found and the capture that proves it."""
    return {
        "page_url": alert.page_url,
        "page_title": alert.page_title,
        "image_url": alert.image_url,
        "captured_at": as_utc(alert.captured_at).isoformat() if alert.captured_at else None,
        "warc_record_id": alert.warc_record_id,
        "warc_digest": alert.warc_digest,
    }


def alert_dict(alert: WatchAlert, label: str) -> dict[str, Any]:
    """An alert as commands and webhooks show it."""
    return {
        "id": alert.id,
        "run": alert.run_id,
        "subject": alert.subject_id,
        "label": label,
        "score": round(alert.score, 4),
        **_evidence(alert),
        "box": alert.box,
        "evidence_file": alert.evidence_file,
        "deliveries": alert.deliveries,
        "created_at": as_utc(alert.created_at).isoformat(),
    }


def notice(alert: WatchAlert, label: str) -> Notice:
    """What is sent: the evidence, never the delivery records or the evidence file's path."""
    shown = alert_dict(alert, label)
    del shown["deliveries"], shown["evidence_file"]
    site = urlsplit(alert.page_url or alert.image_url).netloc
    lines = [
        f"The face of {label} (enrolled person {alert.subject_id}) was found on {site}.",
        "",
        *(f"{key.replace('_', ' ')}: {value}" for key, value in shown.items()),
        "",
        f"A takedown letter: faceledger watch takedown {alert.id} --out letter.txt",
    ]
    return Notice(
        document={"event": "watch.alert", "alert": shown},
        subject=f"faceledger watch alert {alert.id}: {label} found on {site}",
        text="\n".join(lines) + "\n",
    )


def deliver(
    settings: Settings, alert: WatchAlert, label: str, targets: Sequence[Target]
) -> list[dict[str, Any]]:
    """Send the alert to each target and record each outcome on it (the caller commits)."""
    message = notice(alert, label)
    outcomes = {target.key: send(settings, target, message) for target in targets}
    alert.deliveries = {**alert.deliveries, **outcomes}
    return list(outcomes.values())


def delivery_counts(outcomes: Sequence[dict[str, Any]]) -> dict[str, int]:
    counts = Counter(str(outcome["status"]) for outcome in outcomes)
    return {"sent": counts["sent"], "failed": counts["failed"]}


def _with_labels(session: Session, query: Select[WatchAlert, str]) -> list[tuple[WatchAlert, str]]:
    rows = session.execute(query.join(WatchSubject, WatchSubject.id == WatchAlert.subject_id))
    return [(alert, label) for alert, label in rows]


def list_alerts(session: Session, actor: User) -> list[dict[str, Any]]:
    """Every alert, newest last (admins and auditors)."""
    require_role(actor, Role.ADMIN, Role.AUDITOR)
    query = select(WatchAlert, WatchSubject.label).order_by(WatchAlert.id)
    return [alert_dict(alert, label) for alert, label in _with_labels(session, query)]


def get_alert(session: Session, alert_id: int) -> tuple[WatchAlert, str]:
    query = select(WatchAlert, WatchSubject.label).where(WatchAlert.id == alert_id)
    found = _with_labels(session, query)
    if not found:
        raise UnknownAlert(f"no watch alert with id {alert_id}")
    return found[0]


def redeliver(
    settings: Settings, session: Session, actor: User, alert_ids: Sequence[int] = ()
) -> dict[int, list[dict[str, Any]]]:
    """Try again every failed delivery (of the alerts named, else of all) to targets that are
    still configured (admin; the caller commits)."""
    require_role(actor, Role.ADMIN)
    query = select(WatchAlert, WatchSubject.label).order_by(WatchAlert.id)
    if alert_ids:
        query = query.where(WatchAlert.id.in_(alert_ids))
    retried = {}
    for alert, label in _with_labels(session, query):
        failed = {key for key, sent in alert.deliveries.items() if sent["status"] != "sent"}
        targets = [t for t in configured_targets(settings) if t.key in failed]
        if targets:
            retried[alert.id] = deliver(settings, alert, label, targets)
    return retried
