"""One error tree: every error faceledger raises on purpose says once what it means.

An error carries a stable `code` (what scripts and the web API's JSON see), the HTTP status
the web app answers with and the exit status the CLI ends with, so the CLI (`cli.app`) and
the web app (`web.errors`) each turn any of them into an answer in one place, and a refusal
reads the same on both. Leaf classes mostly set a code; the intermediate classes below set
the statuses. This is the base layer: it imports nothing from faceledger.
"""

from __future__ import annotations

from typing import Any

# Exit statuses, stable for scripts (README, "Exit statuses"). 2 is what click exits with
# for its own usage errors; 130 is how shells report an interrupt (Ctrl-C).
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_AUTH = 4
EXIT_CHOOSE_FACE = 5
EXIT_BAD_IMAGE = 6
EXIT_NOT_FOUND = 7
EXIT_INTERRUPTED = 130


class FaceledgerError(Exception):
    """A failure of ours (a fault, a broken ledger): 500, exit 1, unless a subclass says.

    `details` are extra fields of the answer (`{"error": code, "message": text, **details}`).
    An error whose code varies with the case sets `code` (and its statuses) per instance.
    """

    code: str = "internal_error"
    http_status: int = 500
    exit_status: int = EXIT_FAILED

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.details = details

    def as_dict(self) -> dict[str, Any]:
        return {"error": self.code, "message": str(self), **self.details}


class BadInput(FaceledgerError):
    """A value given is not acceptable (a policy field, a password, a date)."""

    code, http_status, exit_status = "invalid", 422, EXIT_USAGE


class UsageError(BadInput):
    """A command was called wrongly (options missing or combined wrongly)."""

    code = "usage"


class Refused(FaceledgerError):
    """The service will not do what was asked: a rule says no, and the answer says which."""

    code, http_status, exit_status = "refused", 422, EXIT_REFUSED


class Conflict(Refused):
    """Refused because of the state something is in (it exists, it was done already)."""

    http_status = 409


class AuthError(FaceledgerError):
    """Who is asking could not be established (a bad password or token, a lock-out)."""

    code, http_status, exit_status = "authentication_failed", 401, EXIT_AUTH


class PermissionDenied(FaceledgerError):
    """The person is known but may not do this."""

    code, http_status, exit_status = "permission_denied", 403, EXIT_AUTH


class NotFound(FaceledgerError):
    """No such thing (ids are not secrets: this says nothing about access)."""

    code, http_status, exit_status = "not_found", 404, EXIT_NOT_FOUND


class Interrupted(FaceledgerError):
    """Stopped by the person running it (Ctrl-C); what was done is kept."""

    code, http_status, exit_status = "interrupted", 503, EXIT_INTERRUPTED
