"""The opt-out registry: people who asked never to be found, kept as templates, never as photos.

Adding an opt-out purges the person's faces from every collection that honours opt-outs;
ingestion then skips matching faces (`matching`) and the search service refuses probes of
them (`first_match`) and filters them out of results (`matching`). Removing an opt-out stops
the filtering from then on; it does not bring purged faces back.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from faceledger.auth.clock import as_utc, utcnow
from faceledger.auth.roles import Role, require_role
from faceledger.errors import Conflict, NotFound
from faceledger.index.local import DIMENSION
from faceledger.ledger import log
from faceledger.store.models import Collection, OptOut, User
from faceledger.store.purge import FacePurge, purge_faces
from faceledger.workspace import Workspace


class OptOutError(Conflict):
    """An opt-out request refused as it stands (a bad template, removing one twice...)."""


class UnknownOptOut(NotFound):
    """No opt-out has that id."""


@dataclass(frozen=True)
class OptOutInfo:
    """What may be shown about an opt-out: never its template."""

    id: int
    label: str | None
    created_by: str
    created_at: datetime
    removed_by: str | None
    removed_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(self).items()}


def subject(optout_id: int) -> str:
    return f"optout:{optout_id}"


def _template(embedding: np.ndarray) -> np.ndarray:
    vector = np.asarray(embedding, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(vector)) if vector.size == DIMENSION else math.nan
    if not math.isfinite(norm) or norm == 0:
        raise OptOutError(f"an opt-out template must be a finite, non-zero {DIMENSION}-D vector")
    return vector / norm


def _matching_faces(
    workspace: Workspace, session: Session, template: np.ndarray
) -> dict[Collection, list[int]]:
    """Face ids at or above the opt-out threshold, in each collection that honours opt-outs."""
    threshold = workspace.settings.optout_threshold
    found: dict[Collection, list[int]] = {}
    honouring = session.scalars(select(Collection).where(Collection.honour_optouts.is_(True)))
    for collection in honouring.all():
        index = workspace.index(collection.id)
        ids, scores = index.search(template, len(index))
        found[collection] = sorted(int(i) for i in ids[scores >= threshold])
    return found


def add_optout(
    workspace: Workspace,
    session: Session,
    actor: User,
    embedding: np.ndarray,
    label: str | None,
    photo_hash: str,
) -> tuple[OptOut, FacePurge]:
    """Register a template and purge every matching face (admin only; the caller commits).

    Call `apply_to_indexes()` on the returned purge after the commit. The photo itself is
    never stored: only its hash goes to the ledger.
    """
    require_role(actor, Role.ADMIN)
    template = _template(embedding)
    matches = _matching_faces(workspace, session, template)
    optout = OptOut(label=label, embedding=template.astype("<f4").tobytes(), created_by=actor.id)
    session.add(optout)
    session.flush()
    purge = purge_faces(workspace, session, [i for ids in matches.values() for i in ids])
    purged = {c.name: purge.face_ids.get(c.id, []) for c in matches}
    log.append(
        session,
        actor=actor.name,
        action="optout.added",
        subject=subject(optout.id),
        payload={
            "label": label,
            "photo_hash": photo_hash,
            "purged": purged,
            "counts": {name: len(ids) for name, ids in purged.items()},
        },
    )
    return optout, purge


def remove_optout(session: Session, actor: User, optout_id: int, reason: str) -> OptOut:
    """Stop honouring an opt-out (admin only, with a reason; the caller commits)."""
    require_role(actor, Role.ADMIN)
    if not reason.strip():
        raise OptOutError("removing an opt-out needs a reason")
    optout = session.get(OptOut, optout_id, with_for_update=True)  # removed once (store.db)
    if optout is None:
        raise UnknownOptOut(f"no opt-out with id {optout_id}")
    if optout.removed_at is not None:
        raise OptOutError(f"opt-out {optout_id} was already removed")
    optout.removed_by = actor.id
    optout.removed_at = utcnow()
    log.append(
        session,
        actor=actor.name,
        action="optout.removed",
        subject=subject(optout.id),
        payload={"label": optout.label, "reason": reason.strip()},
    )
    return optout


def list_optouts(session: Session, actor: User) -> list[OptOutInfo]:
    """Every opt-out, active or removed, by id (admins and auditors)."""
    require_role(actor, Role.ADMIN, Role.AUDITOR)
    creator, remover = aliased(User), aliased(User)
    query = (
        select(OptOut, creator.name, remover.name)
        .join(creator, creator.id == OptOut.created_by)
        .outerjoin(remover, remover.id == OptOut.removed_by)
        .order_by(OptOut.id)
    )
    return [
        OptOutInfo(
            id=row.id,
            label=row.label,
            created_by=created_by,
            created_at=as_utc(row.created_at),
            removed_by=removed_by,
            removed_at=as_utc(row.removed_at) if row.removed_at else None,
        )
        for row, created_by, removed_by in session.execute(query)
    ]


def _active(session: Session) -> list[OptOut]:
    return list(session.scalars(select(OptOut).where(OptOut.removed_at.is_(None))))


def _stack(optouts: list[OptOut]) -> np.ndarray:
    if not optouts:
        return np.empty((0, DIMENSION), dtype=np.float32)
    return np.stack([np.frombuffer(o.embedding, dtype="<f4") for o in optouts]).astype(np.float32)


def active_templates(session: Session) -> np.ndarray:
    """The templates of every opt-out in force, as an (n, 128) float32 array."""
    return _stack(_active(session))


def matching(templates: np.ndarray, embeddings: np.ndarray, threshold: float) -> np.ndarray:
    """For each embedding (row), whether it matches any template at or above `threshold`."""
    faces = np.asarray(embeddings, dtype=np.float32).reshape(-1, DIMENSION)
    if len(templates) == 0 or faces.shape[0] == 0:
        return np.zeros(faces.shape[0], dtype=bool)
    return np.asarray((faces @ np.asarray(templates, dtype=np.float32).T >= threshold).any(axis=1))


def first_match(session: Session, embedding: np.ndarray, threshold: float) -> OptOut | None:
    """The opt-out in force that this face matches best at or above `threshold`, if any."""
    optouts = _active(session)
    if not optouts:
        return None
    scores = _stack(optouts) @ np.asarray(embedding, dtype=np.float32).reshape(-1)
    best = int(np.argmax(scores))
    return optouts[best] if scores[best] >= threshold else None
