"""Managing users: only admins do it, and every change is ledgered with it.

Each function changes the session and appends the ledger entry; the caller commits both
together, so a change cannot be kept without its entry.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from faceledger.auth.passwords import hash_password
from faceledger.auth.roles import Role, parse_roles, require_role
from faceledger.errors import Conflict, NotFound
from faceledger.ledger import log
from faceledger.store.models import User

# Names end up in environment variables, ledger subjects and shell commands: keep them plain.
_NAME = re.compile(r"[\w.@-]{1,200}")


class UserError(Conflict):
    """A user-management request refused as it stands (duplicate, last admin...)."""


class UnknownUser(NotFound):
    """No user has that name."""


class AlreadyInitialised(UserError):
    """`init_admin` on a system that already has users."""

    code = "already_initialised"


def subject(name: str) -> str:
    return f"user:{name}"


def find_user(session: Session, name: str) -> User | None:
    return session.scalar(select(User).where(User.name == name))


def get_user(session: Session, name: str) -> User:
    user = find_user(session, name)
    if user is None:
        raise UnknownUser(f"no user named {name!r}")
    return user


def _check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise UserError(
            f"invalid user name {name!r}: use 1 to 200 letters, digits, '.', '_', '-' or '@'"
        )
    return name


def _roles(values: Iterable[str]) -> list[str]:
    roles = parse_roles(values)
    if not roles:
        raise UserError("give at least one role (to stop someone acting, deactivate them)")
    return roles


def _is_last_admin(session: Session, user: User) -> bool:
    """Whether `user` is the only active admin (roles are JSON, so filter here, portably)."""
    if not (user.active and Role.ADMIN in user.roles):
        return False
    active = session.scalars(select(User).where(User.active.is_(True), User.id != user.id))
    return not any(Role.ADMIN in other.roles for other in active)


def init_admin(session: Session, name: str, password: str) -> User:
    """The first admin of an empty system; refused once any user exists."""
    if session.scalar(select(func.count()).select_from(User)):
        raise AlreadyInitialised("already initialised: users exist; ask an admin to add you")
    user = User(
        name=_check_name(name),
        password_hash=hash_password(password),
        roles=[Role.ADMIN.value],
        active=True,
        failed_logins=0,
    )
    session.add(user)
    session.flush()
    log.append(
        session,
        actor=None,
        action="user.init",
        subject=subject(name),
        payload={"roles": user.roles},
    )
    return user


def add_user(session: Session, actor: User, name: str, roles: Iterable[str], password: str) -> User:
    require_role(actor, Role.ADMIN)
    checked = _roles(roles)
    if find_user(session, _check_name(name)) is not None:
        raise UserError(f"user {name!r} already exists")
    user = User(
        name=name,
        password_hash=hash_password(password),
        roles=checked,
        active=True,
        failed_logins=0,
    )
    session.add(user)
    session.flush()
    log.append(
        session,
        actor=actor.name,
        action="user.add",
        subject=subject(name),
        payload={"roles": checked},
    )
    return user


def set_roles(session: Session, actor: User, name: str, roles: Iterable[str]) -> User:
    """Replace a user's roles; refused if it would leave no active admin."""
    require_role(actor, Role.ADMIN)
    user = get_user(session, name)
    new = _roles(roles)
    old = list(user.roles)
    if Role.ADMIN not in new and _is_last_admin(session, user):
        raise UserError(f"{name} is the last admin: make someone else admin first")
    user.roles = new
    log.append(
        session,
        actor=actor.name,
        action="user.roles",
        subject=subject(name),
        payload={"old": old, "new": new},
    )
    return user


def deactivate(session: Session, actor: User, name: str) -> User:
    """Stop a user acting (kept, not deleted: the ledger and searches refer to them)."""
    require_role(actor, Role.ADMIN)
    user = get_user(session, name)
    if not user.active:
        raise UserError(f"{name} is already deactivated")
    if _is_last_admin(session, user):
        raise UserError(f"{name} is the last admin: make someone else admin first")
    user.active = False
    log.append(session, actor=actor.name, action="user.deactivate", subject=subject(name))
    return user


def reset_password(session: Session, actor: User, name: str, password: str) -> User:
    """Set a new password and lift any lock-out (the ledger records that, never the password)."""
    require_role(actor, Role.ADMIN)
    user = get_user(session, name)
    user.password_hash = hash_password(password)
    was_locked = user.locked_until is not None
    user.failed_logins = 0
    user.locked_until = None
    log.append(
        session,
        actor=actor.name,
        action="user.reset_password",
        subject=subject(name),
        payload={"unlocked": was_locked},
    )
    return user


def list_users(session: Session, actor: User) -> list[User]:
    """Everyone, by name: for admins, and for auditors who check who could do what."""
    require_role(actor, Role.ADMIN, Role.AUDITOR)
    return list(session.scalars(select(User).order_by(User.name)))
