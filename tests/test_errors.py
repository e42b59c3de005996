"""The error tree and its two mappers: every error says its code and statuses once, the CLI
(`cli.app`) and the web app (`web.errors`) each answer for all of them in one place."""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import faceledger
from faceledger.config import Settings
from faceledger.errors import (
    EXIT_AUTH,
    EXIT_BAD_IMAGE,
    EXIT_CHOOSE_FACE,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_NOT_FOUND,
    EXIT_REFUSED,
    EXIT_USAGE,
    FaceledgerError,
)
from faceledger.faces.model_files import ModelFileMissing
from faceledger.search.outcome import CONFLICT_CODES, PERMISSION_CODES, ServiceRefusal
from faceledger.web.app import create_app
from faceledger.web.errors import upload_status
from tests.accounts import ADMIN, add_collection, as_admin, cli, initialise
from tests.web_helpers import bearer, client

# The README's exit statuses (0 is success, never an error's).
EXITS = {
    EXIT_FAILED,
    EXIT_USAGE,
    EXIT_REFUSED,
    EXIT_AUTH,
    EXIT_CHOOSE_FACE,
    EXIT_BAD_IMAGE,
    EXIT_NOT_FOUND,
    EXIT_INTERRUPTED,
}
CODE = re.compile(r"[a-z][a-z_]*")
# The refusal codes the README lists (search outcomes and the later steps).
README_CODES = [
    "missing_purpose",
    "unknown_purpose",
    "missing_case",
    "role_not_allowed",
    "unknown_collection",
    "no_face",
    "bad_image",
    "minor",
    "opted_out",
    "awaiting_approval",
    "denied",
    "approval_mismatch",
    "approval_used",
    "approval_expired",
    "probe_expired",
    "not_requester",
    "own_search",
    "already_reviewed",
    "nothing_confirmed",
]


def _exception_classes() -> Iterator[type[BaseException]]:
    """Every exception class defined in faceledger (all modules imported, once each)."""
    seen: set[type[BaseException]] = set()
    for module in pkgutil.walk_packages(faceledger.__path__, "faceledger."):
        if ".migrations" in module.name or module.name.endswith("__main__"):
            continue
        for _, kind in inspect.getmembers(importlib.import_module(module.name), inspect.isclass):
            if (
                issubclass(kind, BaseException)
                and kind.__module__.startswith("faceledger.")
                and kind not in seen
            ):
                seen.add(kind)
                yield kind


def test_every_exception_of_ours_is_in_the_tree_with_a_code_and_valid_statuses() -> None:
    kinds = list(_exception_classes())
    assert len(kinds) > 30  # the walk found them (33 classes had no common base)
    for kind in kinds:
        assert issubclass(kind, FaceledgerError), kind
        assert isinstance(kind.code, str) and CODE.fullmatch(kind.code), kind
        assert 400 <= kind.http_status <= 599, kind
        assert kind.exit_status in EXITS, kind


@pytest.mark.parametrize("code", sorted({*README_CODES, *PERMISSION_CODES, *CONFLICT_CODES}))
def test_a_refusal_code_keeps_its_documented_statuses(code: str) -> None:
    refusal = ServiceRefusal(code, "no")
    expected_http = 403 if code in PERMISSION_CODES else 409 if code in CONFLICT_CODES else 422
    expected_exit = {"bad_image": EXIT_BAD_IMAGE, "unknown_collection": EXIT_NOT_FOUND}.get(
        code, EXIT_AUTH if code in PERMISSION_CODES else EXIT_REFUSED
    )
    assert (refusal.code, refusal.http_status, refusal.exit_status) == (
        code,
        expected_http,
        expected_exit,
    )
    assert refusal.as_dict() == {
        "error": code,
        "message": "no",
        "status": "refused",
        "reason": "no",
    }


def test_a_bad_image_upload_that_is_no_image_at_all_is_415() -> None:
    refusal = ServiceRefusal("bad_image", "not an image")
    assert upload_status(refusal, b"plain text") == 415
    assert upload_status(refusal, b"\xff\xd8\xff\xe0 truncated jpeg") == 422
    assert upload_status(ServiceRefusal("minor", "no"), b"plain text") == 422


