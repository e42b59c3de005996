"""The application factory: `create_app(settings)` is what `faceledger serve` runs.

Middleware, outermost first: security headers (on every response, errors included), the
body-size limit, the signed session cookie. Then the error handlers (`errors.install`),
the API under /api/v1 (schema at /api/v1/openapi.json; no Swagger UI, whose inline script
the CSP forbids), the pages and /static.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp

from faceledger.config import Settings
from faceledger.web import errors
from faceledger.web.api import router as api_router
from faceledger.web.config import WebConfig
from faceledger.web.pages import router as pages_router
from faceledger.web.security import BodyLimit, SecurityHeaders
from faceledger.web.services import Services

STATIC = Path(__file__).resolve().parents[1] / "static"


class _App(FastAPI):
    def build_middleware_stack(self) -> ASGIApp:
        # Outside Starlette's own error middleware, so that a 500 carries the headers too.
        return SecurityHeaders(super().build_middleware_stack())


def create_app(settings: Settings, config: WebConfig | None = None) -> FastAPI:
    config = config or WebConfig()
    services = Services(settings, config)
    app = _App(
        title="faceledger",
        summary="Accountable face search: every search authenticated, justified and ledgered.",
        version="1",
        openapi_url="/api/v1/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.state.services = services
    app.add_middleware(
        SessionMiddleware,
        secret_key=services.session_key,
        session_cookie=config.cookie_name,
        max_age=config.idle_minutes * 60,
        same_site=config.same_site,
        https_only=True,
    )
    app.add_middleware(BodyLimit, limit=config.max_body)
    errors.install(app)
    app.include_router(api_router)
    app.include_router(pages_router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
