"""Verify the ledger in the database: the whole chain, every payload, every checkpoint.

Rows are read in keyset-paginated batches and turned into the same records an exported
bundle holds, then checked by the bundle verifier's ChainChecker: the database and the
bundle are judged by one set of rules, in constant memory however long the chain is.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Row, Select, select
from sqlalchemy.orm import Session

from faceledger.ledger.standalone_verify import ChainChecker
from faceledger.store.models import LedgerCheckpoint, LedgerEntry, LedgerPayload

BATCH = 2000


@dataclass(frozen=True)
class VerifyReport:
    """What a verification found; `problem` names the first entry that does not check out."""

    entries: int
    checkpoints: int
    erased: int
    head_seq: int
    head_hash: str | None
    signed_seq: int
    problem: str | None = None
    problem_seq: int | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, **asdict(self)}


def _record(row: Row[*tuple[Any, ...]]) -> dict[str, Any]:
    """A joined entry + payload row as the bundle's record (an invalid body stays a string)."""
    (
        seq,
        created_at,
        actor,
        action,
        subject,
        payload_hash,
        prev_hash,
        entry_hash,
        body,
        erased_at,
    ) = row
    payload: Any = None
    if body is not None:
        try:
            payload = json.loads(body)
        except ValueError:
            payload = body
    return {
        "seq": seq,
        "created_at": created_at,
        "actor": actor,
        "action": action,
        "subject": subject,
        "payload_hash": payload_hash,
        "prev_hash": prev_hash,
        "entry_hash": entry_hash,
        "payload": payload,
        "erased": body is None and erased_at is not None,
    }


def _entries() -> Select[*tuple[Any, ...]]:
    """Entry headers with their payloads (outer join: a missing payload row is a finding)."""
    return select(
        LedgerEntry.seq,
        LedgerEntry.created_at,
        LedgerEntry.actor,
        LedgerEntry.action,
        LedgerEntry.subject,
        LedgerEntry.payload_hash,
        LedgerEntry.prev_hash,
        LedgerEntry.entry_hash,
        LedgerPayload.body,
        LedgerPayload.erased_at,
    ).outerjoin(LedgerPayload, LedgerPayload.seq == LedgerEntry.seq)


def iter_records(
    session: Session, *, start: int = 1, batch: int = BATCH
) -> Iterator[dict[str, Any]]:
    """Entries with seq >= start, in seq order, a batch of rows at a time."""
    query = _entries().order_by(LedgerEntry.seq).limit(batch)
    after = start - 1
    while True:
        rows = session.execute(query.where(LedgerEntry.seq > after)).all()
        for row in rows:
            yield _record(row)
        if len(rows) < batch:
            return
        after = rows[-1].seq


def recent_records(
    session: Session, *, last: int = 20, action: str | None = None
) -> list[dict[str, Any]]:
    """The newest `last` entries (optionally of one action), oldest first."""
    query = _entries().order_by(LedgerEntry.seq.desc()).limit(last)
    if action is not None:
        query = query.where(LedgerEntry.action == action)
    return [_record(row) for row in reversed(session.execute(query).all())]


def find_records(
    session: Session,
    *,
    action: str | None = None,
    actor: str | None = None,
    subject: str | None = None,
    first: int | None = None,
    last: int | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Entries matching every filter given (seqs first..last inclusive), oldest first."""
    query = _entries().order_by(LedgerEntry.seq).limit(limit)
    for column, value in (
        (LedgerEntry.action, action),
        (LedgerEntry.actor, actor),
        (LedgerEntry.subject, subject),
    ):
        if value is not None:
            query = query.where(column == value)
    if first is not None:
        query = query.where(LedgerEntry.seq >= first)
    if last is not None:
        query = query.where(LedgerEntry.seq <= last)
    return [_record(row) for row in session.execute(query)]


def checkpoint_record(checkpoint: LedgerCheckpoint) -> dict[str, Any]:
    return {
        "id": checkpoint.id,
        "seq": checkpoint.seq,
        "entry_hash": checkpoint.entry_hash,
        "created_at": checkpoint.created_at,
        "key_id": checkpoint.key_id,
        "signature": checkpoint.signature,
    }


def checkpoint_records(session: Session) -> list[dict[str, Any]]:
    """All checkpoints (one per `every` entries: few enough to hold in memory)."""
    query = select(LedgerCheckpoint).order_by(LedgerCheckpoint.seq, LedgerCheckpoint.id)
    return [checkpoint_record(c) for c in session.scalars(query)]


def run_checker(session: Session, checker: ChainChecker, *, batch: int = BATCH) -> ChainChecker:
    """Feed the checker every entry from its expected seq on, then finish it."""
    for record in iter_records(session, start=checker.expected, batch=batch):
        checker.add(record)
    checker.finish()
    return checker


def verify(
    session: Session, public_key: Ed25519PublicKey | None, *, batch: int = BATCH
) -> VerifyReport:
    """Walk the whole chain; without a public key, any checkpoint is reported as unchecked."""
    checker = run_checker(
        session, ChainChecker(public_key, checkpoint_records(session)), batch=batch
    )
    return VerifyReport(
        entries=checker.entries,
        checkpoints=checker.checkpoints,
        erased=checker.erased,
        head_seq=checker.head_seq,
        head_hash=checker.head_hash,
        signed_seq=checker.signed_seq,
        problem=checker.problem,
        problem_seq=checker.problem_seq,
    )
