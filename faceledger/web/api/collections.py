"""Collections: anyone signed in reads them; admins create them and change their policies."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from faceledger.policy.collections import (
    POLICY,
    InvalidPolicy,
    create_collection,
    describe,
    get_collection,
    update_policy,
)
from faceledger.store import repo
from faceledger.web.api.schemas import NewCollection
from faceledger.web.deps import Actor, Admin, App

router = APIRouter(tags=["collections"])


def _described(app: App, name: str) -> dict[str, Any]:
    with app.workspace.sessions() as session:
        get_collection(session, name)
        return next(describe(*row) for row in repo.list_collections(session) if row[0].name == name)


@router.get("/collections")
def listing(app: App, _user: Actor) -> dict[str, Any]:
    with app.workspace.sessions() as session:
        return {"collections": [describe(*row) for row in repo.list_collections(session)]}


@router.get("/collections/{name}")
def show(app: App, _user: Actor, name: str) -> dict[str, Any]:
    return _described(app, name)


@router.post("/collections", status_code=201)
def create(app: App, user: Admin, body: NewCollection) -> dict[str, Any]:
    """Create an empty collection with its legal basis and policy (ledgered)."""
    unknown = set(body.policy) - (set(POLICY) - {"legal_basis"})
    if unknown:
        raise InvalidPolicy(f"unknown policy field(s): {', '.join(sorted(unknown))}")
    with app.workspace.sessions() as session:
        create_collection(session, user, body.name, legal_basis=body.legal_basis, **body.policy)
        session.commit()
    return _described(app, body.name)


@router.patch("/collections/{name}")
def change(app: App, user: Admin, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """Change policy fields; each change is ledgered with its old and new value."""
    with app.workspace.sessions() as session:
        changes = update_policy(session, user, name, **body)
        session.commit()
    return {"name": name, "changes": changes}
