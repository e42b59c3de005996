"""The data-subject access report: where a person's face is held and who has been shown it.

It answers an access request from a photo of the person: every face in every collection at
or above the match threshold (the whole index is searched, not a top k), each search that
returned one of those faces (who, when, for what, under which case) and to whom it was
shown, and whether the person has opted out. The photo itself is not kept: the ledger
entry holds its hash and the counts only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from faceledger.auth.clock import as_utc, utcnow
from faceledger.auth.roles import Role, require_role
from faceledger.faces.pipeline import FacePipeline
from faceledger.ledger import log
from faceledger.policy.optouts import first_match
from faceledger.search.engine import SearchEngine, check_adult, choose_face
from faceledger.search.probes import probe_hash
from faceledger.store import repo
from faceledger.store.models import Collection, Exposure, SearchRequest, SearchResult, User
from faceledger.workspace import Workspace


@dataclass(frozen=True)
class HeldFace:
    """A face of the person held in a collection, with where it was published."""

    collection: str
    face_id: int
    score: float
    image_url: str
    page_url: str | None
    page_title: str | None
    captured_at: datetime | None


@dataclass(frozen=True)
class Viewing:
    viewer: str
    shown_at: datetime


@dataclass(frozen=True)
class Returned:
    """One search result that showed the person: the search behind it and who saw it."""

    request_id: int
    result_id: int
    face_id: int | None
    collection: str
    score: float
    requester: str
    requested_at: datetime
    purpose: str | None
    case_ref: str | None
    status: str
    shown: tuple[Viewing, ...]


@dataclass(frozen=True)
class SubjectReport:
    photo_hash: str
    face_box: list[int]
    threshold: float
    faces: list[HeldFace]
    returned: list[Returned]
    opted_out_since: datetime | None
    generated_by: str
    generated_at: datetime = field(default_factory=utcnow)

    def counts(self) -> dict[str, int]:
        return {
            "collections": len({face.collection for face in self.faces}),
            "faces": len(self.faces),
            "searches": len({item.request_id for item in self.returned}),
            "results": len(self.returned),
            "viewings": sum(len(item.shown) for item in self.returned),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            **{key: _plain(value) for key, value in asdict(self).items()},
            "opted_out": self.opted_out_since is not None,
            "counts": self.counts(),
        }


def _plain(value: Any) -> Any:
    """JSON-ready: datetimes as ISO strings, containers recursively."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _held_faces(
    workspace: Workspace, session: Session, embedding: np.ndarray, threshold: float
) -> list[HeldFace]:
    """Every face at or above `threshold` in every collection, best first per collection."""
    hits: list[tuple[str, int, float]] = []
    for collection in session.scalars(select(Collection).order_by(Collection.name)):
        index = workspace.index(collection.id)
        ids, scores = index.search(embedding, len(index))
        hits += [
            (collection.name, int(i), float(s))
            for i, s in zip(ids, scores, strict=True)
            if s >= threshold
        ]
    faces = repo.faces_with_images(session, [face_id for _, face_id, _ in hits])
    held = []
    for name, face_id, score in hits:
        if face_id not in faces:  # purged since the index was saved
            continue
        image = faces[face_id].image
        held.append(
            HeldFace(
                collection=name,
                face_id=face_id,
                score=min(1.0, score),
                image_url=image.image_url,
                page_url=image.page_url,
                page_title=image.page_title,
                captured_at=as_utc(image.captured_at) if image.captured_at else None,
            )
        )
    return held


def _returned(session: Session, face_ids: list[int]) -> list[Returned]:
    """The results that showed these faces, oldest search first, with who saw each."""
    rows = session.execute(
        select(SearchResult, SearchRequest, User.name)
        .join(SearchRequest, SearchRequest.id == SearchResult.request_id)
        .join(User, User.id == SearchRequest.requester_id)
        .where(SearchResult.face_id.in_(face_ids))
        .order_by(SearchRequest.created_at, SearchResult.id)
    ).all()
    shown: dict[int, list[Viewing]] = {result.id: [] for result, _, _ in rows}
    viewings = session.execute(
        select(Exposure.result_id, User.name, Exposure.shown_at)
        .join(User, User.id == Exposure.shown_to)
        .where(Exposure.result_id.in_(list(shown)))
        .order_by(Exposure.shown_at, Exposure.id)
    )
    for result_id, viewer, shown_at in viewings:
        shown[result_id].append(Viewing(viewer, as_utc(shown_at)))
    return [
        Returned(
            request_id=request.id,
            result_id=result.id,
            face_id=result.face_id,
            collection=result.collection,
            score=result.score,
            requester=requester,
            requested_at=as_utc(request.created_at),
            purpose=request.purpose,
            case_ref=request.case_ref,
            status=request.status,
            shown=tuple(shown[result.id]),
        )
        for result, request, requester in rows
    ]


def subject_report(
    workspace: Workspace,
    pipeline: FacePipeline,
    session: Session,
    actor: User,
    photo: bytes,
    *,
    face: int | None = None,
    threshold: float | None = None,
) -> SubjectReport:
    """The report for the person in `photo` (auditors and admins; the caller commits).

    The probe goes through the same face choice and minors gate as a search: a photo of a
    minor is refused (minors are never indexed, so there is nothing to report anyway).
    Raises ImageRejected, FaceChoiceRequired, ProbeRefused or PermissionDenied.
    """
    require_role(actor, Role.AUDITOR, Role.ADMIN)
    engine = SearchEngine(workspace, pipeline)
    chosen = choose_face(engine.probe_faces(photo), face)
    check_adult(chosen, engine.gate)
    settings = workspace.settings
    limit = settings.match_threshold if threshold is None else threshold
    faces = _held_faces(workspace, session, chosen.embedding, limit)
    optout = first_match(session, chosen.embedding, settings.optout_threshold)
    report = SubjectReport(
        photo_hash=probe_hash(photo),
        face_box=chosen.box.as_list(),
        threshold=limit,
        faces=faces,
        returned=_returned(session, [held.face_id for held in faces]),
        opted_out_since=as_utc(optout.created_at) if optout else None,
        generated_by=actor.name,
    )
    log.append(
        session,
        actor=actor.name,
        action="subject.report",
        subject=f"photo:{report.photo_hash}",
        payload={"photo_hash": report.photo_hash, **report.counts()},
    )
    return report
