"""Loading the people and requests a service call acts on, and who may see a request."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from faceledger.auth.roles import Role, has_role
from faceledger.search.outcome import NotFound, ServiceRefusal
from faceledger.store import repo
from faceledger.store.models import SearchRequest, User


def load_user(session: Session, actor: User) -> User:
    """The acting person as a row of this session; a deactivated account acts no more."""
    user = session.get(User, actor.id)
    if user is None or not user.active:
        raise ServiceRefusal("not_allowed", f"{actor.name} is not an active user")
    return user


def load_request(session: Session, request_id: int, *, lock: bool = False) -> SearchRequest:
    """The request; with `lock`, held until the transaction ends, so that a decision on its
    state cannot race another process's (PostgreSQL; SQLite's write lock already does)."""
    row = session.get(SearchRequest, request_id, with_for_update=lock or None)
    if row is None:
        raise NotFound(f"no search request {request_id}")
    return row


def subject(row: SearchRequest) -> str:
    return f"search:{row.id}"


def user_name(session: Session, user_id: int) -> str:
    user = session.get(User, user_id)
    return user.name if user else f"user {user_id}"


def requester_name(session: Session, row: SearchRequest) -> str:
    return user_name(session, row.requester_id)


def may_view(session: Session, user: User, row: SearchRequest) -> bool:
    """The requester, an approver, or someone whose roles may search every collection asked.

    Ids in URLs are not secrets, so every read of a request's results goes through this.
    """
    if row.requester_id == user.id or has_role(user, Role.APPROVER):
        return True
    roles = set(user.roles)
    for name in row.collections:
        collection = repo.get_collection(session, name)
        if collection is None or not roles & set(collection.search_roles):
            return False
    return user.active


def require_view(session: Session, user: User, row: SearchRequest) -> None:
    if not may_view(session, user, row):
        raise ServiceRefusal(
            "not_allowed", f"{user.name} may not see search request {row.id} or its results"
        )


def visible_requests(session: Session, user: User, status: str | None) -> list[SearchRequest]:
    """An approver's inbox is every request; anyone else sees their own."""
    query = select(SearchRequest).order_by(SearchRequest.id)
    if not has_role(user, Role.APPROVER):
        query = query.where(SearchRequest.requester_id == user.id)
    if status:
        query = query.where(SearchRequest.status == status)
    return list(session.scalars(query))
