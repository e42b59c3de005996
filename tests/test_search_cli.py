"""The accountable search, driven through the real CLI as its people would, on real faces.

One world per module: an admin, an investigator, an approver and an auditor made with
`init` and `user add`, two collections made with `collection create` (one needs approval),
and LFW photos ingested by the admin.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from typer.testing import CliRunner

from faceledger.cli import app
from faceledger.errors import (
    EXIT_AUTH,
    EXIT_BAD_IMAGE,
    EXIT_CHOOSE_FACE,
    EXIT_NOT_FOUND,
    EXIT_REFUSED,
)
from tests.accounts import NO_CREDENTIALS
from tests.conftest import SHARED_DATA
from tests.faces import photos

PASSWORDS = {
    "admin": "admin-password-1",
    "ivan": "investigator-pw-1",
    "april": "approver-password-1",
    "audrey": "auditor-password-1",
}
WHY = ["--purpose", "investigation", "--case", "CASE-7", "--justification", "fraud suspect"]
runner = CliRunner()


@dataclass
class World:
    data_dir: Path
    model_dir: Path
    faces_dev: Path

    def run(self, who: str | None, *args: str, **env: str) -> tuple[int, dict[str, Any]]:
        people = {"FACELEDGER_USER": who, "FACELEDGER_PASSWORD": PASSWORDS[who]} if who else {}
        result = runner.invoke(
            app,
            ["--data-dir", str(self.data_dir), *args],
            env={
                **NO_CREDENTIALS,
                "FACELEDGER_MODEL_DIR": str(self.model_dir),
                "FACELEDGER_WORKERS": "1",
                **people,
                **env,
            },
        )
        text = result.stdout.strip()
        return result.exit_code, json.loads(text) if text.startswith("{") else {"text": text}

    def photo(self, person: str, number: int = 0) -> str:
        return str(photos(self.faces_dev, person)[number])

    def search(self, who: str, photo: str, *args: str) -> tuple[int, dict[str, Any]]:
        return self.run(who, "search", photo, *args, "--json")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> World:
    faces_dev = SHARED_DATA / "faces-dev"
    if not faces_dev.is_dir():
        pytest.skip(f"needs the shared face photos at {faces_dev}")
    folder = tmp_path_factory.mktemp("gallery")
    for person in ("Angelina_Jolie", "Colin_Powell", "George_W_Bush", "Serena_Williams"):
        for photo in photos(faces_dev, person)[1:4]:
            (folder / photo.name).symlink_to(photo)
    world = World(tmp_path_factory.mktemp("data"), model_dir, faces_dev)
    code, _ = world.run(None, "init", FACELEDGER_ADMIN_PASSWORD=PASSWORDS["admin"])
    assert code == 0
    for name, role in (("ivan", "investigator"), ("april", "approver"), ("audrey", "auditor")):
        code, _ = world.run(
            "admin", "user", "add", name, "--role", role, FACELEDGER_NEW_PASSWORD=PASSWORDS[name]
        )
        assert code == 0, name
    for name, extra in (("news", []), ("guarded", ["--approval-required"])):
        code, _ = world.run(
            "admin", "collection", "create", name, "--legal-basis", "test fixture", *extra
        )
        assert code == 0
        code, summary = world.run("admin", "ingest", str(folder), "-c", name, "--json")
        assert code == 0 and summary["faces_indexed"] >= 12, summary
    return world


def test_a_search_runs_at_once_where_no_approval_is_needed(world: World) -> None:
    code, answer = world.search("ivan", world.photo("Angelina_Jolie"), "-c", "news", *WHY)
    assert code == 0, answer
    assert answer["status"] == "done" and isinstance(answer["request_id"], int)
    results = answer["results"]
    assert len(results) >= 3
    assert all("Angelina_Jolie" in r["image_url"] for r in results[:3])
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)
    top = results[0]
    assert top["image_url"].startswith("file://") and top["page_url"] is None
    assert set(top) >= {"result_id", "face_id", "score", "image_url", "page_url", "box"}


@pytest.mark.parametrize(
    ("drop", "code"), [("--purpose", "missing_purpose"), ("--case", "missing_case")]
)
def test_searching_without_purpose_or_case_is_refused(world: World, drop: str, code: str) -> None:
    position = WHY.index(drop)
    args = WHY[:position] + WHY[position + 2 :]
    status, answer = world.search("ivan", world.photo("Colin_Powell"), "-c", "news", *args)
    assert status == EXIT_REFUSED
    assert answer["status"] == "refused" and answer["refusal_code"] == code
    assert answer["reason"] and "results" not in answer


def test_who_may_not_search_exits_4(world: World) -> None:
    for who in ("audrey", "april", "admin"):
        code, answer = world.search(who, world.photo("Colin_Powell"), "-c", "news", *WHY)
        assert code == EXIT_AUTH, who
        assert answer["refusal_code"] == "role_not_allowed"
    code, _ = world.search(None, world.photo("Colin_Powell"), "-c", "news", *WHY)  # type: ignore[arg-type]
    assert code == EXIT_AUTH


def test_approval_then_a_single_run(world: World) -> None:
    photo = world.photo("Serena_Williams")
    code, pending = world.search("ivan", photo, "-c", "guarded", *WHY)
    assert code == 0 and pending["status"] == "pending" and "results" not in pending
    rid = str(pending["request_id"])
    code, _ = world.run("ivan", "request", "approve", rid, "--reason", "mine", "--json")
    assert code == EXIT_AUTH
    code, _ = world.run("ivan", "request", "run", rid, "--json")
    assert code == EXIT_REFUSED
    code, inbox = world.run("april", "request", "list", "--status", "pending", "--json")
    assert int(rid) in [r["request_id"] for r in inbox["requests"]]
    code, _ = world.run("april", "request", "approve", rid, "--reason", "case 7 is serious")
    assert code == 0
    other = world.photo("Colin_Powell")
    code, answer = world.run("ivan", "request", "run", rid, "--photo", other, "--json")
    assert code == EXIT_REFUSED and answer["error"] == "approval_mismatch"
    code, done = world.run("ivan", "request", "run", rid, "--json")
    assert code == 0 and done["status"] == "done"
    assert "Serena_Williams" in done["results"][0]["image_url"]
    code, again = world.run("ivan", "request", "run", rid, "--json")
    assert code == EXIT_REFUSED and again["error"] == "approval_used"


def test_a_denied_search_exits_3(world: World) -> None:
    code, pending = world.search("ivan", world.photo("George_W_Bush"), "-c", "guarded", *WHY)
    rid = str(pending["request_id"])
    code, _ = world.run("april", "request", "deny", rid, "--reason", "not proportionate")
    assert code == 0
    code, answer = world.run("ivan", "request", "run", rid, "--json")
    assert code == EXIT_REFUSED and answer["error"] == "denied"


def test_confirm_by_two_people_then_export(world: World, tmp_path: Path) -> None:
    code, answer = world.search("ivan", world.photo("George_W_Bush"), "-c", "news", *WHY)
    rid, first = str(answer["request_id"]), str(answer["results"][0]["result_id"])
    code, _ = world.run("ivan", "request", "export", rid, str(tmp_path), "--json")
    assert code == EXIT_REFUSED
    code, mine = world.run("ivan", "review", first, "confirm", "--json")
    assert code == 0 and mine["confirmed"] is False
    code, twice = world.run("ivan", "review", first, "confirm", "--json")
    assert code == EXIT_REFUSED and twice["error"] == "already_reviewed"
    code, blind = world.run("april", "request", "show", rid, "--json")
    shown = next(r for r in blind["results"] if str(r["result_id"]) == first)
    assert "decisions" not in shown
    code, second = world.run("april", "review", first, "confirm", "--json")
    assert code == 0 and second["confirmed"] is True
    code, files = world.run("ivan", "request", "export", rid, str(tmp_path), "--json")
    assert code == 0
    sheet = json.loads(Path(files["files"][0]).read_text())
    assert [str(m["result_id"]) for m in sheet["matches"]] == [first]


def test_probe_problems_have_their_own_exits(world: World, tmp_path: Path) -> None:
    group = str(SHARED_DATA / "groups" / "deepface_couple.jpg")
    code, answer = world.search("ivan", group, "-c", "news", *WHY)
    assert code == EXIT_CHOOSE_FACE and len(answer["faces"]) >= 2
    code, chosen = world.search("ivan", group, "-c", "news", "--face", "2", *WHY)
    assert code == 0 and chosen["probe"]["face"] == 2
    child = next((SHARED_DATA / "ages").glob("6_*.jpg"))
    code, answer = world.search("ivan", str(child), "-c", "news", *WHY)
    assert code == EXIT_REFUSED and answer["refusal_code"] == "minor"
    blank = tmp_path / "blank.png"
    Image.new("RGB", (300, 300), "white").save(blank)
    code, answer = world.search("ivan", str(blank), "-c", "news", *WHY)
    assert code == EXIT_REFUSED and answer["refusal_code"] == "no_face"
    text = tmp_path / "notes.jpg"
    text.write_text("not an image at all")
    code, answer = world.search("ivan", str(text), "-c", "news", *WHY)
    assert code == EXIT_BAD_IMAGE and answer["refusal_code"] == "bad_image"
    code, answer = world.search("ivan", world.photo("Colin_Powell"), "-c", "nope", *WHY)
    assert code == EXIT_NOT_FOUND and answer["refusal_code"] == "unknown_collection"


def test_the_ledger_of_it_all_verifies_and_exports(world: World, tmp_path: Path) -> None:
    code, _ = world.run("audrey", "ledger", "verify")
    assert code == 0
    bundle = tmp_path / "bundle"
    code, _ = world.run("audrey", "ledger", "export", str(bundle))
    assert code == 0
    checked = subprocess.run(
        [sys.executable, str(bundle / "verify.py"), str(bundle)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
