"""Retention: delete what is kept past its time, and ledger what was deleted.

Probe photos go after `probe_retention_days` (their hash stays, in the request and the
ledger); images of a collection with `retention_days` go with their faces once older than
that; results of searches whose external authorisation is overdue are purged. One run is
one transaction and one ledger entry. Probe files are deleted before the commit: if the
commit then fails, a file is gone that the store still names, which the next run tidies
up, whereas the other order could leave a photo on disk that nothing names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, and_, delete, select
from sqlalchemy.orm import Session

from faceledger.auth.clock import as_utc, utcnow
from faceledger.auth.roles import Role, require_role
from faceledger.ledger import log
from faceledger.search import probes
from faceledger.search.authorisation import lapse_overdue
from faceledger.store.models import Collection, Face, SearchRequest, SourceImage, User
from faceledger.store.purge import FacePurge, purge_faces
from faceledger.workspace import Workspace


@dataclass
class RetentionReport:
    """What one run deleted; call `apply_to_indexes()` after the commit."""

    now: datetime
    purge: FacePurge = field(repr=False)
    probes_deleted: list[int] = field(default_factory=list)
    images_deleted: dict[str, int] = field(default_factory=dict)
    faces_deleted: dict[str, int] = field(default_factory=dict)
    lapsed: list[int] = field(default_factory=list)

    def apply_to_indexes(self) -> None:
        self.purge.apply_to_indexes()

    def as_dict(self) -> dict[str, Any]:
        return {
            "now": self.now.isoformat(),
            "probes_deleted": self.probes_deleted,
            "collections": {
                name: {"images": images, "faces": self.faces_deleted.get(name, 0)}
                for name, images in self.images_deleted.items()
            },
            "lapsed": self.lapsed,
        }


def _delete_probes(workspace: Workspace, session: Session, now: datetime) -> list[int]:
    """Delete probe photos (and embeddings) of requests older than the probe retention."""
    cutoff = now - timedelta(days=workspace.settings.probe_retention_days)
    expired = session.scalars(
        select(SearchRequest)
        .where(SearchRequest.probe_file.is_not(None), SearchRequest.created_at < cutoff)
        .order_by(SearchRequest.id)
        .with_for_update()  # of two runs at once, the second skips what the first deleted
    ).all()
    for request in expired:
        probes.delete(workspace.settings, request.probe_file)
        request.probe_file = None
        request.probe_embedding = None
        request.probe_deleted_at = now
    return [request.id for request in expired]


def _image_cutoffs(session: Session, now: datetime) -> dict[Collection, datetime]:
    """Each collection with a retention period, and the time before which its images go."""
    limited = session.scalars(select(Collection).where(Collection.retention_days.is_not(None)))
    return {c: now - timedelta(days=c.retention_days or 0) for c in limited.all()}


def _expired(collection: Collection, cutoff: datetime) -> ColumnElement[bool]:
    return and_(SourceImage.collection_id == collection.id, SourceImage.indexed_at < cutoff)


def run_retention(
    workspace: Workspace, session: Session, actor: User, now: datetime | None = None
) -> RetentionReport:
    """Delete expired probes and collection images, and ledger it (admin; the caller commits)."""
    require_role(actor, Role.ADMIN)
    now = as_utc(now or utcnow())
    cutoffs = _image_cutoffs(session, now)
    old_faces = [
        face_id
        for collection, cutoff in cutoffs.items()
        for face_id in session.scalars(
            select(Face.id)
            .join(SourceImage, SourceImage.id == Face.image_id)
            .where(_expired(collection, cutoff))
        )
    ]
    report = RetentionReport(now, purge_faces(workspace, session, old_faces))
    report.probes_deleted = _delete_probes(workspace, session, now)
    for collection, cutoff in cutoffs.items():
        # A DELETE executes to a CursorResult, whose rowcount is the number of rows deleted.
        deleted = cast(
            CursorResult[Any],
            session.execute(
                delete(SourceImage)
                .where(_expired(collection, cutoff))
                .execution_options(synchronize_session=False)
            ),
        )
        report.images_deleted[collection.name] = int(deleted.rowcount or 0)
        report.faces_deleted[collection.name] = report.purge.counts.get(collection.id, 0)
    report.lapsed = lapse_overdue(session, workspace.settings, actor, now)
    log.append(
        session, actor=actor.name, action="retention.run", subject=None, payload=report.as_dict()
    )
    return report
