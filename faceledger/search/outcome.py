"""What the search service answers, and the ways it says no, as stable codes.

The CLI prints these as JSON and the web app will serve them, so a refusal reads the same
everywhere: a machine code (`refusal_code`) and a sentence for people (`reason`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from faceledger.errors import EXIT_AUTH, EXIT_BAD_IMAGE, EXIT_NOT_FOUND, Refused
from faceledger.errors import NotFound as NotFound  # re-exported: the services raise it
from faceledger.store.models import SearchResult

# Request statuses.
PENDING = "pending"  # waits for an approver
APPROVED = "approved"  # approved, not run yet
DENIED = "denied"
REFUSED = "refused"
DONE = "done"
EXPIRED = "expired"  # approved but not run in time
PURGED = "purged"  # results removed (external authorisation refused or not recorded)

# Refusal codes about who asks (403, exit 4), and about the state a request is in (409);
# the rest are about what was sent (422, exit 3). Two exits are the README's own.
PERMISSION_CODES = frozenset({"role_not_allowed", "not_requester", "own_search", "not_allowed"})
CONFLICT_CODES = frozenset(
    {
        "awaiting_approval",
        "denied",
        "refused",
        "approval_used",
        "approval_expired",
        "approval_mismatch",
        "probe_expired",
        "not_pending",
        "already_reviewed",
        "nothing_confirmed",
        "no_results",
        "results_not_viewed",
    }
)
_EXITS = {"bad_image": EXIT_BAD_IMAGE, "unknown_collection": EXIT_NOT_FOUND}


class ServiceRefusal(Refused):
    """The service will not do this; `code` is stable for machines, the message for people.

    The answer repeats the refusal as a refused request reads (`status`, `reason`).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, status=REFUSED, reason=message)
        self.code = code
        if code in PERMISSION_CODES:
            self.http_status, self.exit_status = 403, EXIT_AUTH
        elif code in CONFLICT_CODES:
            self.http_status = 409
        self.exit_status = _EXITS.get(code, self.exit_status)


def result_dict(result: SearchResult) -> dict[str, Any]:
    """A result as shown: the snapshot taken when the search ran."""
    return {
        "result_id": result.id,
        "rank": result.rank,
        "face_id": result.face_id,
        "score": round(result.score, 4),
        "collection": result.collection,
        "image_url": result.image_url,
        "page_url": result.page_url,
        "page_title": result.page_title,
        "box": result.box,
        "captured_at": result.captured_at.isoformat() if result.captured_at else None,
        "warc_digest": result.warc_digest,
    }


@dataclass
class SearchOutcome:
    """The state of one request after the service acted on it."""

    request_id: int
    status: str
    refusal_code: str | None = None
    reason: str | None = None
    results: list[dict[str, Any]] | None = None
    probe: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def refusal(self) -> ServiceRefusal | None:
        """The refusal this outcome records (for its statuses), or None if not refused."""
        if self.status != REFUSED:
            return None
        return ServiceRefusal(self.refusal_code or REFUSED, self.reason or "")

    def as_dict(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"request_id": self.request_id, "status": self.status}
        if self.refusal_code:
            answer["refusal_code"] = self.refusal_code
            answer["reason"] = self.reason
        if self.results is not None:
            answer["results"] = self.results
        if self.probe:
            answer["probe"] = self.probe
        return answer | self.details
