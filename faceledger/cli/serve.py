"""`faceledger serve`: the web app and REST API (uvicorn, one process, 127.0.0.1 by default)."""

from __future__ import annotations

import ipaddress
from typing import Annotated

import typer
from sqlalchemy import func, select

from faceledger.cli.app import app, err, out, settings_of
from faceledger.store.models import User


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    behind_proxy: Annotated[
        bool,
        typer.Option(help="Trust X-Forwarded-For/-Proto from a reverse proxy on 127.0.0.1."),
    ] = False,
) -> None:
    """Serve the pages and the API under /api/v1 (sign in with a password, or a token)."""
    import uvicorn

    from faceledger.web.app import create_app

    web = create_app(settings_of(ctx))
    with web.state.services.workspace.sessions() as session:
        if not session.scalar(select(func.count()).select_from(User)):
            err.print("[yellow]nobody can sign in yet:[/] run `faceledger init` first")
    if not _loopback(host):
        err.print(
            "[yellow]session cookies are Secure:[/] browsers on other machines need HTTPS "
            "(a TLS reverse proxy in front, with --behind-proxy)"
        )
    out.print(f"faceledger is at http://{host}:{port}/ (sign in with your user name and password)")
    out.print(
        f"API: http://{host}:{port}/api/v1 (schema: /api/v1/openapi.json), "
        "with `Authorization: Bearer TOKEN` from `faceledger token create USER`"
    )
    uvicorn.run(
        web,
        host=host,
        port=port,
        proxy_headers=behind_proxy,
        forwarded_allow_ips="127.0.0.1" if behind_proxy else None,
        server_header=False,
    )
