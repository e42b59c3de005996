"""The web app over a real workspace, clients that act as people, and a world of real faces.

Clients talk to the real app in process (`TestClient`, https://testserver, so the Secure
session cookie is sent back as a browser on HTTPS would). `sign_in` goes through the login
form like a person and keeps the session's CSRF token in the `X-CSRF-Token` header, as a
page script would; `bearer` mints an API token as `faceledger token create` does.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient

from faceledger.auth import passwords, tokens, users
from faceledger.config import Settings, load_settings
from faceledger.faces.decode import DEFAULT_LIMITS
from faceledger.ingest.files import iter_items
from faceledger.ingest.job import IngestJob
from faceledger.web.app import create_app
from faceledger.web.config import WebConfig
from faceledger.workspace import Workspace
from tests.accounts import ADMIN, ADMIN_PW, PEOPLE, add_collection, initialise
from tests.conftest import NO_SHARED, SHARED_DATA
from tests.faces import photos

# The person acting in each role, and a second investigator who asked for nothing.
AS_ROLE = {"admin": ADMIN, "investigator": "ivan", "approver": "april", "auditor": "audrey"}
OTHER, OTHER_PW = "iris", "iris-password-12"
GALLERY = ("Colin_Powell", "George_W_Bush", "Serena_Williams")
WHY = {"purpose": "investigation", "case": "CASE-7", "justification": "identify a suspect"}


def password_of(name: str) -> str:
    return {ADMIN: ADMIN_PW, OTHER: OTHER_PW}.get(name) or PEOPLE[name][1]


def client(app: FastAPI) -> TestClient:
    return TestClient(app, base_url="https://testserver", follow_redirects=False)


def csrf_in(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def cookie_session(value: str) -> dict[str, Any]:
    """What a session cookie holds (it is signed, not encrypted)."""
    return json.loads(base64.b64decode(value.split(".")[0]))


def login(browser: TestClient, name: str, password: str) -> Any:
    token = csrf_in(browser.get("/login").text)
    form = {"username": name, "password": password, "csrf_token": token}
    return browser.post("/login", data=form)


def sign_in(app: FastAPI, name: str) -> TestClient:
    """A browser signed in as `name`, sending its CSRF token with every request."""
    browser = client(app)
    assert login(browser, name, password_of(name)).status_code == 303
    browser.headers["X-CSRF-Token"] = csrf_in(browser.get("/").text)
    return browser


def bearer(settings: Settings, name: str) -> dict[str, str]:
    with Workspace(settings).sessions() as session:
        token = tokens.create_token(session, users.get_user(session, ADMIN), name, days=1)
        session.commit()
    return {"Authorization": f"Bearer {token}"}


@contextmanager
def cheap_passwords() -> Iterator[None]:
    """The test hasher for fixtures wider than one test (conftest's is per test)."""
    saved = passwords._hasher
    passwords._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    try:
        yield
    finally:
        passwords._hasher = saved


@dataclass
class World:
    """People, collections `open` and `guarded` (approval required) with real faces."""

    settings: Settings
    faces_dev: Path

    def app(self, config: WebConfig | None = None) -> FastAPI:
        return create_app(self.settings, config)

    def photo(self, person: str, number: int = 0) -> bytes:
        return photos(self.faces_dev, person)[number].read_bytes()

    def search(
        self, browser: TestClient, person: str, collection: str = "open", **fields: str
    ) -> Any:
        files = {"photo": ("probe.jpg", self.photo(person), "image/jpeg")}
        data = {**WHY, "collection": collection} | fields
        return browser.post("/api/v1/searches", files=files, data=data)


def make_world(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> World:
    faces_dev = SHARED_DATA / "faces-dev"
    if not faces_dev.is_dir():
        pytest.skip(NO_SHARED)
    settings = load_settings(tmp_path_factory.mktemp("web"), workers=1, model_dir=model_dir)
    initialise(settings, *PEOPLE)
    with Workspace(settings).sessions() as session:
        users.add_user(session, users.get_user(session, ADMIN), OTHER, ["investigator"], OTHER_PW)
        session.commit()
    add_collection(settings, "open")
    add_collection(settings, "guarded", approval_required=True)
    gallery = [p for person in GALLERY for p in photos(faces_dev, person)[1:3]]
    workspace = Workspace(settings)
    for name in ("open", "guarded"):
        IngestJob(workspace, name).run(iter_items(gallery, [], DEFAULT_LIMITS.max_bytes))
    return World(settings, faces_dev)
