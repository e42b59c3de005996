"""Appending to the ledger, inside the caller's transaction, and erasing payloads.

An entry is written in the same database transaction as the action it records, so an
action without its entry (or the reverse) cannot be committed. Appends from several
processes take turns: on SQLite the write transaction already holds the database's write
lock (`BEGIN IMMEDIATE`, see `store.db`); on PostgreSQL the first append of a transaction
takes a transaction-scoped advisory lock, waiting at most `LOCK_TIMEOUT`, before it reads
the head. Either way the head read is the newest one, so appends never fail on a taken
sequence number and the chain never forks. Sequence numbers stay the primary key, the
last line of defence should a writer ever skip the lock.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from faceledger.ledger.chain import GENESIS, canonical, entry_hash, payload_hash
from faceledger.store.db import LEDGER_LOCK
from faceledger.store.models import LedgerEntry, LedgerPayload

LOCK_TIMEOUT = "30s"
_LOCKED = "faceledger.ledger_locked"


def _timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _take_turn(session: Session) -> None:
    """Hold the ledger's lock until this transaction ends (PostgreSQL; see the docstring)."""
    connection = session.connection()
    if connection.dialect.name != "postgresql" or session.info.get(_LOCKED) is connection:
        return
    connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({LEDGER_LOCK})")
    session.info[_LOCKED] = connection


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
    session.flush()  # the action's own changes first: row locks before the ledger's lock
    _take_turn(session)
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
