"""Bring a collection's vector index in line with the store after any interruption.

Faces are committed to the store first and added to the index afterwards, so a killed
process can leave the index behind (faces missing) or ahead (faces whose transaction
rolled back). Reconciling adds the missing and removes the stray; it never duplicates,
because the index is keyed by face id. The caller reads the store (the face ids it holds
and a loader of their embeddings), so the index package does not depend on the store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from faceledger.index.base import VectorIndex

EmbeddingLoader = Callable[[Sequence[int]], Iterable[tuple[np.ndarray, np.ndarray]]]
"""Face ids -> batches of (ids, vectors), read from the store of record."""


@dataclass(frozen=True)
class ReconcileReport:
    added: int
    removed: int


def reconcile(index: VectorIndex, stored: np.ndarray, load: EmbeddingLoader) -> ReconcileReport:
    """Make `index` hold exactly the face ids in `stored`, loading missing vectors by `load`."""
    indexed = index.ids()
    missing = np.setdiff1d(stored, indexed, assume_unique=True)
    stray = np.setdiff1d(indexed, stored, assume_unique=True)
    removed = index.remove(stray) if len(stray) else 0
    added = 0
    for ids, vectors in load(missing.tolist()):
        index.add(ids, vectors)
        added += len(ids)
    if added or removed:
        index.save()
    return ReconcileReport(added=added, removed=removed)
