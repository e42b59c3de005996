"""The signed-in landing page: who you are, your roles, where to go."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from faceledger.web.deps import Actor
from faceledger.web.pages.render import page

router = APIRouter()


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, user: Actor) -> HTMLResponse:
    return page(request, "web/home.html", user)
