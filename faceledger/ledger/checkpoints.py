"""Signed checkpoints: 'the chain up to entry N ends in hash H', signed with the ledger key.

A hash chain alone cannot show that its tail was cut off or that it was rebuilt from
scratch; a signature over the head can, for anyone holding the public key. A checkpoint
is a statement about the chain, not an entry in it, and it is written in the caller's
transaction so it never outlives the entries it vouches for.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from faceledger.config import Settings
from faceledger.errors import FaceledgerError
from faceledger.ledger import keys
from faceledger.ledger.chain import canonical
from faceledger.ledger.log import head
from faceledger.ledger.standalone_verify import STATEMENT_FIELDS, ChainChecker
from faceledger.ledger.verify import checkpoint_record, run_checker
from faceledger.store.models import LedgerCheckpoint, LedgerEntry


class ChainBroken(FaceledgerError):
    """The chain does not check out, so it must not be signed (exit 1, as `verify` does)."""

    code = "ledger_broken"
    http_status = 409

    def __init__(self, problem: str, seq: int | None) -> None:
        super().__init__(f"not signing a broken chain: {problem}", seq=seq)
        self.problem, self.seq = problem, seq


def statement(seq: int, entry_hash: str, created_at: str, key_id: str) -> bytes:
    """The bytes a checkpoint's signature covers (canonical JSON of these four fields)."""
    values = {"seq": seq, "entry_hash": entry_hash, "created_at": created_at, "key_id": key_id}
    return canonical({name: values[name] for name in STATEMENT_FIELDS})


def last_checkpoint(session: Session) -> LedgerCheckpoint | None:
    query = select(LedgerCheckpoint).order_by(
        LedgerCheckpoint.seq.desc(), LedgerCheckpoint.id.desc()
    )
    return session.scalars(query.limit(1)).first()


def _check_since(session: Session, settings: Settings, last: LedgerCheckpoint | None) -> None:
    """Refuse to sign unless the entries since the last checkpoint extend it intact.

    Only the new segment is read (anchored on the last checkpoint, itself checked), so a
    checkpoint every N entries costs N entries of hashing, not the whole chain.
    """
    if last is None:
        checker = ChainChecker(None)
    else:
        public_key = keys.signing_key(settings).public_key()
        anchor = [checkpoint_record(last)]
        checker = ChainChecker(public_key, anchor, start=last.seq, prev_hash=None)
    run_checker(session, checker)
    if checker.problem is not None:
        raise ChainBroken(checker.problem, checker.problem_seq)


def checkpoint(session: Session, settings: Settings) -> LedgerCheckpoint | None:
    """Sign the current head (the caller commits); None if the ledger is empty or the head
    already has a checkpoint. Raises ChainBroken rather than sign a chain that is not whole.
    """
    entry = head(session)
    last = last_checkpoint(session)
    if entry is None or (last is not None and last.seq >= entry.seq):
        return None
    _check_since(session, settings, last)
    key = keys.signing_key(settings)
    key_id = keys.key_id(key.public_key())
    created_at = datetime.now(UTC).isoformat(timespec="microseconds")
    signature = key.sign(statement(entry.seq, entry.entry_hash, created_at, key_id)).hex()
    signed = LedgerCheckpoint(
        seq=entry.seq,
        entry_hash=entry.entry_hash,
        created_at=created_at,
        key_id=key_id,
        signature=signature,
    )
    session.add(signed)
    session.flush()
    return signed


def maybe_checkpoint(
    session: Session, settings: Settings, every: int = 100
) -> LedgerCheckpoint | None:
    """Checkpoint when the head is `every` or more entries past the last checkpoint.

    Called by services after they append, so it must not turn a broken chain into a failed
    action: a chain that does not check out is left unsigned (and `verify` reports it).
    """
    if every < 1:
        raise ValueError("every must be at least 1")
    head_seq = session.scalar(select(func.max(LedgerEntry.seq))) or 0
    signed_seq = session.scalar(select(func.max(LedgerCheckpoint.seq))) or 0
    if head_seq - signed_seq < every:
        return None
    try:
        return checkpoint(session, settings)
    except ChainBroken:
        return None
