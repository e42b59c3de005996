"""Collections and their search policies: admins create and change them, and the ledger says so.

A policy decides who may search a collection and how (roles, approval, authorisation, result
limit, threshold, opt-outs), so every change is ledgered with its old and new values, in the
caller's transaction: a policy cannot change without its entry.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy.orm import Session

from faceledger.auth.clock import as_utc
from faceledger.auth.roles import Role, UnknownRole, parse_roles, require_role
from faceledger.errors import BadInput, Conflict, NotFound
from faceledger.ledger import log
from faceledger.store import repo
from faceledger.store.models import Collection, User

MAX_RESULT_LIMIT = 1000
# Names appear in commands, ledger subjects and URLs: keep them plain.
_NAME = re.compile(r"[\w.-]{1,200}")


class UnknownCollection(NotFound):
    """No collection has that name."""


class CollectionExists(Conflict):
    """A collection with that name exists already."""

    code = "exists"


class InvalidPolicy(BadInput):
    """A policy value out of range or of the wrong kind; the message names the field."""


def subject(name: str) -> str:
    """The ledger subject of everything done to or with a collection."""
    return f"collection:{name}"


def get_collection(session: Session, name: str) -> Collection:
    collection = repo.get_collection(session, name)
    if collection is None:
        raise UnknownCollection(f"no collection named {name!r}")
    return collection


def _text(field: str, *, required: bool) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if value is not None and not isinstance(value, str):
            raise InvalidPolicy(f"{field} must be text")
        text = (value or "").strip()
        if required and not text:
            raise InvalidPolicy(f"{field} is required: say on what basis the faces are held")
        return text or None

    return check


def _flag(field: str) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        if not isinstance(value, bool):
            raise InvalidPolicy(f"{field} must be true or false, not {value!r}")
        return value

    return check


def _retention_days(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidPolicy(f"retention_days must be a whole number of days >= 1, not {value!r}")
    return value


def _result_limit(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_RESULT_LIMIT:
        raise InvalidPolicy(
            f"result_limit must be a whole number from 1 to {MAX_RESULT_LIMIT}, not {value!r}"
        )
    return value


def _threshold(value: Any) -> float | None:
    if value is None:  # the calibrated default applies
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidPolicy(f"threshold must be a number, not {value!r}")
    if not (math.isfinite(value) and -1.0 <= value <= 1.0):
        raise InvalidPolicy(f"threshold is a cosine similarity, from -1 to 1, not {value!r}")
    return float(value)


def _search_roles(value: Any) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidPolicy(f"search_roles must be a list of roles, not {value!r}")
    try:
        roles = parse_roles(value)
    except UnknownRole as error:
        raise InvalidPolicy(f"search_roles: {error}") from None
    if not roles:
        raise InvalidPolicy("search_roles needs at least one role that may search")
    return roles


# Every policy field with its check; the checks return the value as stored.
POLICY: dict[str, Callable[[Any], Any]] = {
    "source": _text("source", required=False),
    "legal_basis": _text("legal_basis", required=True),
    "retention_days": _retention_days,
    "search_roles": _search_roles,
    "approval_required": _flag("approval_required"),
    "authorisation_required": _flag("authorisation_required"),
    "result_limit": _result_limit,
    "threshold": _threshold,
    "honour_optouts": _flag("honour_optouts"),
    "keep_evidence": _flag("keep_evidence"),
}


def policy_dict(collection: Collection) -> dict[str, Any]:
    """The collection's policy as JSON-ready values: for display and for ledger payloads."""
    values = {field: getattr(collection, field) for field in POLICY}
    values["search_roles"] = list(values["search_roles"])
    return values


def describe(collection: Collection, images: int = 0, faces: int = 0) -> dict[str, Any]:
    """A collection as the CLI's --json and the API show it: counts and policy."""
    return {
        "name": collection.name,
        "created_at": as_utc(collection.created_at).isoformat(),
        "images": images,
        "faces": faces,
        "policy": policy_dict(collection),
    }


def _checked(values: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(values) - set(POLICY))
    if unknown:
        raise InvalidPolicy(f"unknown policy field(s): {', '.join(unknown)}")
    return {field: POLICY[field](value) for field, value in values.items()}


def create_collection(
    session: Session,
    actor: User,
    name: str,
    *,
    legal_basis: str,
    source: str | None = None,
    retention_days: int | None = None,
    search_roles: Iterable[str] = (Role.INVESTIGATOR,),
    approval_required: bool = False,
    authorisation_required: bool = False,
    result_limit: int = 20,
    threshold: float | None = None,
    honour_optouts: bool = True,
    keep_evidence: bool = False,
) -> Collection:
    """A new, empty collection with its policy (admins only); the caller commits."""
    require_role(actor, Role.ADMIN)
    if not _NAME.fullmatch(name):
        raise InvalidPolicy(
            f"invalid collection name {name!r}: use 1 to 200 letters, digits, '.', '_' or '-'"
        )
    policy = _checked(
        {
            "source": source,
            "legal_basis": legal_basis,
            "retention_days": retention_days,
            "search_roles": search_roles,
            "approval_required": approval_required,
            "authorisation_required": authorisation_required,
            "result_limit": result_limit,
            "threshold": threshold,
            "honour_optouts": honour_optouts,
            "keep_evidence": keep_evidence,
        }
    )
    if repo.get_collection(session, name) is not None:
        raise CollectionExists(f"collection {name!r} already exists")
    collection = Collection(name=name, **policy)
    session.add(collection)
    session.flush()
    log.append(
        session,
        actor=actor.name,
        action="collection.created",
        subject=subject(name),
        payload=policy_dict(collection),
    )
    return collection


def update_policy(
    session: Session, actor: User, name: str, **changes: Any
) -> dict[str, dict[str, Any]]:
    """Change policy fields (admins only); returns {field: {old, new}} for what really changed.

    Nothing is ledgered when nothing changed; the caller commits.
    """
    require_role(actor, Role.ADMIN)
    checked = _checked(changes)
    collection = get_collection(session, name)
    old = policy_dict(collection)
    changed = {
        field: {"old": old[field], "new": value}
        for field, value in checked.items()
        if old[field] != value
    }
    for field, change in changed.items():
        setattr(collection, field, change["new"])
    if changed:
        log.append(
            session,
            actor=actor.name,
            action="collection.policy",
            subject=subject(name),
            payload=changed,
        )
    return changed
