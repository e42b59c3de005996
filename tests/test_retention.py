"""Retention on real data: old probe photos and old collection images go, and the ledger says so."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from faceledger.auth import users
from faceledger.auth.clock import as_utc
from faceledger.config import Settings
from faceledger.errors import EXIT_AUTH, PermissionDenied
from faceledger.search import probes
from faceledger.services.retention import RetentionReport, run_retention
from faceledger.store.models import SearchRequest, SearchResult, SourceImage
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
from tests.test_optouts import (
    PERSON,
    index_on_disk,
    ingest,
    stored_faces,
    with_names,
    with_users,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def workspace(settings: Settings) -> Workspace:
    return with_users(settings)


def add_request(workspace: Workspace, probe: Path, created_at: datetime, **fields: object) -> int:
    """A search request by ivan whose probe photo is stored, made `created_at`."""
    data = probe.read_bytes()
    with workspace.sessions() as session:
        row = SearchRequest(
            requester_id=users.get_user(session, "ivan").id,
            status="done",
            purpose="investigation",
            case_ref="CASE-1",
            collections=["news"],
            probe_hash=probes.probe_hash(data),
            probe_embedding=bytes(512),
            created_at=created_at,
            **fields,
        )
        session.add(row)
        session.flush()
        row.probe_file = probes.store(workspace.settings, row.id, data)
        session.commit()
        return row.id


def retention(workspace: Workspace, now: datetime, actor: str = "alice") -> RetentionReport:
    with workspace.sessions() as session:
        report = run_retention(workspace, session, users.get_user(session, actor), now)
        session.commit()
    report.apply_to_indexes()
    return report


def indexed_at(workspace: Workspace, collection_id: int, files: list[Path], when: datetime) -> None:
    """Backdate when these files were indexed into the collection."""
    with workspace.sessions() as session:
        session.execute(
            update(SourceImage)
            .where(
                SourceImage.collection_id == collection_id,
                SourceImage.image_url.in_([f.resolve().as_uri() for f in files]),
            )
            .values(indexed_at=when)
        )
        session.commit()


def probe_state(workspace: Workspace, request_id: int) -> tuple[bool, SearchRequest]:
    """Whether the probe file is on disk, and the request row as stored."""
    with workspace.sessions() as session:
        row = session.get_one(SearchRequest, request_id)
    name = f"request-{request_id}.probe"
    return probes.path_of(workspace.settings, name).is_file(), row


def test_probe_photos_go_after_the_retention_period_and_their_hash_stays(
    workspace: Workspace, faces_dev: Path
) -> None:
    photo = photos(faces_dev, PERSON)[0]
    period = timedelta(days=workspace.settings.probe_retention_days)
    old = add_request(workspace, photo, NOW - period - timedelta(seconds=1))
    recent = add_request(workspace, photo, NOW - period + timedelta(minutes=1))
    gone = add_request(workspace, photo, NOW - 2 * period)
    probes.delete(workspace.settings, f"request-{gone}.probe")  # as if a crash came first

    first = retention(workspace, NOW)

    assert first.probes_deleted == [old, gone]
    on_disk, row = probe_state(workspace, old)
    assert not on_disk and row.probe_file is None and row.probe_embedding is None
    assert row.probe_deleted_at is not None and as_utc(row.probe_deleted_at) == NOW
    assert row.probe_hash == probes.probe_hash(photo.read_bytes())
    on_disk, row = probe_state(workspace, recent)
    assert on_disk and row.probe_file and row.probe_embedding and row.probe_deleted_at is None

    assert retention(workspace, NOW + timedelta(minutes=2)).probes_deleted == [recent]
    assert not probe_state(workspace, recent)[0]
    assert retention(workspace, NOW + period).probes_deleted == []
    runs = entries(workspace.sessions, "retention.run")
    assert [run["payload"]["probes_deleted"] for run in runs] == [[old, gone], [recent], []]
    assert {run["actor"] for run in runs} == {"alice"}


def test_collection_images_past_retention_go_with_their_faces(
    workspace: Workspace, faces_dev: Path
) -> None:
    person = photos(faces_dev, PERSON)
    short = add_collection(workspace.settings, "short", admin="alice", retention_days=7)
    kept = add_collection(workspace.settings, "kept", admin="alice")
    ingest(workspace, "short", person[:4])
    ingest(workspace, "kept", person[:2])
    before = stored_faces(workspace, short)
    expired = with_names(before, person[:2])
    indexed_at(workspace, short, person[:2], NOW - timedelta(days=7, seconds=1))
    indexed_at(workspace, short, person[2:4], NOW - timedelta(days=6, hours=23))
    indexed_at(workspace, kept, person[:2], NOW - timedelta(days=4000))
    kept_faces = stored_faces(workspace, kept)

    report = retention(workspace, NOW)

    after = stored_faces(workspace, short)
    assert expired and set(after) == set(before) - expired
    assert index_on_disk(workspace.settings, short) == set(after)
    with workspace.sessions() as session:
        left = session.scalars(
            select(SourceImage.image_url).where(SourceImage.collection_id == short)
        ).all()
    assert sorted(left) == sorted(p.resolve().as_uri() for p in person[2:4])
    assert stored_faces(workspace, kept).keys() == kept_faces.keys()
    expected = {"short": {"images": 2, "faces": len(expired)}}
    assert report.as_dict()["collections"] == expected
    [run] = entries(workspace.sessions, "retention.run")
    assert run["payload"]["collections"] == expected
    assert retention(workspace, NOW).as_dict()["collections"] == {
        "short": {"images": 0, "faces": 0}
    }


def test_overdue_external_authorisations_are_lapsed(workspace: Workspace, faces_dev: Path) -> None:
    photo = photos(faces_dev, PERSON)[0]
    overdue = add_request(
        workspace,
        photo,
        NOW - timedelta(days=3),
        authorisation_status="pending",
        authorisation_due=NOW - timedelta(hours=1),
    )
    in_time = add_request(
        workspace,
        photo,
        NOW - timedelta(hours=2),
        authorisation_status="pending",
        authorisation_due=NOW + timedelta(hours=46),
    )
    with workspace.sessions() as session:
        for request_id in (overdue, in_time):
            session.add(
                SearchResult(
                    request_id=request_id,
                    rank=1,
                    face_id=1,
                    score=0.95,
                    collection="news",
                    image_url="https://news.example/a.jpg",
                )
            )
        session.commit()

    report = retention(workspace, NOW)

    assert report.lapsed == [overdue]
    with workspace.sessions() as session:
        results = {r.request_id: r for r in session.scalars(select(SearchResult)).all()}
        assert results[overdue].purged_at is not None and results[overdue].image_url is None
        assert results[in_time].purged_at is None
    [run] = entries(workspace.sessions, "retention.run")
    assert run["payload"]["lapsed"] == [overdue]
    assert [e["subject"] for e in entries(workspace.sessions, "search.purged")] == [
        f"search:{overdue}"
    ]


def test_only_admins_run_retention_and_the_ledger_verifies(
    workspace: Workspace, faces_dev: Path
) -> None:
    settings = workspace.settings
    photo = photos(faces_dev, PERSON)[0]
    old = add_request(
        workspace, photo, datetime.now(UTC) - timedelta(days=settings.probe_retention_days + 1)
    )
    with workspace.sessions() as session:
        for name in ("ivan", "audrey"):
            with pytest.raises(PermissionDenied):
                run_retention(workspace, session, users.get_user(session, name))
    for name, password in (("ivan", INV_PW), ("audrey", AUD_PW)):
        code, _, _ = cli(
            settings, "retention", "run", FACELEDGER_USER=name, FACELEDGER_PASSWORD=password
        )
        assert code == EXIT_AUTH
    assert probe_state(workspace, old)[0]
    assert entries(workspace.sessions, "retention.run") == []

    admin = {"FACELEDGER_USER": "alice", "FACELEDGER_PASSWORD": ADMIN_PW}
    code, stdout, _ = cli(settings, "retention", "run", "--json", **admin)
    assert code == 0 and json.loads(stdout)["probes_deleted"] == [old]
    assert not probe_state(workspace, old)[0]
    code, _, _ = cli(settings, "ledger", "verify", **admin)
    assert code == 0
