"""Opt-outs on real faces, attacked: purge, later ingests, re-ingests, bystanders, roles, CLI."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from faceledger.auth import users
from faceledger.config import Settings
from faceledger.errors import (
    EXIT_AUTH,
    EXIT_BAD_IMAGE,
    EXIT_CHOOSE_FACE,
    EXIT_NOT_FOUND,
    EXIT_REFUSED,
    PermissionDenied,
)
from faceledger.faces.pipeline import FacePipeline
from faceledger.index.local import LocalIndex
from faceledger.ingest.files import iter_items
from faceledger.ingest.job import IngestJob, IngestSummary
from faceledger.policy.optouts import (
    OptOutError,
    UnknownOptOut,
    active_templates,
    add_optout,
    first_match,
    list_optouts,
    matching,
    remove_optout,
)
from faceledger.store.models import Face, OptOut, SourceImage
from faceledger.store.purge import FacePurge
from faceledger.workspace import Workspace
from tests.accounts import (
    ADMIN_PW,
    AUD_PW,
    INV_PW,
    add_collection,
    cli,
    entries,
)
from tests.faces import photos

PERSON = "Colin_Powell"  # asks to opt out
OTHER = "Tony_Blair"  # a bystander who must not be touched
STRANGER = "George_W_Bush"


def with_users(settings: Settings) -> Workspace:
    """A workspace with an admin (alice), an investigator (ivan) and an auditor (audrey)."""
    workspace = Workspace(settings)
    with workspace.sessions() as session:
        admin = users.init_admin(session, "alice", ADMIN_PW)
        users.add_user(session, admin, "ivan", ["investigator"], INV_PW)
        users.add_user(session, admin, "audrey", ["auditor"], AUD_PW)
        session.commit()
    return workspace


def ingest(workspace: Workspace, collection: str, files: Iterable[Path]) -> IngestSummary:
    job = IngestJob(workspace, collection, workers=1)
    return job.run(iter_items(list(files), [], 50 * 2**20))


def stored_faces(workspace: Workspace, collection_id: int) -> dict[int, tuple[str, np.ndarray]]:
    """Face id -> (the image's file name, embedding), as the store holds them."""
    with workspace.sessions() as session:
        rows = session.execute(
            select(Face.id, SourceImage.image_url, Face.embedding)
            .join(SourceImage, SourceImage.id == Face.image_id)
            .where(Face.collection_id == collection_id)
        )
        return {
            face_id: (url.rsplit("/", 1)[-1], np.frombuffer(vector, dtype="<f4"))
            for face_id, url, vector in rows
        }


def index_on_disk(settings: Settings, collection_id: int) -> set[int]:
    """The ids in the saved index file, read without reconciling it with the store."""
    return set(LocalIndex(settings.index_dir / f"collection-{collection_id}.faiss").ids().tolist())


def embeddings(pipeline: FacePipeline, photo: Path) -> list[np.ndarray]:
    return [face.embedding for face in pipeline.analyse(photo.read_bytes(), probe=True).faces]


def template(pipeline: FacePipeline, photo: Path) -> np.ndarray:
    (only,) = embeddings(pipeline, photo)
    return only


def opt_out(workspace: Workspace, photo: Path, vector: np.ndarray) -> tuple[int, FacePurge]:
    """Alice registers an opt-out, commits, then updates the indexes (as the CLI does)."""
    with workspace.sessions() as session:
        alice = users.get_user(session, "alice")
        optout, purge = add_optout(
            workspace,
            session,
            alice,
            vector,
            "request 1",
            hashlib.sha256(photo.read_bytes()).hexdigest(),
        )
        session.commit()
    purge.apply_to_indexes()
    return optout.id, purge


def matches(faces: dict[int, tuple[str, np.ndarray]], vector: np.ndarray, t: float) -> set[int]:
    return {face_id for face_id, (_, v) in faces.items() if float(v @ vector) >= t}


def with_names(faces: dict[int, tuple[str, np.ndarray]], files: Iterable[Path]) -> set[int]:
    names = {f.name for f in files}
    return {face_id for face_id, (name, _) in faces.items() if name in names}


@pytest.fixture
def workspace(settings: Settings) -> Workspace:
    return with_users(settings)


def test_optout_purges_the_person_from_honouring_collections_only(
    workspace: Workspace, pipeline: FacePipeline, faces_dev: Path
) -> None:
    settings = workspace.settings
    person, other = photos(faces_dev, PERSON), photos(faces_dev, OTHER)
    news = add_collection(workspace.settings, "news", admin="alice", honour_optouts=True)
    archive = add_collection(workspace.settings, "archive", admin="alice", honour_optouts=False)
    for name in ("news", "archive"):
        ingest(workspace, name, person[1:4] + other[:3])
    before = {c: stored_faces(workspace, c) for c in (news, archive)}
    probe = template(pipeline, person[0])
    doomed = matches(before[news], probe, settings.optout_threshold)
    assert doomed and doomed <= with_names(before[news], person[1:4])
    assert len({before[news][f][0] for f in doomed}) == 3  # every photo of the person

    optout_id, purge = opt_out(workspace, person[0], probe)

    after = {c: stored_faces(workspace, c) for c in (news, archive)}
    assert purge.face_ids == {news: sorted(doomed)}
    assert set(after[news]) == set(before[news]) - doomed
    assert with_names(before[news], other[:3]) <= set(after[news])
    assert not matches(after[news], probe, settings.optout_threshold)
    assert set(after[archive]) == set(before[archive])
    # The index (as saved, not healed by reconciling) lost exactly the purged faces.
    assert index_on_disk(settings, news) == set(after[news])
    assert index_on_disk(settings, archive) == set(after[archive])
    ids, scores = Workspace(settings).index(archive).search(probe, 100)
    assert len(ids[scores >= settings.optout_threshold]) == len(
        matches(before[archive], probe, settings.optout_threshold)
    )
    # Only the template is kept, and the ledger says what went.
    with workspace.sessions() as session:
        row = session.get_one(OptOut, optout_id)
        assert len(row.embedding) == 128 * 4
        assert np.allclose(np.frombuffer(row.embedding, dtype="<f4"), probe, atol=1e-6)
        assert session.scalar(select(SourceImage).where(SourceImage.collection_id == news))
    [entry] = entries(workspace.sessions, "optout.added")
    assert entry["actor"] == "alice" and entry["subject"] == f"optout:{optout_id}"
    assert entry["payload"]["purged"] == {"news": sorted(doomed)}
    assert entry["payload"]["counts"] == {"news": len(doomed)}
    assert entry["payload"]["photo_hash"] == hashlib.sha256(person[0].read_bytes()).hexdigest()
    assert entry["payload"]["label"] == "request 1"


def test_later_ingests_skip_the_person_and_reingests_do_not_restore(
    workspace: Workspace, pipeline: FacePipeline, faces_dev: Path, tmp_path: Path
) -> None:
    threshold = workspace.settings.optout_threshold
    person, other = photos(faces_dev, PERSON), photos(faces_dev, OTHER)
    news = add_collection(workspace.settings, "news", admin="alice")
    add_collection(workspace.settings, "archive", admin="alice", honour_optouts=False)
    ingest(workspace, "news", person[1:3] + other[:2])
    probe = template(pipeline, person[0])
    opt_out(workspace, person[0], probe)
    kept = set(stored_faces(workspace, news))

    later = person[3:6] + other[2:4]
    expected = sum(float(v @ probe) >= threshold for p in later for v in embeddings(pipeline, p))
    summary = ingest(workspace, "news", later)
    assert expected >= 3 and summary.skipped["opted_out"] == expected
    faces = stored_faces(workspace, news)
    assert summary.faces_indexed == len(faces) - len(kept) >= 2
    assert with_names(faces, other[2:4]) and not matches(faces, probe, threshold)
    assert "opted_out" not in ingest(workspace, "archive", person[3:6]).skipped

    copy = tmp_path / "renamed.jpg"
    shutil.copy(person[1], copy)
    again = ingest(workspace, "news", [*person[1:3], copy])
    assert again.faces_indexed == 0
    assert again.skipped == {"already_indexed": 2, "duplicate": 1}
    assert set(stored_faces(workspace, news)) == set(faces)
    assert index_on_disk(workspace.settings, news) == set(faces)


def test_removing_an_optout_stops_filtering_but_purged_faces_stay_gone(
    workspace: Workspace, pipeline: FacePipeline, faces_dev: Path
) -> None:
    person = photos(faces_dev, PERSON)
    news = add_collection(workspace.settings, "news", admin="alice")
    ingest(workspace, "news", person[1:3])
    optout_id, _ = opt_out(workspace, person[0], template(pipeline, person[0]))
    with workspace.sessions() as session:
        alice = users.get_user(session, "alice")
        with pytest.raises(OptOutError, match="reason"):
            remove_optout(session, alice, optout_id, "  ")
        with pytest.raises(UnknownOptOut):
            remove_optout(session, alice, optout_id + 1, "typo")
        remove_optout(session, alice, optout_id, "consent withdrawn in writing")
        session.commit()
        with pytest.raises(OptOutError, match="already removed"):
            remove_optout(session, alice, optout_id, "twice")
        assert active_templates(session).shape == (0, 128)
    [entry] = entries(workspace.sessions, "optout.removed")
    assert entry["subject"] == f"optout:{optout_id}" and entry["actor"] == "alice"
    assert entry["payload"]["reason"] == "consent withdrawn in writing"

    assert ingest(workspace, "news", person[1:3]).skipped == {"already_indexed": 2}
    assert stored_faces(workspace, news) == {}
    summary = ingest(workspace, "news", person[3:5])
    assert "opted_out" not in summary.skipped and summary.faces_indexed >= 2


def test_matching_and_first_match_on_real_faces(
    workspace: Workspace, pipeline: FacePipeline, faces_dev: Path
) -> None:
    threshold = workspace.settings.optout_threshold
    person, other = photos(faces_dev, PERSON), photos(faces_dev, OTHER)
    faces = np.stack(
        [template(pipeline, p) for p in (person[1], other[1], photos(faces_dev, STRANGER)[0])]
    )
    with workspace.sessions() as session:
        assert not matching(active_templates(session), faces, threshold).any()
        assert first_match(session, faces[0], threshold) is None
    first, _ = opt_out(workspace, person[0], template(pipeline, person[0]))
    second, _ = opt_out(workspace, other[0], template(pipeline, other[0]))
    with workspace.sessions() as session:
        templates = active_templates(session)
        assert templates.shape == (2, 128) and templates.dtype == np.float32
        assert matching(templates, faces, threshold).tolist() == [True, True, False]
        assert matching(templates, faces[:0], threshold).shape == (0,)
        assert getattr(first_match(session, faces[0], threshold), "id", None) == first
        assert getattr(first_match(session, faces[1], threshold), "id", None) == second
        assert first_match(session, faces[2], threshold) is None
        remove_optout(session, users.get_user(session, "alice"), first, "lifted")
        session.commit()
        assert first_match(session, faces[0], threshold) is None
        assert matching(active_templates(session), faces, threshold).tolist() == [
            False,
            True,
            False,
        ]
        alice = users.get_user(session, "alice")
        for bad in (np.zeros(128), np.ones(64), np.full(128, np.nan)):
            with pytest.raises(OptOutError, match="128"):
                add_optout(workspace, session, alice, bad, None, "0" * 64)


def test_only_admins_manage_optouts_and_auditors_may_list_them(
    workspace: Workspace, pipeline: FacePipeline, faces_dev: Path
) -> None:
    person = photos(faces_dev, PERSON)
    news = add_collection(workspace.settings, "news", admin="alice")
    ingest(workspace, "news", person[1:3])
    before = stored_faces(workspace, news)
    probe = template(pipeline, person[0])
    with workspace.sessions() as session:
        for name in ("ivan", "audrey"):
            actor = users.get_user(session, name)
            with pytest.raises(PermissionDenied):
                add_optout(workspace, session, actor, probe, None, "0" * 64)
        session.rollback()
        assert session.scalar(select(OptOut)) is None
    assert stored_faces(workspace, news).keys() == before.keys()
    optout_id, _ = opt_out(workspace, person[0], probe)
    with workspace.sessions() as session:
        ivan, audrey = users.get_user(session, "ivan"), users.get_user(session, "audrey")
        for actor in (ivan, audrey):
            with pytest.raises(PermissionDenied):
                remove_optout(session, actor, optout_id, "not mine to lift")
        with pytest.raises(PermissionDenied):
            list_optouts(session, ivan)
        [listed] = list_optouts(session, audrey)
        assert listed.id == optout_id and listed.created_by == "alice"
        assert listed.removed_at is None


def run(
    settings: Settings, *args: str, user: str = "alice", password: str = ADMIN_PW
) -> tuple[int, dict]:
    """The CLI as `user`, with the test run's model cache; returns (exit status, JSON)."""
    code, stdout, _ = cli(
        settings,
        *args,
        "--json",
        FACELEDGER_USER=user,
        FACELEDGER_PASSWORD=password,
        FACELEDGER_MODEL_DIR=str(settings.model_cache_dir),
    )
    return code, json.loads(stdout) if stdout.strip() else {}


def test_cli_optout_commands(
    workspace: Workspace, faces_dev: Path, shared_data: Path, tmp_path: Path
) -> None:
    settings = workspace.settings
    person, other = photos(faces_dev, PERSON), photos(faces_dev, OTHER)
    news = add_collection(workspace.settings, "news", admin="alice")
    ingest(workspace, "news", person[1:3] + other[:2])
    faces = stored_faces(workspace, news)

    for name, password in (("ivan", INV_PW), ("audrey", AUD_PW)):
        code, answer = run(settings, "optout", "add", str(person[0]), user=name, password=password)
        assert code == EXIT_AUTH and answer["error"] == "permission_denied"
    code, _, stderr = cli(settings, "optout", "add", str(person[0]))
    assert code == EXIT_AUTH and "FACELEDGER_USER" in stderr
    assert stored_faces(workspace, news).keys() == faces.keys()

    text = tmp_path / "notes.jpg"
    text.write_text("not an image at all")
    assert run(settings, "optout", "add", str(text))[0] == EXIT_BAD_IMAGE
    from PIL import Image

    blank = tmp_path / "blank.png"
    Image.new("RGB", (300, 300), "white").save(blank)
    code, answer = run(settings, "optout", "add", str(blank))
    assert code == EXIT_REFUSED and answer["error"] == "no_face"
    couple = shared_data / "groups" / "deepface_couple.jpg"
    code, answer = run(settings, "optout", "add", str(couple))
    assert code == EXIT_CHOOSE_FACE and len(answer["faces"]) >= 2
    assert entries(workspace.sessions, "optout.added") == []

    code, added = run(settings, "optout", "add", str(person[0]), "--label", "DSAR-7")
    assert code == 0 and added["label"] == "DSAR-7"
    assert added["purged"] == {"news": len(with_names(faces, person[1:3]))}
    assert set(stored_faces(workspace, news)) == with_names(faces, other[:2])
    assert index_on_disk(settings, news) == with_names(faces, other[:2])
    code, chosen = run(settings, "optout", "add", str(couple), "--face", "2")
    assert code == 0 and chosen["id"] == added["id"] + 1

    code, listed = run(settings, "optout", "list", user="audrey", password=AUD_PW)
    assert code == 0 and [row["id"] for row in listed["optouts"]] == [added["id"], chosen["id"]]
    assert {"embedding", "template"}.isdisjoint(listed["optouts"][0])
    assert run(settings, "optout", "list", user="ivan", password=INV_PW)[0] == EXIT_AUTH

    reason = ("--reason", "withdrawn")
    code, _ = run(
        settings, "optout", "remove", str(added["id"]), *reason, user="ivan", password=INV_PW
    )
    assert code == EXIT_AUTH
    assert run(settings, "optout", "remove", str(added["id"]), *reason)[0] == 0
    assert run(settings, "optout", "remove", str(added["id"]), *reason)[0] == EXIT_REFUSED
    assert run(settings, "optout", "remove", "999", *reason)[0] == EXIT_NOT_FOUND
    code, listed = run(settings, "optout", "list")
    assert listed["optouts"][0]["removed_by"] == "alice"

    actions = [e["action"] for e in entries(workspace.sessions) if e["action"].startswith("optout")]
    assert actions == ["optout.added", "optout.added", "optout.removed"]
    code, verified = run(settings, "ledger", "verify")
    assert code == 0 and verified["ok"] and verified["entries"] == len(entries(workspace.sessions))
