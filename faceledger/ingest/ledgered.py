"""Ingestion as an accountable act: an admin fills an existing collection, and the ledger says so.

The job commits in batches, so it cannot share one transaction with its ledger entries:
`ingest.started` is committed before the first image is read and `ingest.finished` (with
the counts) after the last. A started job without a finished entry is one that was killed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from faceledger.auth.roles import Role, require_role
from faceledger.faces.decode import DecodeLimits
from faceledger.ingest.files import expand, iter_items
from faceledger.ingest.job import IngestJob, IngestSummary
from faceledger.ledger import log
from faceledger.policy.collections import get_collection, subject
from faceledger.store.models import User
from faceledger.types import SourceItem


@dataclass(frozen=True)
class Sources:
    """What an ingest was asked to read (as given) and the files that turned out to be."""

    given: list[str]
    images: list[Path]
    archives: list[Path]

    @classmethod
    def expand(cls, paths: Sequence[Path]) -> Sources:
        """NotFound names the first path that does not exist."""
        images, archives = expand(list(paths))
        return cls([str(path) for path in paths], images, archives)

    @property
    def total(self) -> int | None:
        """How many items the job will see, when known (archives are read as they come)."""
        return None if self.archives else len(self.images)

    def items(self) -> Iterator[SourceItem]:
        return iter_items(self.images, self.archives, DecodeLimits().max_bytes)


def _finished_payload(summary: IngestSummary) -> dict[str, Any]:
    """The counts of a finished job, as its summary reports them."""
    data = summary.as_dict()
    counts = ("collection", "images", "images_with_faces", "faces_indexed", "skipped", "seconds")
    return {**{key: data[key] for key in counts}, "errors": len(data["errors"])}


def run_ingest(
    session: Session,
    actor: User,
    job: IngestJob,
    paths: Sequence[Path],
    on_start: Callable[[Sources], None] | None = None,
) -> IngestSummary:
    """Check, ledger, run and ledger again an ingest by `actor` into `job.collection`.

    Refused before anything is written: PermissionDenied unless `actor` is an admin,
    UnknownCollection unless the collection was created (with its legal basis) first,
    NotFound for a missing path. Commits `session` twice (see the module docstring);
    `on_start` hears of the sources once the job is about to start.
    """
    require_role(actor, Role.ADMIN)
    get_collection(session, job.collection)
    sources = Sources.expand(paths)
    actor_name, about = actor.name, subject(job.collection)
    log.append(
        session,
        actor=actor_name,
        action="ingest.started",
        subject=about,
        payload={
            "collection": job.collection,
            "sources": sources.given,
            "files": len(sources.images),
            "archives": len(sources.archives),
        },
    )
    session.commit()
    if on_start is not None:
        on_start(sources)
    summary = job.run(sources.items())
    log.append(
        session,
        actor=actor_name,
        action="ingest.finished",
        subject=about,
        payload=_finished_payload(summary),
    )
    session.commit()
    return summary
