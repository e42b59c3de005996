"""Who you are (anyone signed in) and who everyone is (admins and auditors)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from faceledger.auth.users import list_users
from faceledger.store.models import User
from faceledger.web.deps import Actor, App, Overseer

router = APIRouter(tags=["users"])


def _person(user: User) -> dict[str, Any]:
    return {"name": user.name, "roles": list(user.roles), "active": user.active}


@router.get("/users/me")
def me(user: Actor) -> dict[str, Any]:
    return _person(user)


@router.get("/users")
def everyone(app: App, user: Overseer) -> dict[str, Any]:
    with app.workspace.sessions() as session:
        return {"users": [_person(person) for person in list_users(session, user)]}
