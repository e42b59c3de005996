"""`faceledger ingest` and `faceledger search` through the real CLI on real faces."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from faceledger.cli import app
from faceledger.cli.app import EXIT_BAD_IMAGE, EXIT_CHOOSE_FACE, EXIT_REFUSED
from faceledger.config import Settings
from tests.accounts import credentials, ready_to_ingest
from tests.faces import photos

runner = CliRunner()


def invoke(settings: Settings, *args: str) -> tuple[int, dict]:
    result = runner.invoke(
        app,
        ["--data-dir", str(settings.data_dir), *args],
        env={"FACELEDGER_MODEL_DIR": str(settings.model_cache_dir), **credentials()},
    )
    return result.exit_code, json.loads(result.stdout) if result.stdout.strip() else {}


@pytest.fixture
def gallery(settings: Settings, faces_dev: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "gallery"
    folder.mkdir()
    for person in ("Angelina_Jolie", "Colin_Powell", "George_W_Bush", "Serena_Williams"):
        for photo in photos(faces_dev, person)[1:4]:
            (folder / photo.name).symlink_to(photo)
    ready_to_ingest(settings, "news")
    code, summary = invoke(settings, "ingest", str(folder), "-c", "news", "--json")
    assert code == 0, summary
    assert summary["images"] == 12 and summary["faces_indexed"] >= 12
    return folder


def test_search_finds_the_person_best_first(
    settings: Settings, gallery: Path, faces_dev: Path
) -> None:
    probe = photos(faces_dev, "Angelina_Jolie")[0]
    code, answer = invoke(settings, "search", str(probe), "-c", "news", "--json")
    assert code == 0
    results = answer["results"]
    assert len(results) >= 3
    assert all("Angelina_Jolie" in r["image_url"] for r in results[:3])
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)
    top = results[0]
    assert top["image_url"].startswith("file://") and top["page_url"] is None
    assert set(top) >= {"face_id", "score", "image_url", "page_url", "box", "captured_at"}
    assert len(top["box"]) == 4


def test_top_and_threshold_options(settings: Settings, gallery: Path, faces_dev: Path) -> None:
    probe = photos(faces_dev, "Colin_Powell")[0]
    _, one = invoke(settings, "search", str(probe), "-c", "news", "--top", "1", "--json")
    assert len(one["results"]) == 1
    _, everything = invoke(
        settings, "search", str(probe), "-c", "news", "--threshold", "-1", "--json"
    )
    assert len(everything["results"]) == 10
    _, strict = invoke(
        settings, "search", str(probe), "-c", "news", "--threshold", "0.999", "--json"
    )
    assert strict["results"] == []


def test_group_probe_requires_a_face_choice(
    settings: Settings, gallery: Path, shared_data: Path
) -> None:
    probe = shared_data / "groups" / "deepface_couple.jpg"
    code, answer = invoke(settings, "search", str(probe), "-c", "news", "--json")
    assert code == EXIT_CHOOSE_FACE
    assert answer["error"] == "choose_face" and len(answer["faces"]) >= 2
    code, chosen = invoke(settings, "search", str(probe), "-c", "news", "--face", "2", "--json")
    assert code == 0 and chosen["probe"]["face"] == 2


def test_child_probe_is_refused(settings: Settings, gallery: Path, shared_data: Path) -> None:
    child = next((shared_data / "ages").glob("6_*.jpg"))
    code, answer = invoke(settings, "search", str(child), "-c", "news", "--face", "1", "--json")
    assert code == EXIT_REFUSED
    assert answer["error"] in ("minor", "no_face")
    assert "results" not in answer


def test_probe_without_face_and_hostile_probe(
    settings: Settings, gallery: Path, tmp_path: Path
) -> None:
    from PIL import Image

    blank = tmp_path / "blank.png"
    Image.new("RGB", (300, 300), "white").save(blank)
    code, answer = invoke(settings, "search", str(blank), "-c", "news", "--json")
    assert code == EXIT_REFUSED and answer["error"] == "no_face"
    text = tmp_path / "notes.jpg"
    text.write_text("not an image at all")
    code, answer = invoke(settings, "search", str(text), "-c", "news", "--json")
    assert code == EXIT_BAD_IMAGE and answer["error"] == "bad_image"


def test_unknown_collection(settings: Settings, gallery: Path, faces_dev: Path) -> None:
    probe = photos(faces_dev, "Colin_Powell")[0]
    code, answer = invoke(settings, "search", str(probe), "-c", "nope", "--json")
    assert code != 0 and "nope" in answer["message"]
