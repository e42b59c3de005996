"""How a page form answers: back to a page with a message (post, redirect, get).

A refusal about what was asked or the state it is in (a missing reason, a decision already
made, nothing confirmed yet) goes back to the page it came from as an error message, so the
person can correct it there; a refusal about who is asking stays a 403 page.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse

from faceledger.errors import FaceledgerError
from faceledger.web import sessions


def back(request: Request, path: str, text: str, kind: str = "ok") -> RedirectResponse:
    sessions.flash(request.session, kind, text)
    return RedirectResponse(path, status_code=303)


def refused(request: Request, path: str, problem: FaceledgerError) -> RedirectResponse:
    """Back to `path` with the refusal; who-may refusals (401, 403), unknown things (404) and
    faults of ours (5xx) are raised, to be answered as errors."""
    if problem.http_status in (401, 403, 404) or problem.http_status >= 500:
        raise problem
    return back(request, path, str(problem), "error")
