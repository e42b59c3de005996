"""An ingestion job: items -> face pipeline (in worker processes) -> store + index.

Faces of people in the opt-out registry are skipped when the collection honours opt-outs;
the registry is read once, when the job starts.

Resumable by construction: an image and its faces are stored together (in one savepoint of
a batch transaction), keyed by (collection, content hash), so a re-run skips what is
already in and a killed run loses at most the last uncommitted batch. Faces reach the
index only after their commit, and the index is reconciled with the store on open.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from faceledger.config import Settings
from faceledger.faces.decode import ImageRejected
from faceledger.faces.pipeline import AnalysedImage, FacePipeline
from faceledger.faces.types import FaceRecord
from faceledger.index.local import DIMENSION, LocalIndex
from faceledger.policy.collections import get_collection
from faceledger.policy.minors import DEFAULT_AGE_GATE, AgeGate, Decision
from faceledger.policy.optouts import active_templates, matching
from faceledger.store import repo
from faceledger.types import SourceItem
from faceledger.workspace import Workspace

SAVE_EVERY = 500
COMMIT_EVERY = 32
COMMIT_SECONDS = 2.0
NO_TEMPLATES = np.empty((0, DIMENSION), dtype=np.float32)


@dataclass
class IngestSummary:
    """What a job did; `skipped` and the error list say why something was not indexed."""

    collection: str
    done: int = 0
    images: int = 0
    images_with_faces: int = 0
    faces_indexed: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    errors: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def error(self, source: str, reason: str, message: str) -> None:
        self.errors.append({"source": source, "reason": reason, "message": message})

    def skip(self, reason: str, count: int = 1) -> None:
        self.skipped[reason] += count

    def as_dict(self) -> dict[str, Any]:
        return {
            "collection": self.collection,
            "items": self.done,
            "images": self.images,
            "images_with_faces": self.images_with_faces,
            "faces_indexed": self.faces_indexed,
            "skipped": dict(sorted(self.skipped.items())),
            "errors": self.errors,
            "seconds": round(self.seconds, 2),
            "images_per_second": round(self.images / self.seconds, 2) if self.seconds else None,
        }


Outcome = tuple[AnalysedImage | None, str | None, str | None]

_worker_pipeline: FacePipeline | None = None
_worker_probe = False


def _init_worker(settings: Settings, probe: bool) -> None:
    global _worker_pipeline, _worker_probe
    _worker_pipeline = FacePipeline(settings)
    _worker_probe = probe


def analyse(pipeline: FacePipeline, data: bytes, probe: bool) -> Outcome:
    """Run the pipeline, turning any failure into (None, reason, message)."""
    try:
        return pipeline.analyse(data, probe=probe), None, None
    except ImageRejected as error:
        return None, error.reason, str(error)
    except Exception as error:  # a hostile image must never stop the job
        return None, "failed", f"{type(error).__name__}: {error}"


def _analyse_in_worker(data: bytes) -> Outcome:
    assert _worker_pipeline is not None
    return analyse(_worker_pipeline, data, _worker_probe)


class Analyser:
    """Runs `analyse` inline (one worker) or in a process pool, with bounded work in flight.

    `probe` treats every image as a probe (evaluation does: each image is known to show a
    face); ingestion does not.
    """

    def __init__(self, settings: Settings, workers: int, *, probe: bool = False) -> None:
        self.workers = workers
        self.probe = probe
        self._pipeline = FacePipeline(settings) if workers == 1 else None
        self._pool = (
            ProcessPoolExecutor(
                workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(settings, probe),
            )
            if workers > 1
            else None
        )

    def run(self, jobs: Iterable[tuple[Any, bytes]]) -> Iterator[tuple[Any, Outcome]]:
        if self._pipeline is not None:
            for key, data in jobs:
                yield key, analyse(self._pipeline, data, self.probe)
            return
        assert self._pool is not None
        pending: dict[Future[Outcome], Any] = {}
        for key, data in jobs:
            pending[self._pool.submit(_analyse_in_worker, data)] = key
            if len(pending) >= self.workers * 4:
                yield from self._drain(pending, FIRST_COMPLETED)
        yield from self._drain(pending, None)

    @staticmethod
    def _drain(
        pending: dict[Future[Outcome], Any], mode: str | None
    ) -> Iterator[tuple[Any, Outcome]]:
        done, _ = wait(pending, return_when=mode or "ALL_COMPLETED")
        for future in done:
            yield pending.pop(future), future.result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)


@dataclass
class IngestJob:
    """Index items into a collection; see the module docstring for the consistency rules.

    Stored images are committed in small batches (every `COMMIT_EVERY` images or
    `COMMIT_SECONDS`), each image in a savepoint of its own, so a duplicate stored by a
    concurrent job costs only that image, and a kill loses at most one batch, which a
    re-run redoes.
    """

    workspace: Workspace
    collection: str
    gate: AgeGate = DEFAULT_AGE_GATE
    index_review_band: bool = False
    workers: int = 1
    on_item: Callable[[IngestSummary], None] | None = None

    def run(self, items: Iterable[SourceItem]) -> IngestSummary:
        summary = IngestSummary(self.collection)
        started = time.perf_counter()
        with self.workspace.sessions() as session:
            collection = get_collection(session, self.collection)
            collection_id = collection.id
            optouts = active_templates(session) if collection.honour_optouts else NO_TEMPLATES
            index = self.workspace.index(collection_id)
            analyser = Analyser(self.workspace.settings, self.workers)
            batch = _Batch(session, index)
            in_flight: set[str] = set()
            try:
                jobs = self._admit(session, items, collection_id, summary, in_flight)
                for (item, digest), outcome in analyser.run(jobs):
                    in_flight.discard(digest)
                    summary.images += 1
                    self._store(
                        session, batch, item, digest, outcome, collection_id, optouts, summary
                    )
                    batch.maybe_commit()
                    self._tick(summary)
            finally:
                analyser.close()
                batch.close()
                summary.seconds = time.perf_counter() - started
        return summary

    def _admit(
        self,
        session: Session,
        items: Iterable[SourceItem],
        collection_id: int,
        summary: IngestSummary,
        in_flight: set[str],
    ) -> Iterator[tuple[tuple[SourceItem, str], bytes]]:
        """Yield the items worth analysing; count errors and duplicates on the way."""
        for item in items:
            if item.data is None:
                reason, _, message = (item.error or "unreadable").partition(": ")
                summary.error(item.image_url, reason, message or reason)
                self._tick(summary)
                continue
            digest = hashlib.sha256(item.data).hexdigest()
            stored = repo.stored_url(session, collection_id, digest)
            if stored is not None or digest in in_flight:
                summary.skip("already_indexed" if stored == item.image_url else "duplicate")
                self._tick(summary)
                continue
            in_flight.add(digest)
            yield (item, digest), item.data

    def _tick(self, summary: IngestSummary) -> None:
        summary.done += 1
        if self.on_item:
            self.on_item(summary)

    def _kept_faces(
        self, analysed: AnalysedImage, optouts: np.ndarray, summary: IngestSummary
    ) -> list[FaceRecord]:
        """The faces the minors gate and the opt-out registry let in; the others are counted."""
        opted_out = matching(
            optouts,
            np.array([face.embedding for face in analysed.faces], dtype=np.float32),
            self.workspace.settings.optout_threshold,
        )
        kept = []
        for face, excluded in zip(analysed.faces, opted_out, strict=True):
            decision = self.gate.decide(face.age)
            if decision is Decision.REFUSE:
                summary.skip("minor_face")
            elif decision is Decision.REVIEW and not self.index_review_band:
                summary.skip("review_band_face")
            elif excluded:
                summary.skip("opted_out")
            else:
                kept.append(face)
        if not analysed.faces:
            summary.skip("no_face")
        return kept

    def _store(
        self,
        session: Session,
        batch: _Batch,
        item: SourceItem,
        digest: str,
        outcome: Outcome,
        collection_id: int,
        optouts: np.ndarray,
        summary: IngestSummary,
    ) -> None:
        analysed, reason, message = outcome
        if analysed is None:
            summary.error(item.image_url, reason or "failed", message or "")
            return
        kept = self._kept_faces(analysed, optouts, summary)
        size = (analysed.width, analysed.height)
        try:
            with session.begin_nested():
                added = repo.add_image(session, collection_id, item, digest, size, kept)
        except IntegrityError:  # another job stored the same image meanwhile
            summary.skip("duplicate")
            return
        batch.added(added)
        if added:
            summary.images_with_faces += 1
            summary.faces_indexed += len(added)


class _Batch:
    """Commits stored images in batches and only then adds their faces to the index."""

    def __init__(self, session: Session, index: LocalIndex) -> None:
        self.session = session
        self.index = index
        self.images = 0
        self.since_save = 0
        self.faces: list[tuple[int, np.ndarray]] = []
        self.opened = time.monotonic()

    def added(self, faces: list[tuple[int, np.ndarray]]) -> None:
        self.images += 1
        self.faces += faces

    def maybe_commit(self) -> None:
        if self.images >= COMMIT_EVERY or time.monotonic() - self.opened > COMMIT_SECONDS:
            self.commit()

    def commit(self) -> None:
        self.session.commit()
        if self.faces:
            self.index.add(
                np.array([face_id for face_id, _ in self.faces]),
                np.stack([vector for _, vector in self.faces]),
            )
        self.since_save += self.images
        if self.since_save >= SAVE_EVERY:
            self.index.save()
            self.since_save = 0
        self.images, self.faces, self.opened = 0, [], time.monotonic()

    def close(self) -> None:
        self.commit()
        self.index.save()
