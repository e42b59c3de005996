"""Comparing every face of a crawl's images with the enrolled templates; only matches leave.

Images are analysed in memory, one at a time; a face below the threshold for every template
is dropped where it was found, so nothing about it outlives this loop but the counts. Faces
the age gate does not allow (refused, or in the review band, as for search probes) are
counted and never compared: no alert may ever be about a child, and a child who resembles an
enrolled adult (their own child, say) must not become one.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from faceledger.ingest.job import Analyser
from faceledger.policy.minors import AgeGate, Decision
from faceledger.types import SourceItem
from faceledger.watch.enrol import Templates


@dataclass(frozen=True)
class Hit:
    """A face that matched an enrolled person, with its capture's provenance (no bytes)."""

    subject_id: int
    score: float
    box: list[int]
    content_hash: str
    item: SourceItem


@dataclass
class ScanResult:
    hits: list[Hit] = field(default_factory=list)
    images: int = 0
    faces_seen: int = 0
    minor_faces: int = 0
    unreadable: Counter[str] = field(default_factory=Counter)


def best_matches(
    templates: np.ndarray, embeddings: np.ndarray, threshold: float
) -> list[tuple[int, int, float]]:
    """(face row, template row, cosine score) for each face whose best template reaches
    `threshold`; unit vectors, so the inner product is the cosine similarity."""
    if len(templates) == 0 or len(embeddings) == 0:
        return []
    scores = np.asarray(embeddings, dtype=np.float32) @ templates.T
    best = scores.argmax(axis=1)
    return [
        (face, int(row), float(scores[face, row]))
        for face, row in enumerate(best)
        if scores[face, row] >= threshold
    ]


def scan(
    items: Iterable[SourceItem],
    analyser: Analyser,
    templates: Templates,
    threshold: float,
    gate: AgeGate,
) -> ScanResult:
    """The best-scoring face of each enrolled person in each image, and what was counted."""
    result = ScanResult()
    for (item, data), (analysed, reason, _) in analyser.run(_readable(items, result)):
        if analysed is None:
            result.unreadable[reason or "failed"] += 1
            continue
        result.images += 1
        result.faces_seen += len(analysed.faces)
        adults = [f for f in analysed.faces if gate.decide(f.age) is Decision.ALLOW]
        result.minor_faces += len(analysed.faces) - len(adults)
        vectors = np.array([face.embedding for face in adults], dtype=np.float32)
        best: dict[int, tuple[float, int]] = {}
        for face, row, score in best_matches(templates.matrix, vectors, threshold):
            subject_id = templates.ids[row]
            best[subject_id] = max(best.get(subject_id, (score, face)), (score, face))
        for subject_id, (score, face) in best.items():
            result.hits.append(
                Hit(
                    subject_id=subject_id,
                    score=score,
                    box=adults[face].box.as_list(),
                    content_hash=hashlib.sha256(data).hexdigest(),
                    item=dataclasses.replace(item, data=None),
                )
            )
    return result


def _readable(
    items: Iterable[SourceItem], result: ScanResult
) -> Iterator[tuple[tuple[SourceItem, bytes], bytes]]:
    """Analyser jobs keyed by (item, bytes); items the archive could not give are counted."""
    for item in items:
        if item.data is None:
            result.unreadable[(item.error or "unreadable").partition(": ")[0]] += 1
        else:
            yield (item, item.data), item.data
