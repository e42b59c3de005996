"""How a page form answers: back to a page with a message (post, redirect, get).

A refusal about what was asked or the state it is in (a missing reason, a decision already
made, nothing confirmed yet) goes back to the page it came from as an error message, so the
person can correct it there; a refusal about who is asking stays a 403 page.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse

from faceledger.crawl.jobs import CrawlRefused
from faceledger.faces.decode import ImageRejected
from faceledger.policy.collections import CollectionError, UnknownCollection
from faceledger.policy.optouts import OptOutError, UnknownOptOut
from faceledger.search.engine import ProbeRefused
from faceledger.search.outcome import ServiceRefusal
from faceledger.web import sessions

# What a service says when a request is refused as it stands (not for who asks).
REFUSALS: tuple[type[Exception], ...] = (
    ServiceRefusal,
    CollectionError,
    OptOutError,
    CrawlRefused,
    ProbeRefused,
    ImageRejected,
)


def back(request: Request, path: str, text: str, kind: str = "ok") -> RedirectResponse:
    sessions.flash(request.session, kind, text)
    return RedirectResponse(path, status_code=303)


def refused(request: Request, path: str, problem: Exception) -> RedirectResponse:
    """Back to `path` with the refusal; who-may refusals and unknown things are raised."""
    if isinstance(problem, ServiceRefusal) and problem.is_permission:
        raise problem
    if isinstance(problem, UnknownCollection | UnknownOptOut):
        raise problem
    return back(request, path, str(problem), "error")
