"""Browser sessions: a signed cookie (Starlette's SessionMiddleware) with server-side checks.

The cookie holds a random session id, the session's CSRF token, and once signed in the user
id, the login time and a tag bound to the user's password hash. It is signed with a key kept
in the data directory (mode 0600), so nobody without that file can forge one, and it is
re-checked on every request against the database:

- the user must still exist and be active, and the tag must match their current password
  hash, so a password reset ends every session of that person;
- a session ends `session_hours` after login, and after `idle_minutes` without a request
  (the cookie's signed timestamp, which `touch` refreshes while the session is used);
- signing in replaces the whole session (new id, new CSRF token): an id planted before
  login (session fixation) is worthless after it;
- signing out clears the cookie and revokes the id in this process, so a copy of the
  cookie taken earlier no longer works either (until a restart; the password tag and the
  lifetimes still apply after one).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
from datetime import datetime, timedelta
from typing import Any

from faceledger.auth.clock import as_utc
from faceledger.config import Settings
from faceledger.store.models import User

KEY_FILE = "web-session.key"
SID, CSRF, UID, TAG, LOGIN_AT, SEEN, FLASH = (
    "sid",
    "csrf",
    "uid",
    "tag",
    "login_at",
    "seen",
    "flash",
)
# How often a signed-in session is re-signed, which restarts its idle timeout.
TOUCH_SECONDS = 60

Session = dict[str, Any]


def session_key(settings: Settings) -> str:
    """The signing key, created on first use; readable by the owner only."""
    path = settings.data_dir / KEY_FILE
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: use theirs
            pass
        else:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_hex(32))
    return path.read_text().strip()


def ensure(session: Session) -> Session:
    """Give a visitor's session an id and a CSRF token (for the login form)."""
    session.setdefault(SID, secrets.token_urlsafe(24))
    session.setdefault(CSRF, secrets.token_urlsafe(32))
    return session


def user_tag(key: str, user: User) -> str:
    """Binds a session to the password it was opened with (a reset ends it)."""
    message = f"{user.id}:{user.password_hash}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()[:32]


def sign_in(session: Session, key: str, user: User, now: datetime) -> None:
    """Start a fresh session for `user`: nothing of the visitor's session survives."""
    session.clear()
    ensure(session)
    session.update({UID: user.id, TAG: user_tag(key, user), LOGIN_AT: now.isoformat()})


def signed_in_user_id(session: Session, now: datetime, lifetime: timedelta) -> int | None:
    """The user id of a session still within its lifetime, else None."""
    uid, login_at = session.get(UID), session.get(LOGIN_AT)
    if not isinstance(uid, int) or not isinstance(login_at, str):
        return None
    try:
        started = as_utc(datetime.fromisoformat(login_at))
    except ValueError:
        return None
    return uid if started <= now < started + lifetime else None


def touch(session: Session, now: datetime) -> None:
    """Note activity (at most once a minute): the re-signed cookie's idle clock restarts."""
    seen = session.get(SEEN)
    if not isinstance(seen, int | float) or now.timestamp() - seen >= TOUCH_SECONDS:
        session[SEEN] = int(now.timestamp())


def tag_matches(session: Session, key: str, user: User) -> bool:
    return hmac.compare_digest(str(session.get(TAG, "")), user_tag(key, user))


def flash(session: Session, kind: str, text: str) -> None:
    """A message for the next page shown (after a redirect)."""
    session[FLASH] = [*session.get(FLASH, []), {"kind": kind, "text": text}][-5:]


def pop_flashes(session: Session) -> list[dict[str, str]]:
    return list(session.pop(FLASH, []))


class Revocations:
    """Session ids signed out in this process, kept until their sessions would have lapsed."""

    def __init__(self, lifetime: timedelta) -> None:
        self.lifetime = lifetime
        self._until: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def revoke(self, sid: str, now: datetime) -> None:
        with self._lock:
            self._until = {s: t for s, t in self._until.items() if t > now}
            self._until[sid] = now + self.lifetime

    def revoked(self, sid: str) -> bool:
        with self._lock:
            return sid in self._until
