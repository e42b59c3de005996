"""Collections: their sizes, sources and search policies; admins create them and edit policies.

Both go through `faceledger.policy.collections`, which checks every value and ledgers the
collection with its policy, and each change with its old and new value.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, Field

from faceledger.auth.roles import Role
from faceledger.errors import FaceledgerError
from faceledger.policy.collections import (
    MAX_RESULT_LIMIT,
    create_collection,
    describe,
    get_collection,
    policy_dict,
    update_policy,
)
from faceledger.store import repo
from faceledger.web.deps import Actor, Admin, App
from faceledger.web.pages.answers import back, refused
from faceledger.web.pages.render import NavItem, page

router = APIRouter()
NAV_ITEMS = (NavItem("Collections", "/collections"),)

ROLES = [role.value for role in Role]


class PolicyFields(BaseModel):
    """A policy as its form sends it: an unticked box is absent, so false."""

    legal_basis: str = Field(max_length=4000)
    source: str = Field(default="", max_length=4000)
    retention_days: int | None = None
    search_roles: list[str] = Field(default_factory=list)
    approval_required: bool = False
    authorisation_required: bool = False
    result_limit: int = 20
    threshold: float | None = None
    honour_optouts: bool = False
    keep_evidence: bool = False


class NewCollection(PolicyFields):
    name: str = Field(max_length=200)


def _listing(app: App) -> list[dict[str, Any]]:
    with app.workspace.sessions() as session:
        return [describe(*row) for row in repo.list_collections(session)]


@router.get("/collections", response_class=HTMLResponse)
def collections(request: Request, app: App, user: Actor) -> HTMLResponse:
    """Every collection (anyone signed in); admins get the form for a new one."""
    blank = PolicyFields(legal_basis="", search_roles=["investigator"], honour_optouts=True)
    return page(
        request,
        "web/collections.html",
        user,
        collections=_listing(app),
        roles=ROLES,
        blank=blank.model_dump(),
        max_limit=MAX_RESULT_LIMIT,
    )


@router.post("/collections")
def create(
    request: Request, app: App, user: Admin, fields: Annotated[NewCollection, Form()]
) -> RedirectResponse:
    """A new, empty collection with its legal basis and policy (ledgered)."""
    policy = fields.model_dump(exclude={"name"})
    try:
        with app.workspace.sessions() as session:
            create_collection(session, user, fields.name.strip(), **policy)
            session.commit()
    except FaceledgerError as problem:
        return refused(request, "/collections", problem)
    return back(request, "/collections", f"Collection {fields.name.strip()} created.")


@router.get("/collections/{name}", response_class=HTMLResponse)
def edit_form(request: Request, app: App, user: Admin, name: str) -> HTMLResponse:
    with app.workspace.sessions() as session:
        policy = policy_dict(get_collection(session, name))
    return page(
        request,
        "web/collection.html",
        user,
        name=name,
        policy=policy,
        roles=ROLES,
        max_limit=MAX_RESULT_LIMIT,
    )


@router.post("/collections/{name}")
def change(
    request: Request, app: App, user: Admin, name: str, fields: Annotated[PolicyFields, Form()]
) -> RedirectResponse:
    """Change the policy; each field that changed is ledgered with its old and new value."""
    try:
        with app.workspace.sessions() as session:
            changes = update_policy(session, user, name, **fields.model_dump())
            session.commit()
    except FaceledgerError as problem:
        return refused(request, f"/collections/{name}", problem)
    if not changes:
        return back(request, f"/collections/{name}", "Nothing changed.", "info")
    return back(request, "/collections", f"Policy of {name} changed: {', '.join(changes)}.")
