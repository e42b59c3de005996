"""Takedown letters from an alert: an erasure request (GDPR Art. 17) or a DMCA-style notice.

The letter is filled in from the alert's evidence (page, image, capture time, WARC record
id and digest) and the sender's details; what only a person can say is left in [brackets].
Producing one is ledgered with the letter's SHA-256, so the letter sent can be proven.
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from faceledger.auth.clock import utcnow
from faceledger.auth.roles import Role, require_role
from faceledger.ledger import log
from faceledger.render import render
from faceledger.store.models import User
from faceledger.watch.alerts import alert_dict, alert_ref, get_alert
from faceledger.watch.enrol import WatchError

KINDS = ("gdpr", "dmca")


def takedown_letter(
    session: Session,
    actor: User,
    alert_id: int,
    kind: str,
    sender: str | None = None,
    contact: str | None = None,
) -> str:
    """The filled-in letter for one alert (admin; ledgered; the caller commits)."""
    require_role(actor, Role.ADMIN)
    if kind not in KINDS:
        raise WatchError(f"unknown takedown kind {kind!r}: choose from {', '.join(KINDS)}")
    alert, label = get_alert(session, alert_id)
    site = urlsplit(alert.page_url or alert.image_url).netloc
    letter = render(
        f"takedown-{kind}.txt",
        alert=alert_dict(alert, label),
        site=site,
        sender=sender or "[your name]",
        contact=contact or "[your postal or e-mail address]",
        date=utcnow().date().isoformat(),
    )
    log.append(
        session,
        actor=actor.name,
        action="watch.takedown",
        subject=alert_ref(alert.id),
        payload={
            "kind": kind,
            "site": site,
            "letter_sha256": hashlib.sha256(letter.encode()).hexdigest(),
        },
    )
    return letter
