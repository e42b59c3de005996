"""People and collections for tests that drive `faceledger` as its users would.

Ingestion is an admin's ledgered act into a collection that exists, so a test that ingests
through the CLI first needs both: `ready_to_ingest` makes them through the services. The
accounts, passwords and CLI runner themselves are test_auth's (reused, not repeated here).
"""

from __future__ import annotations

from typing import Any

from faceledger.auth import users
from faceledger.config import Settings
from faceledger.policy.collections import create_collection
from faceledger.workspace import Workspace
from tests.test_auth import ADMIN_PW, AUD_PW, INV_PW, as_admin

ADMIN = "admin"
APR_PW = "approver-password-1"
# Everyone but the admin, by name: (role, password).
PEOPLE = {
    "ivan": ("investigator", INV_PW),
    "april": ("approver", APR_PW),
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


def add_collection(settings: Settings, name: str, **policy: Any) -> int:
    """Create a collection as the admin would (legal basis "test fixture" unless given),
    initialising the workspace first if nobody exists yet; return its id."""
    with Workspace(settings).sessions() as session:
        if users.find_user(session, ADMIN) is None:
            admin = users.init_admin(session, ADMIN, ADMIN_PW)
        else:
            admin = users.get_user(session, ADMIN)
        collection = create_collection(
            session, admin, name, **{"legal_basis": "test fixture", **policy}
        )
        session.commit()
        return collection.id


def ready_to_ingest(settings: Settings, collection: str) -> None:
    """An initialised workspace with `collection` created: `credentials()` may ingest into it."""
    initialise(settings)
    add_collection(settings, collection)
