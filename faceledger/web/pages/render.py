"""Rendering a page: the layout's context (user, roles, nav, CSRF token, flash messages).

`NAV` is the navigation: each page module names its entries (`NAV_ITEMS`), with the roles
that may see them (the route itself still checks them: the nav only hides what would be
refused); `pages/__init__` adds them in menu order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from faceledger.render import render
from faceledger.store.models import User
from faceledger.web import sessions


@dataclass(frozen=True)
class NavItem:
    label: str
    path: str
    roles: tuple[str, ...] = ()  # empty: everyone signed in

    def shown_to(self, user: User) -> bool:
        return not self.roles or bool(set(self.roles) & set(user.roles))


NAV: list[NavItem] = [NavItem("Home", "/")]


def page(
    request: Request, template: str, user: User | None, status: int = 200, **context: Any
) -> HTMLResponse:
    state = sessions.ensure(request.session)
    html = render(
        template,
        user=user,
        nav=[item for item in NAV if user is not None and item.shown_to(user)],
        current=request.url.path,
        csrf=state[sessions.CSRF],
        flashes=sessions.pop_flashes(state),
        **context,
    )
    return HTMLResponse(html, status)
