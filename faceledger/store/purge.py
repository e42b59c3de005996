"""Deleting faces: from the store in the caller's transaction, from the indexes after it commits.

Every service that deletes faces (opt-outs, retention, the search service) goes through
`purge_faces`, so the order is always the same: store first, index second. A crash between
the two leaves stray ids in an index, which `reconcile` removes the next time it is opened;
the reverse order could lose faces from an index while the store still holds them.
Source images are kept: their content hash is what makes a re-ingest of the same bytes
skip them as already indexed, so a purged face does not come back that way. The indexes are
reached through `IndexSource`, which the composition root satisfies, so the store does not
import what composes it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from faceledger.store.models import Face

# Bound the number of SQL parameters per statement (SQLite's limit is configurable).
_CHUNK = 500


class PurgeableIndex(Protocol):
    """What a purge needs of a collection's vector index."""

    def remove(self, ids: np.ndarray) -> int: ...

    def save(self) -> None: ...


class IndexSource(Protocol):
    """Whatever hands out each collection's index (the workspace)."""

    def index(self, collection_id: int) -> PurgeableIndex: ...


@dataclass
class FacePurge:
    """Faces deleted from the store, by collection id, waiting to be dropped from the indexes."""

    indexes: IndexSource
    face_ids: dict[int, list[int]] = field(default_factory=dict)

    @property
    def counts(self) -> dict[int, int]:
        """Collection id -> faces deleted."""
        return {collection: len(ids) for collection, ids in self.face_ids.items()}

    def apply_to_indexes(self) -> None:
        """Remove the purged ids from each collection's index; call after the commit."""
        for collection_id, ids in self.face_ids.items():
            index = self.indexes.index(collection_id)
            if index.remove(np.asarray(ids, dtype=np.int64)):
                index.save()


def purge_faces(indexes: IndexSource, session: Session, face_ids: Iterable[int]) -> FacePurge:
    """Delete these Face rows (ids that do not exist are ignored); the caller commits."""
    wanted = sorted({int(i) for i in face_ids})
    by_collection: dict[int, list[int]] = defaultdict(list)
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        rows = session.execute(select(Face.id, Face.collection_id).where(Face.id.in_(chunk)))
        for face_id, collection_id in rows:
            by_collection[collection_id].append(face_id)
        session.execute(delete(Face).where(Face.id.in_(chunk)))
    return FacePurge(indexes, {c: sorted(ids) for c, ids in sorted(by_collection.items())})
