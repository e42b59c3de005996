"""The vector index interface every backend implements.

The relational store is the source of truth (it keeps every embedding); an index is a
derived, rebuildable structure keyed by face id. That is what keeps the two consistent
after a crash: on open, the index is reconciled with the store.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class VectorIndex(Protocol):
    """Inner-product search over unit vectors, keyed by face id, with deletes."""

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...

    def remove(self, ids: np.ndarray) -> int: ...

    def search(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Return (ids, scores) best first; at most k."""
        ...

    def ids(self) -> np.ndarray: ...

    def save(self) -> None: ...

    def __len__(self) -> int: ...
