"""The demo: build a collection from a folder of face photos and search it with a held-out one.

It needs no network: the photos come from a folder the user names (the Makefile passes the
shared LFW sample when it is there). A `Person/photo.jpg` layout is used to hold one photo
of a person out as the probe, so the search has a true answer to find. The demo acts
through the same accountable services as everyone: its own admin ingests, its own
investigator searches with a purpose and a case reference, and the ledger records it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from faceledger.auth.login import authenticate
from faceledger.auth.passwords import generate_password
from faceledger.auth.roles import Role
from faceledger.auth.users import add_user, init_admin
from faceledger.config import Settings
from faceledger.errors import NotFound, Refused
from faceledger.ingest.files import IMAGE_SUFFIXES
from faceledger.policy.collections import create_collection
from faceledger.store import repo
from faceledger.store.models import User
from faceledger.workspace import Workspace


@dataclass(frozen=True)
class DemoPlan:
    gallery: list[Path]
    probe: Path


def plan_demo(folder: Path, people: int) -> DemoPlan:
    """Take the first `people` people (by name) with at least two photos; hold one out."""
    if not folder.is_dir():
        raise NotFound(f"demo folder {folder} does not exist")
    persons = sorted(p for p in folder.iterdir() if p.is_dir())
    chosen: list[list[Path]] = []
    for person in persons:
        photos = sorted(p for p in person.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if len(photos) >= 2:
            chosen.append(photos)
        if len(chosen) == people:
            break
    if not chosen:
        raise NotFound(f"{folder} has no Person/ subfolder with two or more photos")
    probe = chosen[0][-1]
    gallery = [photo for photos in chosen for photo in photos if photo != probe]
    return DemoPlan(gallery=gallery, probe=probe)


DEMO_ADMIN = "demo-admin"
DEMO_INVESTIGATOR = "demo-investigator"
CREDENTIALS_FILE = "demo-credentials.json"


class DemoRefused(Refused):
    """The data directory belongs to someone else: the demo will not act in it."""


@dataclass(frozen=True)
class DemoAccounts:
    passwords: dict[str, str]
    created: bool
    path: Path


def demo_accounts(settings: Settings) -> DemoAccounts:
    """The demo's admin and investigator, created (ledgered) on an empty data directory.

    Their generated passwords are kept in a file only the owner can read, inside the data
    directory (the same trust boundary as the database and the ledger key), so that a
    second `make demo` can sign in again. The demo never acts in a data directory that it
    did not set up: that would be a way around authentication.
    """
    path = settings.data_dir / CREDENTIALS_FILE
    with Workspace(settings).sessions() as session:
        anyone = session.scalar(select(func.count()).select_from(User))
        if anyone and path.is_file():
            return DemoAccounts(json.loads(path.read_text()), False, path)
        if anyone:
            raise DemoRefused(
                f"{settings.data_dir} already has users and was not set up by the demo: "
                "run the demo with another FACELEDGER_DATA_DIR"
            )
        passwords = {DEMO_ADMIN: generate_password(), DEMO_INVESTIGATOR: generate_password()}
        admin = init_admin(session, DEMO_ADMIN, passwords[DEMO_ADMIN])
        add_user(
            session, admin, DEMO_INVESTIGATOR, [Role.INVESTIGATOR], passwords[DEMO_INVESTIGATOR]
        )
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(passwords, handle)
        session.commit()
    return DemoAccounts(passwords, True, path)


def sign_in(settings: Settings, accounts: DemoAccounts, name: str) -> User:
    """Log a demo account in (ledgered like any login); the row comes back detached."""
    with Workspace(settings).sessions() as session:
        user = authenticate(session, name, accounts.passwords[name])
        session.refresh(user)
        session.expunge(user)
        return user


def ensure_demo_collection(settings: Settings, admin: User) -> None:
    with Workspace(settings).sessions() as session:
        if repo.get_collection(session, "demo") is None:
            create_collection(
                session,
                admin,
                "demo",
                legal_basis="demonstration on the public LFW research sample",
                source="folder of Person/*.jpg photos",
            )
            session.commit()
