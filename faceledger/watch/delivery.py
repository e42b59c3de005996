"""Sending an alert: a JSON POST to each webhook, a plain-text e-mail to each address.

Each target is tried on its own and its outcome returned, never raised: the alert is stored
before anything is sent, and one failing target must not keep the others from hearing.
Targets are named by `target_key`, which shows a webhook's host but not its URL (webhook
URLs often carry a secret), so delivery records can be shown to auditors.
"""

from __future__ import annotations

import hashlib
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

import httpx

from faceledger.auth.clock import utcnow
from faceledger.config import Settings
from faceledger.errors import FaceledgerError

TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Notice:
    """One alert as it is sent: a JSON document for webhooks, a subject and text for e-mail."""

    document: dict[str, Any]
    subject: str
    text: str


@dataclass(frozen=True)
class Target:
    channel: str  # "webhook" or "email"
    address: str

    @property
    def key(self) -> str:
        if self.channel == "email":
            return f"email:{self.address}"
        digest = hashlib.sha256(self.address.encode()).hexdigest()[:8]
        return f"webhook:{urlsplit(self.address).netloc.rpartition('@')[2]}#{digest}"


class DeliveryError(FaceledgerError):
    """A target that cannot be tried as configured."""

    code = "delivery_failed"


def configured_targets(settings: Settings) -> list[Target]:
    return [Target("webhook", url) for url in settings.alert_webhooks] + [
        Target("email", address) for address in settings.alert_emails
    ]


def send(settings: Settings, target: Target, notice: Notice) -> dict[str, Any]:
    """Try one target once; the outcome as it is recorded on the alert."""
    problem: str | None
    try:
        if target.channel == "webhook":
            _post(target.address, notice)
        else:
            _mail(settings, target.address, notice)
    except (httpx.HTTPError, OSError, smtplib.SMTPException, DeliveryError) as error:
        status, problem = "failed", f"{type(error).__name__}: {error}"
    else:
        status, problem = "sent", None
    return {"channel": target.channel, "status": status, "error": problem, "at": _now()}


def _now() -> str:
    return utcnow().isoformat(timespec="seconds")


def _post(url: str, notice: Notice) -> None:
    response = httpx.post(url, json=notice.document, timeout=TIMEOUT_SECONDS)
    if not response.is_success:
        raise DeliveryError(f"HTTP {response.status_code} {response.reason_phrase}")


def _mail(settings: Settings, address: str, notice: Notice) -> None:
    if not settings.smtp_host:
        raise DeliveryError("no smtp_host is configured")
    message = EmailMessage()
    message["From"] = settings.smtp_sender
    message["To"] = address
    message["Subject"] = notice.subject
    message.set_content(notice.text)
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=TIMEOUT_SECONDS) as smtp:
        smtp.send_message(message)
