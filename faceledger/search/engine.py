"""Engine-level face search: probe bytes -> one chosen adult face -> nearest faces -> matches.

This is the capability only; who may call it, why, and what gets recorded is the
accountable search service's job, which owns the one SearchEngine of a process.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy.orm import Session

from faceledger.errors import EXIT_CHOOSE_FACE, Refused
from faceledger.faces.pipeline import FacePipeline
from faceledger.faces.types import FaceRecord
from faceledger.policy.minors import DEFAULT_AGE_GATE, AgeGate, Decision
from faceledger.store import repo
from faceledger.store.models import Face
from faceledger.workspace import Workspace


class ProbeRefused(Refused):
    """The probe cannot be searched; `code` is stable for machines, the message for people."""


class NoFace(ProbeRefused):
    code = "no_face"


class FaceChoiceRequired(ProbeRefused):
    """Several faces: the answer lists them (number, box, estimated age) to choose from."""

    code = "choose_face"
    exit_status = EXIT_CHOOSE_FACE

    def __init__(self, faces: list[FaceRecord]) -> None:
        self.faces = faces
        listing = [
            {"face": n, "box": f.box.as_list(), "estimated_age": round(f.age, 1)}
            for n, f in enumerate(faces, 1)
        ]
        message = f"the probe shows {len(faces)} faces: choose one with --face N"
        super().__init__(message, faces=listing)


class MinorProbe(ProbeRefused):
    code = "minor"


@dataclass(frozen=True, slots=True)
class Target:
    """One collection to search, with the limit and threshold its policy sets."""

    collection_id: int
    name: str
    top_k: int
    threshold: float


@dataclass(frozen=True, slots=True)
class Match:
    face_id: int
    score: float
    collection: str
    image_url: str
    page_url: str | None
    page_title: str | None
    box: list[int]
    captured_at: datetime | None
    quality: float
    warc_digest: str | None

    def as_dict(self) -> dict[str, object]:
        return {
            "face_id": self.face_id,
            "score": round(self.score, 4),
            "collection": self.collection,
            "image_url": self.image_url,
            "page_url": self.page_url,
            "page_title": self.page_title,
            "box": self.box,
            "captured_at": self.captured_at.isoformat() if self.captured_at else None,
            "quality": self.quality,
            "warc_digest": self.warc_digest,
        }


def choose_face(faces: list[FaceRecord], number: int | None) -> FaceRecord:
    """Pick the probe face: the only one, or the one the searcher numbered (1-based)."""
    if not faces:
        raise NoFace("no face was found in the probe image")
    if number is None:
        if len(faces) > 1:
            raise FaceChoiceRequired(faces)
        return faces[0]
    if not 1 <= number <= len(faces):
        raise FaceChoiceRequired(faces)
    return faces[number - 1]


def check_adult(face: FaceRecord, gate: AgeGate) -> None:
    """Refuse a probe that may show a minor: the review band is refused too at this level."""
    decision = gate.decide(face.age)
    if decision is Decision.REFUSE:
        raise MinorProbe(
            f"the face is estimated at {face.age:.0f} years: minors are never searched"
        )
    if decision is Decision.REVIEW:
        raise MinorProbe(
            f"the face is estimated at {face.age:.0f} years, too close to 18 to rule out a minor"
        )


class SearchEngine:
    def __init__(
        self, workspace: Workspace, pipeline: FacePipeline, gate: AgeGate = DEFAULT_AGE_GATE
    ) -> None:
        self.workspace = workspace
        self.pipeline = pipeline
        self.gate = gate

    def probe_faces(self, data: bytes) -> list[FaceRecord]:
        """The faces of a probe image, largest first (raises ImageRejected for bad input)."""
        faces = self.pipeline.analyse(data, probe=True).faces
        return sorted(faces, key=lambda f: f.box.width * f.box.height, reverse=True)

    def search(self, session: Session, targets: list[Target], embedding: np.ndarray) -> list[Match]:
        """Nearest faces in each target at or above its threshold and within its limit, best
        first across targets."""
        hits: list[tuple[float, int, str]] = []
        for target in targets:
            ids, scores = self.workspace.index(target.collection_id).search(embedding, target.top_k)
            hits += [
                (float(s), int(i), target.name)
                for i, s in zip(ids, scores, strict=True)
                if s >= target.threshold
            ]
        hits.sort(reverse=True)
        faces = repo.faces_with_images(session, [face_id for _, face_id, _ in hits])
        return [
            _match(score, faces[face_id], name) for score, face_id, name in hits if face_id in faces
        ]


def _match(score: float, face: Face, collection: str) -> Match:
    image = face.image
    return Match(
        face_id=face.id,
        score=min(1.0, score),
        collection=collection,
        image_url=image.image_url,
        page_url=image.page_url,
        page_title=image.page_title,
        box=[face.left, face.top, face.width, face.height],
        captured_at=image.captured_at,
        quality=face.quality,
        warc_digest=image.warc_digest,
    )
