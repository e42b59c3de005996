"""`faceledger init`, `faceledger user ...` and `faceledger token ...`: who may act.

Passwords come from the environment (so they stay out of shell history and `ps`) or are
generated and printed once; tokens are printed once. Neither can be shown again.
"""

from __future__ import annotations

import json
import os
from typing import Annotated, Any

import typer
from rich.table import Table

from faceledger.auth import tokens, users
from faceledger.auth.passwords import generate_password
from faceledger.auth.roles import Role
from faceledger.auth.tokens import MAX_DAYS
from faceledger.cli.app import (
    JsonOption,
    app,
    err,
    out,
    settings_of,
)
from faceledger.cli.auth import acting_user
from faceledger.store.models import User
from faceledger.workspace import Workspace

ADMIN_PASSWORD_VAR = "FACELEDGER_ADMIN_PASSWORD"
NEW_PASSWORD_VAR = "FACELEDGER_NEW_PASSWORD"

user_app = typer.Typer(help="Manage the people who may act and their roles.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens for scripts (FACELEDGER_TOKEN).", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")

RolesOption = Annotated[
    list[Role], typer.Option("--role", "-r", help="A role; repeat for several.")
]
NameArgument = Annotated[str, typer.Argument(help="The user's name.")]


def _new_password(variable: str) -> tuple[str, bool]:
    """The password from `variable`, or a generated one; and whether it must be shown."""
    given = os.environ.get(variable)
    return (given, False) if given else (generate_password(), True)


def _user_dict(user: User) -> dict[str, Any]:
    return {
        "name": user.name,
        "roles": list(user.roles),
        "active": user.active,
        "locked_until": user.locked_until.isoformat() if user.locked_until else None,
        "created_at": user.created_at.isoformat() if user.created_at else None,
    }


def _emit(data: dict[str, Any], as_json: bool, message: str, secret: str | None = None) -> None:
    """One JSON object, or a line for people; a secret is printed bare, to copy or pipe."""
    if as_json:
        print(json.dumps(data))
        return
    out.print(message)
    if secret is not None:
        err.print("[bold yellow]shown once only, store it now:[/]")
        print(secret)


@app.command("init")
def init(
    ctx: typer.Context,
    admin: Annotated[str, typer.Option("--admin", help="The first admin's name.")] = "admin",
    as_json: JsonOption = False,
) -> None:
    """Create the data directory and its first admin (password: FACELEDGER_ADMIN_PASSWORD)."""
    settings = settings_of(ctx)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    password, show = _new_password(ADMIN_PASSWORD_VAR)
    with Workspace(settings_of(ctx)).sessions() as session:
        user = users.init_admin(session, admin, password)
        session.commit()
    data = {
        "data_dir": str(settings.data_dir),
        "admin": user.name,
        "password": password if show else None,
    }
    source = "generated" if show else f"from {ADMIN_PASSWORD_VAR}"
    message = f"initialised {settings.data_dir}: admin [bold]{user.name}[/] (password {source})"
    _emit(data, as_json, message, password if show else None)


@user_app.command("add")
def user_add(
    ctx: typer.Context,
    name: NameArgument,
    role: RolesOption,
    as_json: JsonOption = False,
) -> None:
    """Add a user (password: FACELEDGER_NEW_PASSWORD, else generated and printed once)."""
    password, show = _new_password(NEW_PASSWORD_VAR)
    with Workspace(settings_of(ctx)).sessions() as session:
        actor = acting_user(session)
        user = users.add_user(session, actor, name, role, password)
        session.commit()
    data = {**_user_dict(user), "password": password if show else None}
    message = f"added [bold]{user.name}[/] ({', '.join(user.roles)})"
    _emit(data, as_json, message, password if show else None)


@user_app.command("roles")
def user_roles(
    ctx: typer.Context,
    name: NameArgument,
    role: RolesOption,
    as_json: JsonOption = False,
) -> None:
    """Replace a user's roles with the ones given."""
    with Workspace(settings_of(ctx)).sessions() as session:
        actor = acting_user(session)
        existing = users.find_user(session, name)
        old = list(existing.roles) if existing else []
        user = users.set_roles(session, actor, name, role)
        session.commit()
    data = {**_user_dict(user), "old_roles": old}
    message = f"[bold]{user.name}[/]: {', '.join(old)} -> {', '.join(user.roles)}"
    _emit(data, as_json, message)


@user_app.command("deactivate")
def user_deactivate(ctx: typer.Context, name: NameArgument, as_json: JsonOption = False) -> None:
    """Stop a user acting; they stay on record (the ledger names them)."""
    with Workspace(settings_of(ctx)).sessions() as session:
        actor = acting_user(session)
        user = users.deactivate(session, actor, name)
        session.commit()
    _emit(_user_dict(user), as_json, f"deactivated [bold]{user.name}[/]")


@user_app.command("reset-password")
def user_reset_password(
    ctx: typer.Context, name: NameArgument, as_json: JsonOption = False
) -> None:
    """Set a new password (FACELEDGER_NEW_PASSWORD, else generated) and lift a lock-out."""
    password, show = _new_password(NEW_PASSWORD_VAR)
    with Workspace(settings_of(ctx)).sessions() as session:
        actor = acting_user(session)
        user = users.reset_password(session, actor, name, password)
        session.commit()
    data = {"name": user.name, "password": password if show else None}
    _emit(data, as_json, f"new password for [bold]{user.name}[/]", password if show else None)


@user_app.command("list")
def user_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Everyone, with roles and state (admins and auditors)."""
    with Workspace(settings_of(ctx)).sessions() as session:
        actor = acting_user(session)
        rows = [_user_dict(user) for user in users.list_users(session, actor)]
    if as_json:
        print(json.dumps({"users": rows}))
        return
    table = Table("name", "roles", "active", "locked until", "created")
    for row in rows:
        table.add_row(
            row["name"],
            ", ".join(row["roles"]),
            "yes" if row["active"] else "no",
            row["locked_until"] or "",
            row["created_at"] or "",
        )
    out.print(table)


@token_app.command("create")
def token_create(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="Whose token (yourself, unless you are admin).")],
    days: Annotated[
        int, typer.Option("--days", min=1, max=MAX_DAYS, help="Days until it expires.")
    ] = 30,
    as_json: JsonOption = False,
) -> None:
    """Create a token and print it once. Needs a password: a token cannot mint tokens."""
    with Workspace(settings_of(ctx)).sessions() as session:
        actor = acting_user(session, allow_token=False)
        token = tokens.create_token(session, actor, user, days)
        session.commit()
    data = {"user": user, "days": days, "token": token}
    message = f"token for [bold]{user}[/], valid {days} days; use it as FACELEDGER_TOKEN"
    _emit(data, as_json, message, token)


@token_app.command("list")
def token_list(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Option("--user", help="Only this user's.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Token ids and dates (never the tokens): all for admins, your own otherwise."""
    with Workspace(settings_of(ctx)).sessions() as session:
        actor = acting_user(session)
        rows = [info.as_dict() for info in tokens.list_tokens(session, actor, user)]
    if as_json:
        print(json.dumps({"tokens": rows}))
        return
    table = Table("id", "user", "created", "expires", "last used", "revoked")
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["user"],
            row["created_at"],
            row["expires_at"],
            row["last_used_at"] or "",
            row["revoked_at"] or "",
        )
    out.print(table)


@token_app.command("revoke")
def token_revoke(
    ctx: typer.Context,
    token_id: Annotated[int, typer.Argument(help="The token's id (see `token list`).")],
    as_json: JsonOption = False,
) -> None:
    """Revoke a token by id; it is refused from then on."""
    with Workspace(settings_of(ctx)).sessions() as session:
        actor = acting_user(session)
        row = tokens.revoke_token(session, actor, token_id)
        session.commit()
    revoked_at = row.revoked_at.isoformat() if row.revoked_at else None
    _emit({"id": row.id, "revoked_at": revoked_at}, as_json, f"token {row.id} revoked")
