"""Collections, their policies and accountable ingestion, driven through the real CLI.

Each test tries what must fail (a non-admin changing a policy or ingesting, bad values, an
ingest into nowhere) and reads the ledger for what must, and must not, be on record.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from faceledger.auth import users
from faceledger.config import Settings
from faceledger.errors import EXIT_AUTH, EXIT_NOT_FOUND, EXIT_REFUSED
from faceledger.policy.collections import (
    InvalidPolicy,
    UnknownCollection,
    create_collection,
    update_policy,
)
from faceledger.store.models import SourceImage
from faceledger.workspace import Workspace
from tests.accounts import (
    ADMIN,
    PEOPLE,
    add_collection,
    cli,
    credentials,
    entries,
    initialise,
)
from tests.faces import photos

EXIT_USAGE = 2
DEFAULTS = {
    "source": None,
    "retention_days": None,
    "search_roles": ["investigator"],
    "approval_required": False,
    "authorisation_required": False,
    "result_limit": 20,
    "threshold": None,
    "honour_optouts": True,
    "keep_evidence": False,
}


@pytest.fixture
def sessions(settings: Settings) -> sessionmaker[Session]:
    """A workspace with the admin and one investigator, approver and auditor."""
    initialise(settings, *PEOPLE)
    return Workspace(settings).sessions


def act(settings: Settings, who: str, *args: str) -> tuple[int, Any, str]:
    """Run a command as `who`: exit status, the answer (parsed with --json), stderr."""
    model_dir = str(settings.model_cache_dir)
    code, stdout, stderr = cli(settings, *args, **credentials(who), FACELEDGER_MODEL_DIR=model_dir)
    return code, json.loads(stdout) if "--json" in args else stdout, stderr


def policy(settings: Settings, name: str) -> dict[str, Any]:
    code, shown, _ = act(settings, ADMIN, "collection", "show", name, "--json")
    assert code == 0, shown
    return shown["policy"]


def collection_entries(sessions: sessionmaker[Session]) -> list[dict[str, Any]]:
    return [e for e in entries(sessions) if e["action"].startswith("collection.")]


def test_create_show_and_list_with_every_policy_field(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    code, created, _ = act(
        settings,
        ADMIN,
        *("collection", "create", "news", "--legal-basis", "Art. 6(1)(e) GDPR: public task"),
        *("--source", "press archive", "--retention-days", "365"),
        *("--approval-required", "--authorisation-required"),
        *("--search-roles", "investigator, approver", "--result-limit", "50"),
        *("--threshold", "0.93", "--no-honour-optouts", "--keep-evidence", "--json"),
    )
    assert code == 0, created
    news = {
        "source": "press archive",
        "legal_basis": "Art. 6(1)(e) GDPR: public task",
        "retention_days": 365,
        "search_roles": ["approver", "investigator"],
        "approval_required": True,
        "authorisation_required": True,
        "result_limit": 50,
        "threshold": 0.93,
        "honour_optouts": False,
        "keep_evidence": True,
    }
    assert created["policy"] == news
    code, plain, _ = act(
        settings, ADMIN, "collection", "create", "plain", "--legal-basis", "consent", "--json"
    )
    assert code == 0 and plain["policy"] == {**DEFAULTS, "legal_basis": "consent"}

    # Anyone signed in may read policies; what they read is what was stored.
    code, shown, _ = act(settings, "audrey", "collection", "show", "news", "--json")
    assert code == 0 and shown == created and (shown["images"], shown["faces"]) == (0, 0)
    code, listed, _ = act(settings, "ivan", "collections", "--json")
    assert code == 0 and listed["collections"] == [created, plain]
    code, table, _ = cli(settings, "collections", **credentials("april"))
    assert code == 0 and "news" in table and "plain" in table

    assert [(e["actor"], e["subject"], e["payload"]) for e in collection_entries(sessions)] == [
        (ADMIN, "collection:news", news),
        (ADMIN, "collection:plain", plain["policy"]),
    ]


def test_policy_changes_are_ledgered_with_old_and_new_values(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    add_collection(settings, "news")
    change = (
        *("collection", "set", "news", "--approval-required", "--threshold", "0.95"),
        *("--search-roles", "investigator,approver", "--result-limit", "20", "--json"),
    )
    code, answer, _ = act(settings, ADMIN, *change)
    assert code == 0, answer
    expected = {
        "approval_required": {"old": False, "new": True},
        "threshold": {"old": None, "new": 0.95},
        "search_roles": {"old": ["investigator"], "new": ["approver", "investigator"]},
    }
    assert answer["changes"] == expected  # the limit was given but did not change
    [entry] = entries(sessions, "collection.policy")
    assert (entry["actor"], entry["subject"], entry["payload"]) == (
        ADMIN,
        "collection:news",
        expected,
    )

    code, again, _ = act(settings, ADMIN, *change)
    assert code == 0 and again["changes"] == {}
    assert len(entries(sessions, "collection.policy")) == 1  # no change, no entry

    code, _, _ = act(settings, ADMIN, "collection", "set", "news", "--no-approval-required")
    assert code == 0
    assert entries(sessions, "collection.policy")[-1]["payload"] == {
        "approval_required": {"old": True, "new": False}
    }
    assert policy(settings, "news") == {
        **DEFAULTS,
        "legal_basis": "test fixture",
        "threshold": 0.95,
        "search_roles": ["approver", "investigator"],
    }
    code, report, _ = act(settings, ADMIN, "ledger", "verify", "--json")
    assert code == 0 and report["ok"]


@pytest.mark.parametrize("who", list(PEOPLE))
def test_only_admins_create_or_change_collections(
    settings: Settings, sessions: sessionmaker[Session], who: str
) -> None:
    add_collection(settings, "guarded", approval_required=True, search_roles=["investigator"])
    before, recorded = policy(settings, "guarded"), collection_entries(sessions)
    attempts = [
        ("collection", "create", "mine", "--legal-basis", "I say so"),
        ("collection", "set", "guarded", "--no-approval-required"),
        ("collection", "set", "guarded", "--search-roles", PEOPLE[who][0]),
        ("collection", "set", "guarded", "--threshold", "-1", "--result-limit", "1000"),
    ]
    for attempt in attempts:
        code, answer, _ = act(settings, who, *attempt, "--json")
        assert code == EXIT_AUTH and answer["error"] == "permission_denied", attempt
        assert "needs the role admin" in answer["message"]
    assert policy(settings, "guarded") == before
    code, _, _ = act(settings, ADMIN, "collection", "show", "mine", "--json")
    assert code == EXIT_NOT_FOUND
    assert collection_entries(sessions) == recorded


def test_strangers_are_refused_even_the_listing(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    add_collection(settings, "news")
    for args in [("collections",), ("collection", "show", "news")]:
        code, _, stderr = cli(settings, *args)
        assert code == EXIT_AUTH and "FACELEDGER_USER" in stderr
        code, _, stderr = cli(
            settings, *args, FACELEDGER_USER=ADMIN, FACELEDGER_PASSWORD="guess-12345"
        )
        assert code == EXIT_AUTH and "wrong user name or password" in stderr


INVALID = [
    (("--legal-basis", "   "), "legal_basis is required"),
    (("--threshold", "1.5"), "threshold is a cosine similarity, from -1 to 1"),
    (("--threshold", "-1.01"), "threshold is a cosine similarity, from -1 to 1"),
    (("--result-limit", "0"), "result_limit must be a whole number from 1 to 1000"),
    (("--result-limit", "1001"), "result_limit must be a whole number from 1 to 1000"),
    (("--retention-days", "0"), "retention_days must be a whole number of days >= 1"),
    (("--search-roles", "investigator,superuser"), "unknown role 'superuser'"),
    (("--search-roles", " , "), "search_roles needs at least one role"),
]


@pytest.mark.parametrize(("values", "message"), INVALID)
def test_invalid_values_are_refused_with_a_clear_message_and_change_nothing(
    settings: Settings, sessions: sessionmaker[Session], values: tuple[str, ...], message: str
) -> None:
    add_collection(settings, "news")
    before, recorded = policy(settings, "news"), collection_entries(sessions)
    create = ("collection", "create", "other", "--legal-basis", "consent", *values, "--json")
    for attempt in [create, ("collection", "set", "news", *values, "--json")]:
        code, answer, _ = act(settings, ADMIN, *attempt)
        assert code == EXIT_USAGE and answer["error"] == "invalid", attempt
        assert message in answer["message"]
    assert policy(settings, "news") == before
    assert collection_entries(sessions) == recorded
    code, _, _ = act(settings, ADMIN, "collection", "show", "other", "--json")
    assert code == EXIT_NOT_FOUND


def test_the_limits_themselves_are_accepted(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    add_collection(settings, "news")
    for values in [("--threshold", "-1", "--result-limit", "1"), ("--threshold", "1")]:
        code, _, _ = act(settings, ADMIN, "collection", "set", "news", *values)
        assert code == 0
    code, _, _ = act(settings, ADMIN, "collection", "set", "news", "--result-limit", "1000")
    assert code == 0
    assert (policy(settings, "news")["threshold"], policy(settings, "news")["result_limit"]) == (
        1.0,
        1000,
    )


def test_names_are_unique_and_plain(settings: Settings, sessions: sessionmaker[Session]) -> None:
    add_collection(settings, "news", result_limit=5)
    code, answer, _ = act(
        settings, ADMIN, "collection", "create", "news", "--legal-basis", "again", "--json"
    )
    assert code == EXIT_REFUSED and answer["message"] == "collection 'news' already exists"
    assert policy(settings, "news")["result_limit"] == 5
    code, answer, _ = act(
        settings, ADMIN, "collection", "create", "two words", "--legal-basis", "x", "--json"
    )
    assert code == EXIT_USAGE and "invalid collection name 'two words'" in answer["message"]
    assert len(entries(sessions, "collection.created")) == 1
    code, answer, _ = act(
        settings, ADMIN, "collection", "set", "nope", "--result-limit", "5", "--json"
    )
    assert code == EXIT_NOT_FOUND and answer["message"] == "no collection named 'nope'"


def test_the_service_checks_what_the_cli_cannot_send(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    add_collection(settings, "news")
    with sessions() as session:
        admin = users.get_user(session, ADMIN)
        wrong: list[tuple[dict[str, Any], str]] = [
            ({"approval_required": "yes"}, "approval_required must be true or false"),
            ({"result_limit": True}, "result_limit must be a whole number"),
            ({"threshold": float("nan")}, "threshold is a cosine similarity"),
            ({"search_roles": "investigator"}, "search_roles must be a list"),
            ({"created_at": None}, "unknown policy field(s): created_at"),
        ]
        for change, message in wrong:
            with pytest.raises(InvalidPolicy) as refused:
                update_policy(session, admin, "news", **change)
            assert message in str(refused.value)
        with pytest.raises(InvalidPolicy, match="legal_basis must be text"):
            create_collection(session, admin, "other", legal_basis=42)  # type: ignore[arg-type]
        with pytest.raises(UnknownCollection):
            update_policy(session, admin, "nope", result_limit=5)
        session.rollback()
    assert policy(settings, "news") == {**DEFAULTS, "legal_basis": "test fixture"}
    assert len(collection_entries(sessions)) == 1


# --- ingestion --------------------------------------------------------------------------


def stored_images(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(SourceImage)) or 0)


def blank_folder(tmp_path: Path) -> Path:
    """A folder an ingest would store an image from (a faceless image is stored too)."""
    folder = tmp_path / "blank"
    folder.mkdir()
    Image.new("RGB", (200, 200), "white").save(folder / "blank.png")
    return folder


def test_ingest_needs_an_admin(
    settings: Settings, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    add_collection(settings, "news")
    folder = blank_folder(tmp_path)
    for who in PEOPLE:
        code, answer, _ = act(settings, who, "ingest", str(folder), "-c", "news", "--json")
        assert code == EXIT_AUTH and answer["error"] == "permission_denied", who
    code, _, stderr = cli(settings, "ingest", str(folder), "-c", "news")
    assert code == EXIT_AUTH and "FACELEDGER_USER" in stderr
    assert [e for e in entries(sessions) if e["action"].startswith("ingest.")] == []
    assert stored_images(sessions) == 0


def test_ingest_into_a_missing_collection_is_refused(
    settings: Settings, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    folder = blank_folder(tmp_path)
    code, answer, _ = act(settings, ADMIN, "ingest", str(folder), "-c", "nowhere", "--json")
    assert code == EXIT_NOT_FOUND and answer["error"] == "not_found"
    assert "no collection named 'nowhere'" in answer["message"]
    assert "faceledger collection create nowhere" in answer["message"]
    code, listed, _ = act(settings, ADMIN, "collections", "--json")
    assert listed["collections"] == []  # not created behind the admin's back
    assert [e for e in entries(sessions) if e["action"].startswith("ingest.")] == []
    assert stored_images(sessions) == 0


def test_an_ingest_is_ledgered_with_the_counts_it_reports(
    settings: Settings, sessions: sessionmaker[Session], faces_dev: Path, tmp_path: Path
) -> None:
    add_collection(settings, "news")
    folder = blank_folder(tmp_path)
    first, second = photos(faces_dev, "Colin_Powell")[:2]
    for photo in (first, second):
        (folder / photo.name).symlink_to(photo)
    shutil.copy(first, folder / "copy.jpg")
    (folder / "notes.jpg").write_text("not an image")

    args = ("ingest", str(folder), "-c", "news", "--workers", "1", "--json")
    code, summary, _ = act(settings, ADMIN, *args)
    assert code == 0, summary
    assert summary["faces_indexed"] >= 2
    assert summary["skipped"] == {"duplicate": 1, "no_face": 1}
    assert [e["reason"] for e in summary["errors"]] == ["not_an_image"]

    started, finished = [e for e in entries(sessions) if e["action"].startswith("ingest.")]
    assert started == {
        "actor": ADMIN,
        "action": "ingest.started",
        "subject": "collection:news",
        "payload": {"collection": "news", "sources": [str(folder)], "files": 5, "archives": 0},
    }
    assert (finished["actor"], finished["action"], finished["subject"]) == (
        ADMIN,
        "ingest.finished",
        "collection:news",
    )
    counts = ("collection", "images", "images_with_faces", "faces_indexed", "skipped", "seconds")
    assert finished["payload"] == {
        **{key: summary[key] for key in counts},
        "errors": len(summary["errors"]),
    }

    code, shown, _ = act(settings, "ivan", "collection", "show", "news", "--json")
    assert code == 0 and shown["faces"] == summary["faces_indexed"]
    assert shown["images"] == stored_images(sessions) == 3  # two photos and the blank one
    code, report, _ = act(settings, "audrey", "ledger", "verify", "--json")
    assert code == 0 and report["ok"]
