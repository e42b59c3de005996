"""Errors as the API states them: JSON `{"error": code, "message": text}` with stable codes.

The codes are the services' own (the `ServiceRefusal` codes of `search.outcome`, which the
CLI prints too) plus a few of HTTP's: `authentication_required` (401),
`permission_denied` (403), `not_found` (404), `too_many_bytes` (413), `bad_image`
(415 when the upload is not an image at all, else 422), `invalid_request` (422),
`csrf_failed` (403), `rate_limited` (429). Pages get the same statuses as an HTML page,
except that a page asked for without a session redirects to the login form.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

from faceledger.auth.roles import AuthError, PermissionDenied
from faceledger.auth.users import UnknownUser, UserError
from faceledger.faces.decode import ImageRejected, sniff_format
from faceledger.policy.collections import CollectionExists, InvalidPolicy, UnknownCollection
from faceledger.policy.optouts import OptOutError, UnknownOptOut
from faceledger.render import render
from faceledger.search.engine import FaceChoiceRequired, ProbeRefused
from faceledger.search.outcome import PERMISSION_CODES, NotFound, ServiceRefusal

API_PREFIX = "/api/"

# Refusals about the state a request is in (not about who asks or what they sent).
CONFLICTS = frozenset(
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
_HTTP_CODES = {
    401: "authentication_required",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_many_bytes",
    429: "rate_limited",
}


class ApiError(Exception):
    """An answer other than success, with its status, stable code and extra JSON fields."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, **self.extra}


def authentication_required(
    message: str = "sign in, or send Authorization: Bearer TOKEN",
) -> ApiError:
    return ApiError(401, "authentication_required", message, headers={"WWW-Authenticate": "Bearer"})


def permission_denied(message: str) -> ApiError:
    return ApiError(403, "permission_denied", message)


def refusal_status(code: str | None, upload: bytes | None = None) -> int:
    """The HTTP status of a service refusal: who (403), state (409), else what was sent (4xx)."""
    if code in PERMISSION_CODES:
        return 403
    if code in CONFLICTS:
        return 409
    if code == "bad_image" and upload is not None and sniff_format(upload) is None:
        return 415
    return 422


def rejected_image(problem: ImageRejected, upload: bytes) -> ApiError:
    status = 413 if problem.reason == "too_many_bytes" else refusal_status("bad_image", upload)
    return ApiError(status, "bad_image", str(problem), reason=problem.reason)


def _translate(exc: Exception) -> ApiError:
    """The ApiError for an exception a service raised (see `install` for which)."""
    match exc:
        case ApiError():
            return exc
        case ServiceRefusal():
            return ApiError(refusal_status(exc.code), exc.code, str(exc))
        case NotFound() | UnknownCollection() | UnknownOptOut() | UnknownUser():
            return ApiError(404, "not_found", str(exc))
        case PermissionDenied():
            return permission_denied(str(exc))
        case AuthError():
            return ApiError(401, "authentication_failed", str(exc))
        case InvalidPolicy():
            return ApiError(422, "invalid_policy", str(exc))
        case CollectionExists() | UserError() | OptOutError():
            return ApiError(409, "refused", str(exc))
        case FaceChoiceRequired():
            faces = [
                {"face": n, "box": f.box.as_list(), "estimated_age": round(f.age, 1)}
                for n, f in enumerate(exc.faces, 1)
            ]
            return ApiError(422, exc.code, str(exc), faces=faces)
        case ProbeRefused():
            return ApiError(422, exc.code, str(exc))
        case RequestValidationError():
            details = jsonable_encoder(exc.errors(), exclude={"input", "ctx", "url"})
            return ApiError(422, "invalid_request", "the request is not valid", details=details)
        case HTTPException():
            code = _HTTP_CODES.get(exc.status_code, "http_error")
            return ApiError(exc.status_code, code, str(exc.detail), headers=exc.headers or {})
    # Anything else is a fault of ours: say so in the same shape (the traceback is logged).
    return ApiError(500, "internal_error", "the server failed to complete the request")


def respond(request: Request, error: ApiError) -> Response:
    """JSON for the API; for pages, an HTML page (or the login form when not signed in)."""
    if request.url.path.startswith(API_PREFIX):
        return JSONResponse(error.body(), error.status, headers=error.headers)
    if error.status == 401:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
    page = render("web/error.html", status=error.status, error=error.body())
    return HTMLResponse(page, error.status, headers=error.headers)


async def _handle(request: Request, exc: Exception) -> Response:
    return respond(request, _translate(exc))


HANDLED: tuple[type[Exception], ...] = (
    ApiError,
    ServiceRefusal,
    NotFound,
    UnknownCollection,
    UnknownOptOut,
    UnknownUser,
    PermissionDenied,
    AuthError,
    InvalidPolicy,
    CollectionExists,
    UserError,
    OptOutError,
    ProbeRefused,
    RequestValidationError,
    HTTPException,
    Exception,  # Starlette calls this one for any other error, then logs the traceback
)


def install(app: FastAPI) -> None:
    for kind in HANDLED:
        app.add_exception_handler(kind, _handle)
