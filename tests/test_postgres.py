"""The same store, index reconciliation, ingestion, search and ledger on a real PostgreSQL.

CI starts a throwaway server (.ci/postgres.sh) and sets FACELEDGER_TEST_POSTGRES; each test
gets a database of its own (`pg_settings` in conftest).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from faceledger.config import Settings
from faceledger.faces.pipeline import FacePipeline
from faceledger.ingest.files import expand, iter_items
from faceledger.ingest.job import IngestJob
from faceledger.ledger.log import append
from faceledger.ledger.verify import verify
from faceledger.search.engine import SearchEngine, Target
from faceledger.search.service import SearchService
from faceledger.store import repo
from faceledger.workspace import Workspace
from tests.accounts import add_collection, initialise, person
from tests.conftest import NO_POSTGRES, POSTGRES
from tests.faces import photos

pytestmark = pytest.mark.skipif(not POSTGRES, reason=NO_POSTGRES)


def test_migrations_and_ledger_on_postgres(pg_settings: Settings) -> None:
    workspace = Workspace(pg_settings)
    with workspace.sessions() as session:
        assert session.bind is not None and session.bind.dialect.name == "postgresql"
        for n in range(5):
            append(session, actor="tester", action="test.step", payload={"n": n, "ü": "ok"})
        session.commit()
        assert verify(session, None).ok


def test_ingest_and_search_on_postgres(
    pg_settings: Settings, faces_dev: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("Angelina_Jolie", "Colin_Powell"):
        for photo in photos(faces_dev, name)[1:3]:
            (folder / photo.name).symlink_to(photo)
    workspace = Workspace(pg_settings)
    add_collection(pg_settings, "pg")
    images, archives = expand([folder])
    summary = IngestJob(workspace, "pg").run(iter_items(images, archives, 2**25))
    assert summary.faces_indexed >= 4 and summary.errors == []
    again = IngestJob(workspace, "pg").run(iter_items(images, archives, 2**25))
    assert again.faces_indexed == 0 and again.skipped["already_indexed"] == 4

    engine = SearchEngine(workspace, FacePipeline(pg_settings))
    probe = engine.probe_faces(photos(faces_dev, "Colin_Powell")[0].read_bytes())[0]
    with workspace.sessions() as session:
        pg = repo.get_collection(session, "pg")
        assert pg is not None
        target = Target(pg.id, "pg", 5, pg_settings.match_threshold)
        matches = engine.search(session, [target], probe.embedding)
    assert [m.image_url.rsplit("/", 1)[-1][:12] for m in matches] == ["Colin_Powell"] * 2


def test_accountable_search_on_postgres(
    pg_settings: Settings, faces_dev: Path, tmp_path: Path
) -> None:
    """Request, approval, run, two confirmations and the ledger, on PostgreSQL."""
    initialise(pg_settings, "ivan", "april")
    add_collection(pg_settings, "pg", approval_required=True)
    gallery = [p for name in ("Colin_Powell", "Tony_Blair") for p in photos(faces_dev, name)[1:3]]
    workspace = Workspace(pg_settings)
    IngestJob(workspace, "pg").run(iter_items(gallery, [], 2**25))
    service = SearchService(workspace, FacePipeline(pg_settings))
    ivan, april = person(pg_settings, "ivan"), person(pg_settings, "april")
    pending = service.request(
        ivan,
        photos(faces_dev, "Colin_Powell")[0].read_bytes(),
        collections=["pg"],
        purpose="investigation",
        case_ref="PG-1",
        justification="postgres end to end",
    )
    assert pending.status == "pending"
    service.approve(april, pending.request_id, "fine")
    done = service.run(ivan, pending.request_id)
    assert done.results and "Colin_Powell" in done.results[0]["image_url"]
    first = done.results[0]["result_id"]
    service.review(ivan, first, "confirm")
    assert service.review(april, first, "confirm").confirmed
    written = service.export(ivan, pending.request_id, tmp_path / "evidence")
    assert len(written) == 2
    with workspace.sessions() as session:
        assert verify(session, None).ok
