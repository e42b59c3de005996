"""Bring a collection's vector index in line with the store after any interruption.

Faces are committed to the store first and added to the index afterwards, so a killed
process can leave the index behind (faces missing) or ahead (faces whose transaction
rolled back). Reconciling adds the missing and removes the stray; it never duplicates,
because the index is keyed by face id.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy.orm import Session

from faceledger.index.base import VectorIndex
from faceledger.store import repo


@dataclass(frozen=True)
class ReconcileReport:
    added: int
    removed: int


def reconcile(index: VectorIndex, session: Session, collection_id: int) -> ReconcileReport:
    stored = repo.face_ids(session, collection_id)
    indexed = index.ids()
    missing = np.setdiff1d(stored, indexed, assume_unique=True)
    stray = np.setdiff1d(indexed, stored, assume_unique=True)
    removed = index.remove(stray) if len(stray) else 0
    added = 0
    for ids, vectors in repo.embeddings(session, missing.tolist()):
        index.add(ids, vectors)
        added += len(ids)
    if added or removed:
        index.save()
    return ReconcileReport(added=added, removed=removed)
