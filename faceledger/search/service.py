"""The accountable search service: the only path from a probe to results.

A request names collections, a purpose, a case reference and a justification, and carries
the probe. It is checked against each collection's policy (roles, approval, external
authorisation, opt-outs) and the minors gate, recorded, and ledgered in the same
transaction, whatever the outcome: refused, waiting for approval, or run. The CLI and the
web app are thin layers over this class.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from faceledger.auth.clock import Clock, as_utc, utcnow
from faceledger.faces.decode import ImageRejected
from faceledger.faces.pipeline import FacePipeline
from faceledger.faces.types import FaceRecord
from faceledger.ledger import log
from faceledger.ledger.checkpoints import maybe_checkpoint
from faceledger.policy import optouts
from faceledger.policy.minors import DEFAULT_AGE_GATE, AgeGate
from faceledger.search import approvals, authorisation, evidence, probes, review
from faceledger.search.engine import (
    Match,
    MinorProbe,
    NoFace,
    SearchEngine,
    Target,
    check_adult,
    choose_face,
)
from faceledger.search.outcome import (
    APPROVED,
    DONE,
    EXPIRED,
    PENDING,
    REFUSED,
    SearchOutcome,
    ServiceRefusal,
    result_dict,
)
from faceledger.search.requests import load_request, load_user, subject
from faceledger.store import repo
from faceledger.store.models import Collection, Exposure, SearchRequest, SearchResult, User
from faceledger.workspace import Workspace


@dataclass(frozen=True)
class Probe:
    """The chosen probe face and where it sits in the photo."""

    face: FaceRecord
    number: int
    faces: int


class SearchService:
    def __init__(
        self,
        workspace: Workspace,
        pipeline: FacePipeline | None = None,
        gate: AgeGate = DEFAULT_AGE_GATE,
        clock: Clock = utcnow,
    ) -> None:
        self.workspace = workspace
        self.settings = workspace.settings
        self._pipeline, self._gate = pipeline, gate
        self.clock = clock

    @cached_property
    def engine(self) -> SearchEngine:
        """Built on first use: deciding on or reading a request needs no face models."""
        pipeline = self._pipeline or FacePipeline(self.settings, threads=2)
        return SearchEngine(self.workspace, pipeline, self._gate)

    # -- asking -----------------------------------------------------------------------

    def request(
        self,
        actor: User,
        probe: bytes,
        *,
        collections: list[str],
        purpose: str | None,
        case_ref: str | None,
        justification: str | None,
        face: int | None = None,
    ) -> SearchOutcome:
        """Check, record and (policy permitting) run a search; every outcome is ledgered.

        Raises FaceChoiceRequired (nothing recorded) when the photo shows several faces and
        none was chosen: no search has been asked for yet.
        """
        names = list(dict.fromkeys(name.strip() for name in collections if name.strip()))
        purpose, case_ref, justification = (
            (value or "").strip() or None for value in (purpose, case_ref, justification)
        )
        refusal: ServiceRefusal | None = None
        with self.workspace.sessions() as session:
            try:
                self._policy(session, load_user(session, actor), names, purpose, case_ref)
            except ServiceRefusal as problem:
                refusal = problem
        chosen = None
        if refusal is None:  # only analyse the photo of a request that may go ahead
            try:
                chosen = self._probe(probe, face)
                check_adult(chosen.face, self.engine.gate)
            except ServiceRefusal as problem:
                refusal = problem
            except MinorProbe as problem:
                refusal = ServiceRefusal(problem.code, str(problem))
        with self.workspace.sessions() as session:
            user = load_user(session, actor)
            row = SearchRequest(
                requester_id=user.id,
                status=PENDING,
                purpose=purpose,
                case_ref=case_ref,
                justification=justification,
                collections=names,
                probe_hash=probes.probe_hash(probe),
                created_at=self.clock(),
            )
            if chosen is not None:
                row.probe_face = chosen.number
                row.probe_box = chosen.face.box.as_list()
                row.probe_age = round(chosen.face.age, 1)
            session.add(row)
            session.flush()
            self._log(session, user, "search.requested", row, self._request_payload(user, row))
            try:
                if refusal is not None:
                    raise refusal
                targets = self._policy(session, user, names, purpose, case_ref)
                assert chosen is not None
                self._refuse_opted_out(session, targets, chosen.face.embedding)
            except ServiceRefusal as problem:
                return self._refuse(session, user, row, problem)
            row.probe_embedding = np.asarray(chosen.face.embedding, dtype="<f4").tobytes()
            row.probe_file = probes.store(self.settings, row.id, probe)
            waiting_for = [c.name for c in targets if c.approval_required]
            if waiting_for:
                self._log(
                    session, user, "search.pending", row, {"approval_required_by": waiting_for}
                )
                self._commit(session)
                return SearchOutcome(
                    row.id,
                    PENDING,
                    reason=f"waiting for an approver: {', '.join(waiting_for)} require approval",
                    probe=self._probe_dict(row, chosen),
                )
            outcome = self._execute(session, user, row, targets)
            outcome.probe = self._probe_dict(row, chosen)
            return outcome

    def run(
        self,
        actor: User,
        request_id: int,
        *,
        probe: bytes | None = None,
        collections: list[str] | None = None,
    ) -> SearchOutcome:
        """Run an approved request, once. A probe or collections given must be the approved
        ones: an approval is bound to that probe's hash and those collections."""
        with self.workspace.sessions() as session:
            user = load_user(session, actor)
            row = load_request(session, request_id, lock=True)
            try:
                approvals.check_runnable(
                    row, user, probe, collections, self.settings, as_utc(self.clock())
                )
                targets = self._policy(session, user, row.collections, row.purpose, row.case_ref)
                approvals.use(session, row, self.clock())
            except ServiceRefusal as problem:
                if problem.code == "approval_expired" and row.status == APPROVED:
                    row.status = EXPIRED
                    probes.delete(self.settings, row.probe_file)
                    row.probe_file, row.probe_embedding = None, None
                self._log(
                    session,
                    user,
                    "search.run_refused",
                    row,
                    {"code": problem.code, "reason": str(problem)},
                )
                self._commit(session)
                raise
            return self._execute(session, user, row, targets)

    # -- deciding ---------------------------------------------------------------------

    def approve(self, actor: User, request_id: int, reason: str) -> SearchOutcome:
        return self._decide(actor, request_id, reason, approve=True)

    def deny(self, actor: User, request_id: int, reason: str) -> SearchOutcome:
        return self._decide(actor, request_id, reason, approve=False)

    def _decide(self, actor: User, request_id: int, reason: str, approve: bool) -> SearchOutcome:
        with self.workspace.sessions() as session:
            user = load_user(session, actor)
            row = load_request(session, request_id, lock=True)
            now = as_utc(self.clock())
            with self._ledgering_refusal(session, user, row, "search.decision_refused"):
                payload = approvals.decide(session, row, user, reason, approve, now, self.settings)
            if not approve:  # nothing will run: the probe need not be kept
                probes.delete(self.settings, row.probe_file)
                row.probe_file, row.probe_embedding = None, None
            self._log(
                session, user, "search.approved" if approve else "search.denied", row, payload
            )
            self._commit(session)
            return SearchOutcome(row.id, row.status, details={"decision": payload})

    def record_authorisation(
        self, actor: User, request_id: int, reference: str | None, granted: bool
    ) -> SearchOutcome:
        """Record the external authority's answer; a refusal purges the results at once."""
        with self.workspace.sessions() as session:
            user = load_user(session, actor)
            row = load_request(session, request_id, lock=True)
            with self._ledgering_refusal(session, user, row, "authorisation.refused_record"):
                authorisation.record(
                    session, self.settings, row, user, reference, granted, as_utc(self.clock())
                )
            self._commit(session)
            return SearchOutcome(
                row.id, row.status, details={"authorisation": row.authorisation_status}
            )

    # -- looking at results -----------------------------------------------------------

    def results(self, actor: User, request_id: int) -> review.ResultsView:
        """The request's results as this person may see them (blind to others' decisions
        until they have decided); the view is ledgered and registered as an exposure."""
        with self.workspace.sessions() as session:
            user = load_user(session, actor)
            row = load_request(session, request_id, lock=True)
            authorisation.lapse_overdue(
                session, self.settings, None, as_utc(self.clock()), only=row
            )
            with self._ledgering_refusal(session, user, row, "results.view_refused"):
                view = review.view(session, row, user, self.clock())
            self._commit(session)
            return view

    def probe_photo(self, actor: User, request_id: int) -> bytes:
        """The stored probe photo, for the requester or an approver; each view is ledgered."""
        with self.workspace.sessions() as session:
            user = load_user(session, actor)
            row = load_request(session, request_id)
            with self._ledgering_refusal(session, user, row, "probe.view_refused"):
                data = probes.viewable(self.settings, row, user)
            self._log(session, user, "probe.viewed", row, {"probe_hash": row.probe_hash})
            self._commit(session)
            return data

    def review(self, actor: User, result_id: int, decision: str) -> review.ReviewOutcome:
        """One person's final confirm/reject on one result (blind, ledgered)."""
        with self.workspace.sessions() as session:
            user = load_user(session, actor)
            with self._ledgering_refusal(session, user, None, "result.review_refused"):
                outcome = review.decide(session, user, result_id, decision, self.clock())
            self._commit(session)
            return outcome

    def export(
        self, actor: User, request_id: int, folder: Path, candidates: bool = False
    ) -> list[Path]:
        """Write the evidence sheet (JSON + printable HTML); ledgered, with the candidates flag."""
        with self.workspace.sessions() as session:
            user = load_user(session, actor)
            row = load_request(session, request_id)
            with self._ledgering_refusal(session, user, row, "evidence.export_refused"):
                written = evidence.export(session, self.settings, row, user, folder, candidates)
            self._commit(session)
            return written

    def lapse_overdue(self, actor: User | None) -> list[int]:
        """Purge results whose external authorisation is overdue (retention runs this too)."""
        with self.workspace.sessions() as session:
            lapsed = authorisation.lapse_overdue(
                session, self.settings, actor, as_utc(self.clock())
            )
            self._commit(session)
            return lapsed

    # -- internals --------------------------------------------------------------------

    def _policy(
        self,
        session: Session,
        user: User,
        names: list[str],
        purpose: str | None,
        case_ref: str | None,
    ) -> list[Collection]:
        """The collections, if this person may search them for this purpose, else a refusal."""
        if not names:
            raise ServiceRefusal("no_collection", "name at least one collection to search")
        targets: list[Collection] = []
        for name in names:
            collection = repo.get_collection(session, name)
            if collection is None:
                raise ServiceRefusal("unknown_collection", f"no collection named {name!r}")
            if not set(user.roles) & set(collection.search_roles):
                allowed = ", ".join(collection.search_roles) or "nobody"
                raise ServiceRefusal(
                    "role_not_allowed",
                    f"{user.name} may not search {name!r}: its policy allows the roles {allowed}",
                )
            targets.append(collection)
        if purpose is None:
            raise ServiceRefusal("missing_purpose", "a search must state its purpose")
        if purpose not in self.settings.purposes:
            known = ", ".join(self.settings.purposes)
            raise ServiceRefusal(
                "unknown_purpose", f"purpose {purpose!r} is not one of the allowed: {known}"
            )
        if case_ref is None:
            raise ServiceRefusal("missing_case", "a search must name a case reference")
        return targets

    def _probe(self, data: bytes, number: int | None) -> Probe:
        try:
            faces = self.engine.probe_faces(data)
        except ImageRejected as problem:
            raise ServiceRefusal("bad_image", str(problem)) from None
        try:
            chosen = choose_face(faces, number)
        except NoFace as problem:
            raise ServiceRefusal(problem.code, str(problem)) from None
        return Probe(chosen, faces.index(chosen) + 1, len(faces))

    def _refuse_opted_out(
        self, session: Session, targets: list[Collection], embedding: np.ndarray
    ) -> None:
        honouring = [c.name for c in targets if c.honour_optouts]
        if not honouring:
            return
        if optouts.first_match(session, embedding, self.settings.optout_threshold) is not None:
            raise ServiceRefusal(
                "opted_out",
                f"the face matches a person who opted out; {', '.join(honouring)} honour opt-outs",
            )

    def _execute(
        self, session: Session, user: User, row: SearchRequest, targets: list[Collection]
    ) -> SearchOutcome:
        """Search, keep what was shown, register the exposures, ledger the run (Art. 12(3))."""
        started = self.clock()
        embedding = np.frombuffer(row.probe_embedding or b"", dtype="<f4")
        limit = min(c.result_limit for c in targets)
        plan = [Target(c.id, c.name, c.result_limit, self._threshold(c)) for c in targets]
        matches = self._without_optouts(
            session, targets, self.engine.search(session, plan, embedding)
        )
        shown = matches[:limit]
        row.results = [_snapshot(rank, match) for rank, match in enumerate(shown, 1)]
        session.flush()
        session.add_all(
            Exposure(
                face_id=r.face_id,
                result_id=r.id,
                request_id=row.id,
                shown_to=user.id,
                shown_at=started,
            )
            for r in row.results
        )
        row.status, row.ran_at, row.finished_at = DONE, started, self.clock()
        row.top_k, row.threshold = limit, min(t.threshold for t in plan)
        if any(c.authorisation_required for c in targets):
            row.authorisation_status = authorisation.PENDING
            row.authorisation_due = started + timedelta(hours=self.settings.authorisation_hours)
        self._log(session, user, "search.run", row, self._run_payload(row, targets, plan))
        self._commit(session)
        return SearchOutcome(row.id, DONE, results=[result_dict(r) for r in row.results])

    def _threshold(self, collection: Collection) -> float:
        if collection.threshold is not None:
            return collection.threshold
        return self.settings.match_threshold

    def _without_optouts(
        self, session: Session, targets: list[Collection], matches: list[Match]
    ) -> list[Match]:
        """Never show an opted-out person, even if a purge has not reached a face yet."""
        honouring = {c.name for c in targets if c.honour_optouts}
        checked = [m.face_id for m in matches if m.collection in honouring]
        templates = optouts.active_templates(session)
        if not checked or not len(templates):
            return matches
        hidden: set[int] = set()
        for ids, vectors in repo.embeddings(session, checked):
            mask = optouts.matching(templates, vectors, self.settings.optout_threshold)
            hidden.update(int(i) for i in ids[mask])
        return [m for m in matches if m.face_id not in hidden]

    def _refuse(
        self, session: Session, user: User, row: SearchRequest, problem: ServiceRefusal
    ) -> SearchOutcome:
        row.status, row.refusal_code, row.reason = REFUSED, problem.code, str(problem)
        row.finished_at = self.clock()
        self._log(
            session, user, "search.refused", row, {"code": problem.code, "reason": str(problem)}
        )
        self._commit(session)
        return SearchOutcome(row.id, REFUSED, problem.code, str(problem))

    @contextmanager
    def _ledgering_refusal(
        self, session: Session, user: User, row: SearchRequest | None, action: str
    ) -> Iterator[None]:
        """Ledger (and commit) a refused attempt before the refusal reaches the caller."""
        try:
            yield
        except ServiceRefusal as problem:
            session.rollback()
            log.append(
                session,
                actor=user.name,
                action=action,
                subject=subject(row) if row is not None else None,
                payload={"code": problem.code, "reason": str(problem)},
            )
            self._commit(session)
            raise

    def _log(
        self, session: Session, user: User, action: str, row: SearchRequest, payload: dict[str, Any]
    ) -> None:
        log.append(session, actor=user.name, action=action, subject=subject(row), payload=payload)

    def _commit(self, session: Session) -> None:
        maybe_checkpoint(session, self.settings)
        session.commit()

    @staticmethod
    def _request_payload(user: User, row: SearchRequest) -> dict[str, Any]:
        return {
            "requester": user.name,
            "roles": user.roles,
            "purpose": row.purpose,
            "case": row.case_ref,
            "justification": row.justification,
            "collections": row.collections,
            "probe_hash": row.probe_hash,
            "probe_face": row.probe_face,
            "probe_box": row.probe_box,
            "probe_estimated_age": row.probe_age,
        }

    def _run_payload(
        self, row: SearchRequest, targets: list[Collection], plan: list[Target]
    ) -> dict[str, Any]:
        """What Art. 12(3) asks of a remote biometric identification log, for this run."""
        return {
            "period_of_use": {"start": _iso(row.ran_at), "end": _iso(row.finished_at)},
            "reference_databases": [
                {
                    "collection": c.name,
                    "id": c.id,
                    "faces": len(self.workspace.index(c.id)),
                    "legal_basis": c.legal_basis,
                    "threshold": t.threshold,
                    "result_limit": c.result_limit,
                }
                for c, t in zip(targets, plan, strict=True)
            ],
            "input": {
                "probe_hash": row.probe_hash,
                "probe_file": row.probe_file,
                "probe_kept_days": self.settings.probe_retention_days,
                "probe_box": row.probe_box,
            },
            "approved_by": row.decided_by,
            "authorisation_due": _iso(row.authorisation_due),
            "results": [
                {"result_id": r.id, "face_id": r.face_id, "score": round(r.score, 4)}
                for r in row.results
            ],
        }

    @staticmethod
    def _probe_dict(row: SearchRequest, chosen: Probe) -> dict[str, Any]:
        return {
            "faces": chosen.faces,
            "face": chosen.number,
            "box": row.probe_box,
            "estimated_age": row.probe_age,
            "hash": row.probe_hash,
        }


def _snapshot(rank: int, match: Match) -> SearchResult:
    return SearchResult(
        rank=rank,
        face_id=match.face_id,
        score=match.score,
        collection=match.collection,
        image_url=match.image_url,
        page_url=match.page_url,
        page_title=match.page_title,
        box=match.box,
        captured_at=match.captured_at,
        warc_digest=match.warc_digest,
    )


def _iso(moment: datetime | None) -> str | None:
    return as_utc(moment).isoformat() if moment else None