# --- the CLI's mapper -------------------------------------------------------------------------


def test_cli_answers_any_error_as_json_with_its_exit_status(settings: Settings) -> None:
    initialise(settings)
    code, stdout, _ = cli(settings, "collection", "show", "nope", "--json", **as_admin())
    assert code == EXIT_NOT_FOUND
    assert json.loads(stdout) == {"error": "not_found", "message": "no collection named 'nope'"}

    code, stdout, _ = cli(settings, "ledger", "show", "--json")  # nobody said who
    assert code == EXIT_AUTH and json.loads(stdout)["error"] == "authentication_failed"

    code, stdout, _ = cli(settings, "crawl", "--json", **as_admin())  # no seeds, no --resume
    assert code == EXIT_USAGE
    assert json.loads(stdout) == {
        "error": "usage",
        "message": "give SEED URLs and --collection (or --resume JOB)",
    }


def test_cli_prints_an_error_line_for_people_with_the_message_as_text(
    settings: Settings, tmp_path: Path
) -> None:
    initialise(settings)
    taken = tmp_path / "[bold]taken"
    taken.mkdir()
    (taken / "something").write_text("kept")
    code, stdout, stderr = cli(settings, "ledger", "export", str(taken), **as_admin())
    assert (code, stdout) == (EXIT_USAGE, "")
    said = " ".join(stderr.split())  # the console wraps long lines
    assert f"error: {taken} exists and is not an empty directory" in said


def test_cli_refused_state_and_permission_exits(settings: Settings) -> None:
    add_collection(settings, "taken")
    code, stdout, _ = cli(
        settings, "collection", "create", "taken", "--legal-basis", "x", "--json", **as_admin()
    )
    assert (code, json.loads(stdout)["error"]) == (EXIT_REFUSED, "exists")
    code, stdout, _ = cli(settings, "ledger", "erase", "1", "--reason", " ", "--json", **as_admin())
    assert (code, json.loads(stdout)["error"]) == (EXIT_REFUSED, "refused")
    code, stdout, _ = cli(settings, "ledger", "erase", "999", "--reason", "asked", **as_admin())
    assert code == EXIT_NOT_FOUND


# --- the web's mapper -------------------------------------------------------------------------


@pytest.fixture
def web(settings: Settings) -> FastAPI:
    initialise(settings)
    add_collection(settings, "taken")
    return create_app(settings)


def test_web_answers_any_error_with_its_code_and_http_status(
    web: FastAPI, settings: Settings
) -> None:
    browser = client(web)
    browser.headers.update(bearer(settings, ADMIN))
    missing = browser.get("/api/v1/collections/nope")
    assert missing.status_code == 404
    assert missing.json() == {"error": "not_found", "message": "no collection named 'nope'"}
    body = {"name": "taken", "legal_basis": "x"}
    exists = browser.post("/api/v1/collections", json=body)
    assert (exists.status_code, exists.json()["error"]) == (409, "exists")
    bad = browser.patch("/api/v1/collections/taken", json={"result_limit": 0})
    assert (bad.status_code, bad.json()["error"]) == (422, "invalid")
    anonymous = client(web).get("/api/v1/collections")
    assert (anonymous.status_code, anonymous.json()["error"]) == (401, "authentication_required")
    page = browser.get("/collections/nope")  # a page: the same status, as HTML
    assert page.status_code == 404 and "not found" in page.text


def test_web_says_nothing_of_a_fault_of_ours(web: FastAPI, settings: Settings) -> None:
    def broken() -> None:
        raise ModelFileMissing("/secret/path/models/x.onnx is missing")

    web.add_api_route("/api/v1/broken", broken)
    answer = TestClient(web, base_url="https://testserver", raise_server_exceptions=False).get(
        "/api/v1/broken", headers=bearer(settings, ADMIN)
    )
    assert answer.status_code == 500
    assert answer.json() == {
        "error": "internal_error",
        "message": "the server failed to complete the request",
    }
