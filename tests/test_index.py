"""The local vector index and its reconciliation with the store (real faiss, real SQLite)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from faceledger.config import Settings
from faceledger.faces.types import Box, FaceRecord
from faceledger.index.local import LocalIndex
from faceledger.index.reconcile import ReconcileReport, reconcile
from faceledger.store import repo
from faceledger.store.purge import purge_faces
from faceledger.types import SourceItem
from faceledger.workspace import Workspace
from tests.accounts import add_collection


def reconcile_with_store(
    index: LocalIndex, session: Session, collection_id: int
) -> ReconcileReport:
    return reconcile(
        index, repo.face_ids(session, collection_id), partial(repo.embeddings, session)
    )


def unit_vectors(n: int, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(n, 128)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def record(vector: np.ndarray) -> FaceRecord:
    return FaceRecord(
        box=Box(1, 2, 30, 40),
        landmarks=np.zeros((5, 2), np.float32),
        detector_score=1.0,
        quality=0.9,
        age=40.0,
        embedding=vector,
    )


def test_search_finds_nearest_and_survives_reload(tmp_path: Path) -> None:
    vectors = unit_vectors(50)
    index = LocalIndex(tmp_path / "a.faiss")
    index.add(np.arange(100, 150), vectors)
    ids, scores = index.search(vectors[7], 3)
    assert ids[0] == 107 and abs(scores[0] - 1.0) < 1e-5
    assert list(scores) == sorted(scores, reverse=True)
    index.save()
    reloaded = LocalIndex(tmp_path / "a.faiss")
    assert len(reloaded) == 50
    assert reloaded.search(vectors[7], 1)[0][0] == 107


def test_remove_deletes_by_id(tmp_path: Path) -> None:
    vectors = unit_vectors(10)
    index = LocalIndex(tmp_path / "a.faiss")
    index.add(np.arange(10), vectors)
    assert index.remove(np.array([3, 4, 99])) == 2
    assert 3 not in index.search(vectors[3], 10)[0]
    assert sorted(index.ids()) == [0, 1, 2, 5, 6, 7, 8, 9]


def test_empty_index_search_returns_nothing(tmp_path: Path) -> None:
    ids, scores = LocalIndex(tmp_path / "a.faiss").search(unit_vectors(1)[0], 5)
    assert len(ids) == 0 and len(scores) == 0


def test_reconcile_adds_missing_and_removes_stray(settings: Settings) -> None:
    workspace = Workspace(settings)
    vectors = unit_vectors(6)
    collection_id = add_collection(settings, "c")
    with workspace.sessions() as session:
        stored = repo.add_image(
            session,
            collection_id,
            SourceItem(image_url="file:///x.jpg", data=None),
            "a" * 64,
            (100, 100),
            [record(v) for v in vectors[:4]],
        )
        session.commit()
    index = LocalIndex(settings.index_dir / "stale.faiss")
    index.add(np.array([stored[0][0], 9999]), np.stack([vectors[0], vectors[5]]))
    with workspace.sessions() as session:
        report = reconcile_with_store(index, session, collection_id)
    assert (report.added, report.removed) == (3, 1)
    assert sorted(index.ids()) == sorted(face_id for face_id, _ in stored)
    with workspace.sessions() as session:
        again = reconcile_with_store(index, session, collection_id)
    assert (again.added, again.removed) == (0, 0)


def test_same_content_twice_in_a_collection_is_refused(settings: Settings) -> None:
    workspace = Workspace(settings)
    collection_id = add_collection(settings, "c")
    with workspace.sessions() as session:
        item = SourceItem(image_url="file:///x.jpg", data=None)
        repo.add_image(session, collection_id, item, "b" * 64, (1, 1), [])
        session.commit()
        with pytest.raises(IntegrityError):
            repo.add_image(session, collection_id, item, "b" * 64, (1, 1), [])


def test_a_long_running_process_sees_what_another_one_indexed_or_purged(
    settings: Settings,
) -> None:
    """The web app keeps indexes open; a CLI ingest or opt-out purge must reach its searches."""
    writer, server = Workspace(settings), Workspace(settings)
    vectors = unit_vectors(6)
    collection_id = add_collection(settings, "c")
    writer.index(collection_id)  # open before storing, as an ingest job does

    def ingest(digest: str, batch: np.ndarray) -> list[int]:
        with writer.sessions() as session:
            item = SourceItem(image_url=f"file:///{digest}.jpg", data=None)
            stored = repo.add_image(
                session, collection_id, item, digest * 64, (9, 9), [record(v) for v in batch]
            )
            session.commit()
        index = writer.index(collection_id)
        index.add(np.array([i for i, _ in stored]), batch)
        index.save()
        return [i for i, _ in stored]

    first = ingest("a", vectors[:4])
    seen = server.index(collection_id)
    assert sorted(seen.ids()) == first
    assert server.index(collection_id) is seen  # unchanged file: no reopening
    second = ingest("b", vectors[4:])
    assert sorted(server.index(collection_id).ids()) == first + second
    with writer.sessions() as session:
        purge = purge_faces(writer, session, [first[0]])
        session.commit()
    purge.apply_to_indexes()
    assert sorted(server.index(collection_id).ids()) == first[1:] + second
