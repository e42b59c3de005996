"""Errors as the API states them: JSON `{"error": code, "message": text}` with stable codes.

Whatever the services refuse is a `faceledger.errors.FaceledgerError`, which carries its
own code and HTTP status, so one handler answers for all of them (the CLI prints the same
codes). The web adds its own as `ApiError` (`authentication_required` 401, `too_many_bytes`
413, `csrf_failed` 403, `rate_limited` 429, a source's 502) and HTTP's (`not_found` 404,
`method_not_allowed` 405, `invalid_request` 422); a `bad_image` upload that is not an image
at all is 415. A fault of ours is a 500 `internal_error` that says nothing more (the
traceback is logged). Pages get the same statuses as an HTML page, except that a page asked
for without a session redirects to the login form.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

from faceledger.errors import FaceledgerError
from faceledger.faces.decode import sniff_format
from faceledger.render import render

API_PREFIX = "/api/"

_HTTP_CODES = {
    401: "authentication_required",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_many_bytes",
    429: "rate_limited",
}


class ApiError(FaceledgerError):
    """An answer only the web gives, with its status, stable code, headers and extra fields."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        **details: Any,
    ) -> None:
        super().__init__(message, **details)
        self.http_status, self.code = status, code
        self.headers = headers or {}


def authentication_required(
    message: str = "sign in, or send Authorization: Bearer TOKEN",
) -> ApiError:
    return ApiError(401, "authentication_required", message, headers={"WWW-Authenticate": "Bearer"})


def upload_status(refusal: FaceledgerError, upload: bytes | None) -> int:
    """A refusal's status, but 415 for a `bad_image` upload that is not an image at all."""
    if refusal.code == "bad_image" and upload is not None and sniff_format(upload) is None:
        return 415
    return refusal.http_status


def _translate(exc: Exception) -> FaceledgerError:
    """What to answer for an exception (see `install` for which reach here)."""
    match exc:
        case FaceledgerError() if exc.http_status < 500 or isinstance(exc, ApiError):
            return exc
        case RequestValidationError():
            details = jsonable_encoder(exc.errors(), exclude={"input", "ctx", "url"})
            return ApiError(422, "invalid_request", "the request is not valid", details=details)
        case HTTPException():
            code = _HTTP_CODES.get(exc.status_code, "http_error")
            return ApiError(exc.status_code, code, str(exc.detail), headers=dict(exc.headers or {}))
    # Anything else is a fault of ours: say so in the same shape (the traceback is logged).
    return ApiError(500, "internal_error", "the server failed to complete the request")


def respond(request: Request, error: FaceledgerError) -> Response:
    """JSON for the API; for pages, an HTML page (or the login form when not signed in)."""
    status, body = error.http_status, error.as_dict()
    headers = error.headers if isinstance(error, ApiError) else {}
    if request.url.path.startswith(API_PREFIX):
        return JSONResponse(body, status, headers=headers)
    if status == 401:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
    page = render("web/error.html", status=status, error=body)
    return HTMLResponse(page, status, headers=headers)


async def _handle(request: Request, exc: Exception) -> Response:
    answer = _translate(exc)
    if isinstance(exc, FaceledgerError) and answer is not exc:
        raise exc  # a fault of ours: the error middleware answers (`_fault`) and logs it
    return respond(request, answer)


async def _fault(request: Request, exc: Exception) -> Response:
    return respond(request, _translate(exc))


def install(app: FastAPI) -> None:
    for kind in (FaceledgerError, RequestValidationError, HTTPException):
        app.add_exception_handler(kind, _handle)
    # Starlette calls this one for any other error, then logs the traceback.
    app.add_exception_handler(Exception, _fault)
