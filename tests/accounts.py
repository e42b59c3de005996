"""People, collections, the CLI runner and ledger reading for tests that act as users.

Ingestion is an admin's ledgered act into a collection that exists, so a test that ingests
through the CLI first needs both: `ready_to_ingest` makes them through the services.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from faceledger.auth import users
from faceledger.cli import app
from faceledger.config import Settings
from faceledger.policy.collections import create_collection
from faceledger.store.db import reading
from faceledger.store.models import LedgerEntry, LedgerPayload, User
from faceledger.workspace import Workspace

ADMIN = "admin"
ADMIN_PW = "admin-password-1"
INV_PW = "investigator-pw-1"
AUD_PW = "auditor-password-1"
APR_PW = "approver-password-1"
# Everyone but the admin, by name: (role, password).
PEOPLE = {
    "ivan": ("investigator", INV_PW),
    "april": ("approver", APR_PW),
    "amos": ("approver", APR_PW),
    "audrey": ("auditor", AUD_PW),
}


def credentials(name: str = ADMIN) -> dict[str, str]:
    """The environment that makes `name` the acting user of a command."""
    return as_admin(PEOPLE[name][1] if name in PEOPLE else ADMIN_PW, name)


def initialise(settings: Settings, *people: str) -> None:
    """A workspace with its admin and the named people of PEOPLE (committed)."""
    with Workspace(settings).sessions() as session:
        admin = users.init_admin(session, ADMIN, ADMIN_PW)
        for name in people:
            role, password = PEOPLE[name]
            users.add_user(session, admin, name, [role], password)
        session.commit()


def add_collection(settings: Settings, name: str, admin: str = ADMIN, **policy: Any) -> int:
    """Create a collection as `admin` would (legal basis "test fixture" unless given),
    initialising the workspace with that admin first if nobody exists yet; return its id."""
    with Workspace(settings).sessions() as session:
        if users.find_user(session, admin) is None:
            actor = users.init_admin(session, admin, ADMIN_PW)
        else:
            actor = users.get_user(session, admin)
        collection = create_collection(
            session, actor, name, **{"legal_basis": "test fixture", **policy}
        )
        session.commit()
        return collection.id


def ready_to_ingest(settings: Settings, collection: str) -> None:
    """An initialised workspace with `collection` created: `credentials()` may ingest into it."""
    initialise(settings)
    add_collection(settings, collection)


runner = CliRunner()
NO_CREDENTIALS: dict[str, str | None] = {
    name: None
    for name in (
        "FACELEDGER_TOKEN",
        "FACELEDGER_USER",
        "FACELEDGER_PASSWORD",
        "FACELEDGER_ADMIN_PASSWORD",
        "FACELEDGER_NEW_PASSWORD",
    )
}


def cli(settings: Settings, *args: str, **env: str) -> tuple[int, str, str]:
    """Run `faceledger` with no ambient credentials: only those in `env` count."""
    result = runner.invoke(
        app, ["--data-dir", str(settings.data_dir), *args], env={**NO_CREDENTIALS, **env}
    )
    return result.exit_code, result.stdout, result.stderr


def as_admin(password: str = ADMIN_PW, name: str = ADMIN) -> dict[str, str]:
    return {"FACELEDGER_USER": name, "FACELEDGER_PASSWORD": password}


def entries(sessions: sessionmaker[Session], action: str | None = None) -> list[dict[str, Any]]:
    """Ledger entries read afresh (a new read-only session), with their payloads."""
    with reading(sessions)() as session:
        query = select(LedgerEntry, LedgerPayload.body).join(
            LedgerPayload, LedgerPayload.seq == LedgerEntry.seq
        )
        if action:
            query = query.where(LedgerEntry.action == action)
        return [
            {
                "actor": entry.actor,
                "action": entry.action,
                "subject": entry.subject,
                "payload": json.loads(body),
            }
            for entry, body in session.execute(query.order_by(LedgerEntry.seq))
        ]


def person(settings: Settings, name: str) -> User:
    """A user row, detached, to hand to a service as the acting person."""
    with Workspace(settings).sessions() as session:
        user = users.get_user(session, name)
        session.expunge(user)
        return user
