"""`faceledger eval` on small real samples: the commands run end to end and report sanely."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from typer.testing import CliRunner

from faceledger.cli import app
from faceledger.config import Settings
from tests.faces import people_with

runner = CliRunner()


def run_json(settings: Settings, *args: str) -> dict:
    result = runner.invoke(
        app,
        ["--data-dir", str(settings.data_dir), "eval", *args, "--json"],
        env={"FACELEDGER_MODEL_DIR": str(settings.model_cache_dir)},
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_verify_on_a_slice_of_the_pairs_file(
    settings: Settings, faces_dev: Path, tmp_path: Path
) -> None:
    with (faces_dev / "pairs.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    sample = rows[:40] + rows[300:340]  # 40 same-person and 40 different-person pairs
    pairs = tmp_path / "pairs.csv"
    with pairs.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["left", "right", "same"])
        for row in sample:
            writer.writerow([faces_dev / row["left"], faces_dev / row["right"], row["same"]])
    report = run_json(settings, "verify", str(pairs), "--workers", "1")
    assert report["pairs"] == 80
    assert report["accuracy"] >= 0.9
    assert report["accuracy_at_default_threshold"] >= 0.9
    assert report["auc"] >= 0.95
    assert 0 <= report["tar_at_far_1e-3"] <= 1
    assert report["default_threshold"] == settings.match_threshold
    assert report["no_face"] <= 2


def test_identify_on_a_few_people(settings: Settings, faces_dev: Path, tmp_path: Path) -> None:
    folder = tmp_path / "people"
    enrolled = [person[:4] for person in people_with(faces_dev, 4, 8)]
    strangers = [p for p in people_with(faces_dev, 1, 40) if len(p) == 1][:4]
    for photos in enrolled + strangers:
        target = folder / photos[0].parent.name
        target.mkdir(parents=True)
        for photo in photos:
            (target / photo.name).symlink_to(photo)
    report = run_json(settings, "identify", str(folder), "--workers", "1")
    assert (report["n_gallery"], report["n_probes"], report["n_unenrolled"]) == (8, 24, 4)
    assert report["rank1"] >= 0.8
    assert report["rank5"] >= report["rank1"]
    assert 0 <= report["false_match_rate"] <= 0.5
    assert set(report["false_match_rate_at"]) == {"0.92", "0.93", "0.94", "0.95"}


def test_age_decisions_follow_the_gate(
    settings: Settings, shared_data: Path, tmp_path: Path
) -> None:
    with (shared_data / "ages" / "labels.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    picked = [r for r in rows if float(r["age"]) <= 7][:4] + [
        r for r in rows if float(r["age"]) >= 40
    ][:4]
    folder = tmp_path / "ages"
    folder.mkdir()
    with (folder / "labels.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in picked:
            writer.writerow(row)
            (folder / row["file"]).symlink_to(shared_data / "ages" / row["file"])
    report = run_json(settings, "age", str(folder))
    decisions = {row["file"]: row["decision"] for row in report["files"]}
    assert len(decisions) == 8
    assert all(decisions[r["file"]] != "allow" for r in picked[:4])
    assert sum(decisions[r["file"]] == "allow" for r in picked[4:]) >= 3
    assert report["mae"] < 15
