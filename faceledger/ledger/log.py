"""Appending to the ledger, inside the caller's transaction, and erasing payloads.

An entry is written in the same database transaction as the action it records, so an
action without its entry (or the reverse) cannot be committed. Sequence numbers are the
primary key: two writers racing for the same number cannot both commit, so the chain
never forks; the loser's transaction fails and nothing it did is kept.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from faceledger.ledger.chain import GENESIS, canonical, entry_hash, payload_hash
from faceledger.store.models import LedgerEntry, LedgerPayload


def _timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def head(session: Session) -> LedgerEntry | None:
    last = session.scalar(select(func.max(LedgerEntry.seq)))
    return session.get(LedgerEntry, last) if last is not None else None


def append(
    session: Session,
    *,
    actor: str | None,
    action: str,
    subject: str | None = None,
    payload: dict[str, Any] | None = None,
) -> LedgerEntry:
    """Add one entry after the current head; the caller commits (with its own changes)."""
    body = payload or {}
    previous = head(session)
    header: dict[str, Any] = {
        "seq": (previous.seq + 1) if previous else 1,
        "created_at": _timestamp(),
        "actor": actor,
        "action": action,
        "subject": subject,
        "payload_hash": payload_hash(body),
        "prev_hash": previous.entry_hash if previous else GENESIS,
    }
    entry = LedgerEntry(**header, entry_hash=entry_hash(header))
    session.add(entry)
    session.flush()
    session.add(LedgerPayload(seq=entry.seq, body=canonical(body).decode()))
    session.flush()
    return entry


def erase_payload(session: Session, seq: int) -> None:
    """Right to erasure: drop the payload, keep its hash so the chain still verifies."""
    payload = session.get(LedgerPayload, seq)
    if payload is None:
        raise LookupError(f"no ledger entry {seq}")
    payload.body = None
    payload.erased_at = datetime.now(UTC)
