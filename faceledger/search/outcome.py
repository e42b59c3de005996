"""What the search service answers, and the ways it says no, as stable codes.

The CLI prints these as JSON and the web app will serve them, so a refusal reads the same
everywhere: a machine code (`refusal_code`) and a sentence for people (`reason`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from faceledger.store.models import SearchResult

# Request statuses.
PENDING = "pending"  # waits for an approver
APPROVED = "approved"  # approved, not run yet
DENIED = "denied"
REFUSED = "refused"
DONE = "done"
EXPIRED = "expired"  # approved but not run in time
PURGED = "purged"  # results removed (external authorisation refused or not recorded)

# Refusal codes that are permission failures rather than policy refusals (CLI exit 4).
PERMISSION_CODES = frozenset({"role_not_allowed", "not_requester", "own_search", "not_allowed"})


class ServiceRefusal(Exception):
    """The service will not do this; `code` is stable for machines, the message for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code

    @property
    def is_permission(self) -> bool:
        return self.code in PERMISSION_CODES


class NotFound(LookupError):
    """No such request or result (ids are not secrets: this says nothing about access)."""


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

    @property
    def is_permission(self) -> bool:
        return self.refusal_code in PERMISSION_CODES

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
