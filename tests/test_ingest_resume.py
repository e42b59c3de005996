"""Kill an ingest with SIGKILL part-way, re-run it, and find every face exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, func, select

from faceledger.config import Settings, load_settings
from faceledger.index.local import LocalIndex
from faceledger.store.models import Face, LedgerEntry, SourceImage
from tests.accounts import credentials, ready_to_ingest
from tests.faces import people_with


def cli(settings: Settings, *args: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "FACELEDGER_DATA_DIR": str(settings.data_dir),
        "FACELEDGER_MODEL_DIR": str(settings.model_cache_dir),
        **credentials(),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "faceledger.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def face_count(settings: Settings) -> int:
    engine = create_engine(settings.database)
    try:
        with engine.connect() as connection:
            return int(connection.scalar(select(func.count()).select_from(Face)) or 0)
    except Exception:  # the schema may not exist yet while the process starts
        return 0
    finally:
        engine.dispose()


def stored_faces(settings: Settings) -> tuple[list[tuple[str, int, int]], list[int]]:
    engine = create_engine(settings.database)
    with engine.connect() as connection:
        rows = connection.execute(
            select(SourceImage.image_url, Face.left, Face.top, Face.id).join(
                Face, Face.image_id == SourceImage.id
            )
        ).all()
    engine.dispose()
    return sorted((url, left, top) for url, left, top, _ in rows), [r[3] for r in rows]


def ingest_actions(settings: Settings) -> list[str]:
    engine = create_engine(settings.database)
    with engine.connect() as connection:
        actions = connection.scalars(
            select(LedgerEntry.action)
            .where(LedgerEntry.action.startswith("ingest."))
            .order_by(LedgerEntry.seq)
        ).all()
    engine.dispose()
    return list(actions)


def test_sigkill_then_rerun_indexes_every_face_once(
    faces_dev: Path, tmp_path: Path, model_dir: Path
) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for person in people_with(faces_dev, 4, 16):
        for photo in person[:4]:
            (folder / photo.name).symlink_to(photo)
    killed = load_settings(tmp_path / "killed", model_dir=model_dir)
    ready_to_ingest(killed, "c")
    args = ("ingest", str(folder), "--collection", "c", "--workers", "1", "--json")

    process = cli(killed, *args)
    deadline = time.monotonic() + 240
    while face_count(killed) < 8 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    assert process.poll() is None, "the ingest finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    partial = face_count(killed)
    assert 8 <= partial < 64

    rerun = cli(killed, *args)
    summary = json.loads(rerun.communicate(timeout=600)[0])
    assert rerun.returncode == 0
    assert summary["skipped"].get("already_indexed", 0) >= 1
    assert summary["skipped"].get("duplicate", 0) == 0
    # The killed job is on record: started, never finished.
    assert ingest_actions(killed) == ["ingest.started", "ingest.started", "ingest.finished"]

    clean = load_settings(tmp_path / "clean", model_dir=model_dir)
    ready_to_ingest(clean, "c")
    reference = cli(clean, *args)
    reference.communicate(timeout=600)

    faces_after_kill, ids = stored_faces(killed)
    faces_clean, _ = stored_faces(clean)
    assert faces_after_kill == faces_clean
    assert len(set(ids)) == len(ids)
    index_ids = LocalIndex(killed.index_dir / "collection-1.faiss").ids()
    assert len(np.unique(index_ids)) == len(index_ids)
    assert sorted(index_ids.tolist()) == sorted(ids)
