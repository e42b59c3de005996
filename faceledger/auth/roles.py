"""Roles, and the role check every service starts with (refusing with `PermissionDenied`)."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from faceledger.errors import BadInput, PermissionDenied
from faceledger.store.models import User


class Role(StrEnum):
    ADMIN = "admin"  # manages users and tokens
    INVESTIGATOR = "investigator"  # asks for searches
    APPROVER = "approver"  # approves searches that need it
    AUDITOR = "auditor"  # reads the ledger and the registers


class UnknownRole(BadInput):
    """A role name that is not one of `Role`."""


def parse_roles(values: Iterable[str]) -> list[str]:
    """Role names checked, deduplicated and sorted, so stored lists compare equal."""
    roles: set[str] = set()
    for value in values:
        try:
            roles.add(Role(value.strip().lower()).value)
        except ValueError:
            known = ", ".join(role.value for role in Role)
            raise UnknownRole(f"unknown role {value!r}: choose from {known}") from None
    return sorted(roles)


def has_role(user: User, *roles: Role | str) -> bool:
    return user.active and any(str(role) in user.roles for role in roles)


def require_active(user: User) -> None:
    if not user.active:
        raise PermissionDenied(f"{user.name} is deactivated")


def require_role(user: User, *roles: Role | str) -> None:
    """Refuse unless the (active) user holds one of `roles`; the message names what was needed."""
    require_active(user)
    if not has_role(user, *roles):
        needed = " or ".join(str(role) for role in roles)
        raise PermissionDenied(f"{user.name} may not do this: it needs the role {needed}")
