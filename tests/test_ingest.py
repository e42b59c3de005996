"""Ingestion of folders and web archives on real faces, hostile files included."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from sqlalchemy import func, select

from faceledger.config import Settings
from faceledger.faces.pipeline import FacePipeline
from faceledger.ingest.files import expand, iter_items
from faceledger.ingest.job import IngestJob, IngestSummary
from faceledger.search.engine import SearchEngine, Target
from faceledger.store import repo
from faceledger.store.models import Face, SourceImage
from faceledger.workspace import Workspace
from tests.accounts import add_collection
from tests.faces import photos
from tests.hostile import write_hostile_files
from tests.warc_fixtures import write_warc


def ingest(settings: Settings, *paths: Path, collection: str = "c") -> IngestSummary:
    images, archives = expand(list(paths))
    workspace = Workspace(settings)
    with workspace.sessions() as session:
        exists = repo.get_collection(session, collection) is not None
    if not exists:
        add_collection(settings, collection)
    job = IngestJob(workspace, collection, workers=1)
    return job.run(iter_items(images, archives, 50 * 2**20))


def test_hostile_files_get_clear_errors_and_the_rest_is_indexed(
    settings: Settings, faces_dev: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "mixed"
    (folder / "nested").mkdir(parents=True)
    good = photos(faces_dev, "Colin_Powell")[:3]
    for photo in good[:2]:
        shutil.copy(photo, folder / photo.name)
    shutil.copy(good[2], folder / "nested" / good[2].name)
    (folder / "readme.txt").write_text("ignored: not an image suffix")
    expected = write_hostile_files(folder)

    summary = ingest(settings, folder)

    reasons = {Path(e["source"]).name: e["reason"] for e in summary.errors}
    assert reasons == expected
    assert all(e["message"] for e in summary.errors)
    assert summary.images_with_faces == 3 and summary.faces_indexed >= 3


def test_rerun_and_copies_are_not_indexed_twice(
    settings: Settings, faces_dev: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for photo in photos(faces_dev, "Serena_Williams")[:3]:
        shutil.copy(photo, folder / photo.name)
    first = ingest(settings, folder)
    shutil.copy(folder / photos(faces_dev, "Serena_Williams")[0].name, folder / "copy.jpg")
    second = ingest(settings, folder)
    assert second.faces_indexed == 0
    assert second.skipped == {"already_indexed": 3, "duplicate": 1}
    workspace = Workspace(settings)
    with workspace.sessions() as session:
        faces = session.scalar(select(func.count()).select_from(Face))
        images = session.scalar(select(func.count()).select_from(SourceImage))
    assert faces == first.faces_indexed and images == 3
    assert len(workspace.index(1)) == faces


def test_minor_faces_are_counted_and_not_stored(
    settings: Settings, shared_data: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "kids"
    folder.mkdir()
    for child in sorted((shared_data / "ages").glob("[3-8]_*.jpg"))[:4]:
        shutil.copy(child, folder / child.name)
    summary = ingest(settings, folder)
    assert summary.faces_indexed == 0
    assert summary.skipped["minor_face"] + summary.skipped["no_face"] == 4
    assert summary.skipped["minor_face"] >= 2
    with Workspace(settings).sessions() as session:
        ages = session.scalars(select(Face.estimated_age)).all()
    assert ages == []


def test_warc_pages_are_linked_and_searchable(
    settings: Settings, faces_dev: Path, tmp_path: Path
) -> None:
    jolie = photos(faces_dev, "Angelina_Jolie")
    powell = photos(faces_dev, "Colin_Powell")
    pages = [
        (
            "https://news.example/2004/premiere.html",
            "<html><head><title>Premiere night</title></head><body>"
            '<img src="/img/a.jpg" alt="at the premiere"></body></html>',
        ),
        (
            "https://news.example/2004/briefing.html",
            "<html><head><title>Briefing</title></head><body>"
            '<picture><source srcset="/img/b-small.jpg 320w, /img/b.jpg 800w"></picture></body>',
        ),
    ]
    images = [
        ("https://news.example/img/a.jpg", jolie[1].read_bytes(), "image/jpeg"),
        ("https://news.example/img/b.jpg", powell[1].read_bytes(), "image/jpeg"),
    ]
    archive = write_warc(tmp_path / "crawl.warc.gz", pages, images, images_first=True)

    summary = ingest(settings, archive.path, collection="web")
    assert summary.faces_indexed == 2 and summary.errors == []

    workspace = Workspace(settings)
    engine = SearchEngine(workspace, FacePipeline(settings))
    probe = engine.probe_faces(jolie[0].read_bytes())[0]
    with workspace.sessions() as session:
        web = repo.get_collection(session, "web")
        assert web is not None
        target = Target(web.id, "web", 10, settings.match_threshold)
        (match,) = engine.search(session, [target], probe.embedding)
    assert match.image_url == "https://news.example/img/a.jpg"
    assert match.page_url == "https://news.example/2004/premiere.html"
    assert match.page_title == "Premiere night"
    assert match.warc_digest == archive.payload_digests["https://news.example/img/a.jpg"]
    assert match.captured_at is not None
    with workspace.sessions() as session:
        record_ids = session.scalars(select(SourceImage.warc_record_id)).all()
    assert sorted(record_ids) == sorted(archive.record_ids[url] for url, _, _ in images)
    assert np.isfinite(match.score)
