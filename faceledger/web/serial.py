"""One at a time where the web app's threads would otherwise collide.

Routes run in a thread pool, so two requests can use the database and the face pipeline at
once, which the CLI (one person, one process) never does:

- Database transactions are serialised within the process. Appending to the ledger reads
  the head and writes head + 1; two transactions doing that at once would both pick the
  same number and one would fail (a 500 for someone, and under SQLite a "database is
  locked" error). Holding one re-entrant lock from a transaction's first statement to its
  end makes every append see the previous one. Transactions are short (the face pipeline
  runs outside them), so this costs little; nested sessions in the same thread (an index
  opened mid-search) re-enter the lock.
- dlib's detector is not safe for concurrent use, so `SerialPipeline` analyses one image
  at a time (onnxruntime inside it uses both cores anyway).
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from faceledger.faces.pipeline import AnalysedImage, FacePipeline

_HOLDS = "faceledger.web.holds_lock"


def serialise_sessions(sessions: sessionmaker[Session]) -> threading.RLock:
    """Make every transaction of sessions from `sessions` hold one process-wide lock."""
    lock = threading.RLock()

    def begun(session: Session, _transaction: SessionTransaction, _connection: Any) -> None:
        if not session.info.get(_HOLDS):
            lock.acquire()
            session.info[_HOLDS] = True

    def ended(session: Session, transaction: SessionTransaction) -> None:
        if transaction.parent is None and session.info.pop(_HOLDS, False):
            lock.release()

    event.listen(sessions, "after_begin", begun)
    event.listen(sessions, "after_transaction_end", ended)
    return lock


class SerialPipeline(FacePipeline):
    """A FacePipeline that analyses one image at a time, whatever the number of threads."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lock = threading.Lock()

    def analyse(self, data: bytes, *, probe: bool = False) -> AnalysedImage:
        with self._lock:
            return super().analyse(data, probe=probe)
