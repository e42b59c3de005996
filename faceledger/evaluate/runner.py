"""Accuracy runs over labelled data: verification pairs, open-set identification, ages.

Each run embeds every image once (in worker processes) the way a search probe is embedded,
takes the face nearest the image centre (labelled data sets centre the labelled person)
and hands scores to `metrics`.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from faceledger.config import Settings
from faceledger.evaluate import metrics
from faceledger.faces.age import AgeEstimate
from faceledger.faces.decode import decode_image
from faceledger.faces.pipeline import AnalysedImage, FacePipeline
from faceledger.faces.types import FaceRecord
from faceledger.ingest.job import Analyser
from faceledger.policy.minors import DEFAULT_AGE_GATE, AgeGate

Progress = Callable[[int, int], None]


def _off_centre(box: Sequence[int], width: int, height: int) -> float:
    """Squared distance of a (left, top, width, height) box's centre from the image's."""
    left, top, box_width, box_height = box
    return (left + box_width / 2 - width / 2) ** 2 + (top + box_height / 2 - height / 2) ** 2


def central_face(image: AnalysedImage) -> FaceRecord | None:
    """The face whose box centre is nearest the image centre."""
    if not image.faces:
        return None
    return min(image.faces, key=lambda f: _off_centre(f.box.as_list(), image.width, image.height))


def analyse_files(
    settings: Settings, paths: list[Path], workers: int, progress: Progress | None = None
) -> dict[Path, FaceRecord | None]:
    """The central face of every file (None where no face was found or the file is bad)."""
    analyser = Analyser(settings, workers, probe=True)
    found: dict[Path, FaceRecord | None] = {}
    try:
        jobs = ((path, path.read_bytes()) for path in paths)
        for done, (path, (image, _, _)) in enumerate(analyser.run(jobs), 1):
            found[path] = central_face(image) if image is not None else None
            if progress:
                progress(done, len(paths))
    finally:
        analyser.close()
    return found


def verify(
    pairs_csv: Path, settings: Settings, workers: int, progress: Progress | None = None
) -> dict[str, Any]:
    """LFW-protocol verification on a `left,right,same` CSV (paths relative to the CSV)."""
    with pairs_csv.open(newline="") as handle:
        rows = [(r["left"], r["right"], int(r["same"])) for r in csv.DictReader(handle)]
    if not rows:
        raise ValueError(f"{pairs_csv} holds no pairs")
    root = pairs_csv.parent
    files = sorted({root / name for left, right, _ in rows for name in (left, right)})
    faces = analyse_files(settings, files, workers, progress)
    scores = np.empty(len(rows))
    no_face = 0
    for i, (left, right, _) in enumerate(rows):
        a, b = faces[root / left], faces[root / right]
        if a is None or b is None:
            no_face += 1
            scores[i] = -1.0  # a pair we cannot compare counts as "different"
        else:
            scores[i] = float(np.dot(a.embedding, b.embedding))
    same = np.array([s for _, _, s in rows], dtype=bool)
    folds = metrics.folds_from_layout(len(rows), same)
    accuracy, spread, thresholds = metrics.kfold_accuracy(scores, same, folds)
    tar, tar_threshold = metrics.tar_at_far(scores, same, 1e-3)
    return {
        "pairs": len(rows),
        "folds": len(thresholds),
        "accuracy": round(accuracy, 5),
        "accuracy_std": round(spread, 5),
        "fold_thresholds": [round(t, 4) for t in thresholds],
        "best_threshold": round(metrics.best_threshold(scores, same), 4),
        "default_threshold": settings.match_threshold,
        "accuracy_at_default_threshold": round(
            metrics.accuracy_at(scores, same, settings.match_threshold), 5
        ),
        "auc": round(metrics.roc_auc(scores, same), 5),
        "tar_at_far_1e-3": round(tar, 5),
        "threshold_at_far_1e-3": round(tar_threshold, 4),
        "no_face": no_face,
    }


def identify(
    folder: Path, settings: Settings, workers: int, progress: Progress | None = None
) -> dict[str, Any]:
    """Open-set identification over `Person/*.jpg` (protocol: `metrics.split_gallery`)."""
    files = sorted(p for p in folder.glob("*/*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    if not files:
        raise ValueError(f"{folder} has no Person/image files")
    faces = analyse_files(settings, files, workers, progress)
    kept = [(path, face) for path, face in faces.items() if face is not None]
    kept.sort()
    report = metrics.open_set_report(
        np.stack([face.embedding for _, face in kept]),
        [path.parent.name for path, _ in kept],
        [str(path) for path, _ in kept],
        settings.match_threshold,
        also_at=(0.92, 0.93, 0.94, 0.95),
    )
    return {**report, "threshold": settings.match_threshold, "no_face": len(files) - len(kept)}


def age_of(pipeline: FacePipeline, path: Path) -> AgeEstimate:
    """Age of the central face; a tight crop with no detection counts as one face."""
    decoded = decode_image(path.read_bytes(), pipeline.limits, max_long_side=pipeline.max_side)
    rgb = decoded.rgb
    height, width = rgb.shape[:2]
    detections = pipeline.detector.detect(rgb, retry=True)
    if detections:
        face = min(detections, key=lambda d: _off_centre(d.box, width, height))
    else:
        face = pipeline.detector.landmark(rgb, (0, 0, width - 1, height - 1), 0.0)
    return pipeline.ages.describe_many(rgb, [(face.landmarks, face.box)])[0]


def ages(
    folder: Path,
    settings: Settings,
    gate: AgeGate = DEFAULT_AGE_GATE,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Age error and minors-gate decisions on a folder with `labels.csv` (file,age,...).

    `estimated_age` is the expected age (what the error is measured on); `gate_age` is the
    lower bound the gate decides on (see `faceledger.faces.age`).
    """
    with (folder / "labels.csv").open(newline="") as handle:
        labels = [(r["file"], float(r["age"])) for r in csv.DictReader(handle)]
    pipeline = FacePipeline(settings)
    files = []
    errors = []
    for done, (name, true_age) in enumerate(labels, 1):
        estimate = age_of(pipeline, folder / name)
        errors.append(abs(estimate.expected - true_age))
        files.append(
            {
                "file": name,
                "age": true_age,
                "estimated_age": round(estimate.expected, 2),
                "gate_age": round(estimate.lower, 2),
                "decision": gate.decide(estimate.lower).value,
            }
        )
        if progress:
            progress(done, len(labels))
    return {
        "mae": round(float(np.mean(errors)), 3),
        "refuse_below": gate.refuse_below,
        "review_below": gate.review_below,
        "summary": _gate_summary(files),
        "files": files,
    }


def _gate_summary(files: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Decision counts per true-age band: under 13, 13-17, adults."""
    bands: dict[str, dict[str, int]] = {}
    for row in files:
        age = row["age"]
        band = "under_13" if age < 13 else "13_to_17" if age < 18 else "adult"
        counts = bands.setdefault(band, {"allow": 0, "review": 0, "refuse": 0})
        counts[row["decision"]] += 1
    return bands
