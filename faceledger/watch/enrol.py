"""Enrolling a consenting person to be watched for, and withdrawing them: templates only.

The enrolment photo is analysed and dropped; its hash goes to the ledger, its template to
`watch_subjects`. Minors are refused by the same age gate as search probes (the review
band too): watching is for consenting adults, and a child's template would turn every
crawled child who resembles them into a candidate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from faceledger.auth.clock import as_utc, utcnow
from faceledger.auth.roles import Role, require_role
from faceledger.errors import Conflict, NotFound
from faceledger.faces.types import FaceRecord
from faceledger.index.local import DIMENSION
from faceledger.ledger import log
from faceledger.policy.minors import DEFAULT_AGE_GATE, AgeGate
from faceledger.search.engine import check_adult
from faceledger.store.models import User, WatchSubject
from faceledger.watch.refusals import ledgered_refusals, require_admin


class WatchError(Conflict):
    """A watch request refused as it stands (no basis, removing twice, nobody enrolled...)."""


class UnknownSubject(NotFound):
    """No enrolled person has that id."""


def subject_ref(subject_id: int) -> str:
    return f"watch:{subject_id}"


@dataclass(frozen=True)
class SubjectInfo:
    """What may be shown about an enrolled person: never the template."""

    id: int
    label: str
    basis: str
    created_by: str
    created_at: datetime
    removed_by: str | None
    removed_at: datetime | None
    removal_reason: str | None

    def as_dict(self) -> dict[str, Any]:
        return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(self).items()}


def enrol_subject(
    session: Session,
    actor: User,
    face: FaceRecord,
    label: str,
    basis: str,
    photo_hash: str,
    gate: AgeGate = DEFAULT_AGE_GATE,
) -> WatchSubject:
    """Register `face` as a consenting person's template (admin; the caller commits).

    A non-admin, or a face that may be a minor's, is refused and the refusal ledgered.
    """
    label, basis = label.strip(), basis.strip()
    if not label or not basis:
        raise WatchError("enrolling needs a label and the basis (the person's consent) recorded")
    require_admin(session, actor, "enrol", photo_hash=photo_hash)
    with ledgered_refusals(session, actor, "enrol", photo_hash=photo_hash):
        check_adult(face, gate)
    template = np.asarray(face.embedding, dtype="<f4").reshape(DIMENSION)
    subject = WatchSubject(
        label=label, basis=basis, template=template.tobytes(), created_by=actor.id
    )
    session.add(subject)
    session.flush()
    log.append(
        session,
        actor=actor.name,
        action="watch.enrolled",
        subject=subject_ref(subject.id),
        payload={
            "label": label,
            "basis": basis,
            "photo_hash": photo_hash,
            "box": face.box.as_list(),
            "estimated_age": round(face.age, 1),
        },
    )
    return subject


def remove_subject(session: Session, actor: User, subject_id: int, reason: str) -> WatchSubject:
    """Stop watching for a person and erase their template (admin, with a reason; the caller
    commits). Their alerts stay: they are the person's record of where they were found."""
    require_role(actor, Role.ADMIN)
    if not reason.strip():
        raise WatchError("removing an enrolled person needs a reason")
    subject = session.get(WatchSubject, subject_id)
    if subject is None:
        raise UnknownSubject(f"no enrolled person with id {subject_id}")
    if subject.removed_at is not None:
        raise WatchError(f"enrolled person {subject_id} was already removed")
    subject.template = None
    subject.removed_by, subject.removed_at = actor.id, utcnow()
    subject.removal_reason = reason.strip()
    log.append(
        session,
        actor=actor.name,
        action="watch.removed",
        subject=subject_ref(subject.id),
        payload={"label": subject.label, "reason": subject.removal_reason},
    )
    return subject


def list_subjects(session: Session, actor: User) -> list[SubjectInfo]:
    """Everyone enrolled, active or removed, by id (admins and auditors)."""
    require_role(actor, Role.ADMIN, Role.AUDITOR)
    creator, remover = aliased(User), aliased(User)
    query = (
        select(WatchSubject, creator.name, remover.name)
        .join(creator, creator.id == WatchSubject.created_by)
        .outerjoin(remover, remover.id == WatchSubject.removed_by)
        .order_by(WatchSubject.id)
    )
    return [
        SubjectInfo(
            id=row.id,
            label=row.label,
            basis=row.basis,
            created_by=created_by,
            created_at=as_utc(row.created_at),
            removed_by=removed_by,
            removed_at=as_utc(row.removed_at) if row.removed_at else None,
            removal_reason=row.removal_reason,
        )
        for row, created_by, removed_by in session.execute(query)
    ]


@dataclass(frozen=True)
class Templates:
    """The templates in force: `ids[i]` is the subject whose template is row i of `matrix`."""

    ids: list[int]
    matrix: np.ndarray


_ACTIVE = (WatchSubject.removed_at.is_(None), WatchSubject.template.is_not(None))


def watched(session: Session) -> list[dict[str, Any]]:
    """Who is watched for now, on what basis: what a round's crawl is justified by."""
    rows = session.execute(
        select(WatchSubject.id, WatchSubject.label, WatchSubject.basis)
        .where(*_ACTIVE)
        .order_by(WatchSubject.id)
    )
    return [{"id": id_, "label": label, "basis": basis} for id_, label, basis in rows]


def active_templates(session: Session) -> Templates:
    """Every enrolled person's template that has not been withdrawn."""
    rows = session.execute(
        select(WatchSubject.id, WatchSubject.template).where(*_ACTIVE).order_by(WatchSubject.id)
    ).all()
    matrix = np.empty((len(rows), DIMENSION), dtype=np.float32)
    for row, (_, template) in enumerate(rows):
        assert template is not None  # _ACTIVE selects kept templates only
        matrix[row] = np.frombuffer(template, dtype="<f4")
    return Templates([subject_id for subject_id, _ in rows], matrix)
