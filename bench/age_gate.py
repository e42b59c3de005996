"""Measure the age estimator and the minors gate on a labelled folder of face crops.

    .venv/bin/python bench/age_gate.py [--data ../shared/data/ages]

The folder holds images and a labels.csv (file,age,...). Faces are found with the project's
HOG detector on an upscaled copy (tight 200x200 crops are missed at their own size); where
none is found the whole crop is taken as the face box (calibration only).

Every face is read once from 10 chips (paddings 0.05-0.25, each also mirrored); the
variants below are subsets of those chips with different summaries, so their figures come
from the same run. For each variant it prints the MAE of the expected age and the gate
figures at the variant's own best allow cut-off B* (the lowest that lets no under-13 face
through and at most 1 in 5 of 13-17s), then the shipped variant at `DEFAULT_AGE_GATE`, with
how many minors sit within 1-2 years of being allowed, and the per-face cost of
`AgeEstimator.estimate`.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from faceledger.faces.age import AGE_WEIGHTS, AgeEstimator, extract_chips, summarise
from faceledger.faces.detect import FaceDetector
from faceledger.policy.minors import DEFAULT_AGE_GATE, AgeGate, Decision

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ages"
PADDINGS = (0.05, 0.1, 0.15, 0.2, 0.25)  # chip i is PADDINGS[i]; chip i + 5 is its mirror
MAX_TEEN_ALLOWED = 0.2

Score = Callable[[np.ndarray], float]


@dataclass(frozen=True)
class Variant:
    name: str
    chips: tuple[int, ...]
    score: Score
    shipped: bool = False


def expected(probabilities: np.ndarray) -> float:
    return summarise(probabilities).expected


def lower(probabilities: np.ndarray) -> float:
    return summarise(probabilities).lower


def quantile_10(probabilities: np.ndarray) -> float:
    """The age below which 10% of the averaged distribution lies (step interpolation)."""
    cumulative = np.cumsum(probabilities.mean(axis=0))
    return float(AGE_WEIGHTS[np.searchsorted(cumulative, 0.1 * cumulative[-1])])


def min_chip(probabilities: np.ndarray) -> float:
    """The youngest single-chip expected age."""
    return float((probabilities @ AGE_WEIGHTS).min())


TTA8 = (0, 1, 2, 3, 5, 6, 7, 8)
VARIANTS = [
    Variant("single chip p0.2, expected (package default)", (3,), expected),
    Variant("single chip p0.2, mean-1sd", (3,), lower),
    Variant("p0.2 + mirror, expected", (3, 8), expected),
    Variant("p0.15 + mirror, expected", (2, 7), expected),
    Variant("p0.15 + mirror, mean-1sd", (2, 7), lower),
    Variant("p0.1/0.2 + mirrors (4), expected", (1, 3, 6, 8), expected),
    Variant("p0.1/0.2 + mirrors (4), mean-1sd (shipped)", (1, 3, 6, 8), lower, shipped=True),
    Variant("p0.1-0.25 + mirrors (8), expected", (1, 2, 3, 4, 6, 7, 8, 9), expected),
    Variant("p0.1-0.25 + mirrors (8), mean-1sd", (1, 2, 3, 4, 6, 7, 8, 9), lower),
    Variant("p0.05-0.2 + mirrors (8), expected", TTA8, expected),
    Variant("p0.05-0.2 + mirrors (8), 10% quantile", TTA8, quantile_10),
    Variant("p0.05-0.2 + mirrors (8), min chip", TTA8, min_chip),
    Variant("p0.05-0.2 + mirrors (8), mean-1sd", TTA8, lower),
]


@dataclass(frozen=True)
class Face:
    file: str
    age: int
    image: np.ndarray
    landmarks: np.ndarray
    box: tuple[int, int, int, int]
    detected: bool


def load_faces(folder: Path) -> list[Face]:
    """Every labelled image with its best detection, or the whole crop where none is found."""
    detector = FaceDetector("hog", min_side=500, max_side=1024)
    faces = []
    with (folder / "labels.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            image = np.asarray(Image.open(folder / row["file"]).convert("RGB"))
            height, width = image.shape[:2]
            found = detector.detect(image)
            detection = (
                found[0] if found else detector.landmark(image, (0, 0, width - 1, height - 1), 0.0)
            )
            left, top, right, bottom = detection.rect
            box = (left, top, right - left + 1, bottom - top + 1)
            faces.append(
                Face(row["file"], int(row["age"]), image, detection.landmarks, box, bool(found))
            )
    return faces


def all_chip_probabilities(estimator: AgeEstimator, faces: list[Face]) -> np.ndarray:
    """(faces, 10, 81): every face's chips at all PADDINGS and their mirrors."""
    chips = np.concatenate([extract_chips(f.image, f.landmarks, f.box, PADDINGS) for f in faces])
    return estimator.probabilities(chips).reshape(len(faces), 2 * len(PADDINGS), -1)


def best_allow_cutoff(scores: np.ndarray, ages: np.ndarray) -> float:
    """The lowest allow cut-off that lets no under-13 through and at most 20% of 13-17s."""
    teens = np.sort(scores[(ages >= 13) & (ages < 18)])[::-1]
    kept = int(np.floor(MAX_TEEN_ALLOWED * len(teens)))
    highest_blocked = max(scores[ages < 13].max(), teens[kept] if kept < len(teens) else -1.0)
    return float(np.nextafter(highest_blocked, np.inf))


def gate_figures(scores: np.ndarray, ages: np.ndarray, gate: AgeGate) -> str:
    decisions = np.array([gate.decide(float(s)) for s in scores])
    child, teen, adult = ages < 13, (ages >= 13) & (ages < 18), ages >= 18
    return (
        f"under-13 allowed {int(np.sum(decisions[child] == Decision.ALLOW))}/{child.sum()}, "
        f"13-17 allowed {np.mean(decisions[teen] == Decision.ALLOW):.3f}, "
        f"adults to review {np.mean(decisions[adult] == Decision.REVIEW):.3f}, "
        f"adults refused {np.mean(decisions[adult] == Decision.REFUSE):.3f}"
    )


def margins(scores: np.ndarray, ages: np.ndarray, gate: AgeGate) -> str:
    """How many minors would be allowed, and adults refused, if estimates moved 1-2 years."""
    minors, adult = scores[ages < 18], scores[ages >= 18]
    allow, refuse = gate.review_below, gate.refuse_below
    near = [int(np.sum((minors < allow) & (minors >= allow - y))) for y in (1, 2)]
    near_child = int(np.sum((scores[ages < 13] >= allow - 2) & (scores[ages < 13] < allow)))
    near_refused = [int(np.sum((adult >= refuse) & (adult < refuse + y))) for y in (1, 2)]
    child_top = scores[ages < 13].max()
    return (
        f"minors within 1 / 2 years below the allow cut-off: {near[0]} / {near[1]} "
        f"(under-13: {near_child} within 2 years; highest under-13 score {child_top:.2f}); "
        f"adults within 1 / 2 years above the refuse cut-off: {near_refused[0]} / {near_refused[1]}"
    )


def time_estimator(estimator: AgeEstimator, faces: list[Face]) -> tuple[float, np.ndarray]:
    """Median ms per face of `estimate` (chips + one ONNX run), and the values it returned."""
    values, timings = [], []
    for face in faces:
        start = time.perf_counter()
        values.append(estimator.estimate(face.image, face.landmarks, face.box))
        timings.append((time.perf_counter() - start) * 1000)
    return statistics.median(timings), np.array(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    faces = load_faces(args.data)
    ages = np.array([f.age for f in faces])
    estimator = AgeEstimator()
    probabilities = all_chip_probabilities(estimator, faces)
    print(
        f"{len(faces)} faces ({np.sum(ages < 13)} under 13, {np.sum((ages >= 13) & (ages < 18))}"
        f" aged 13-17, {np.sum(ages >= 18)} adults); detector missed "
        f"{sum(not f.detected for f in faces)} (whole crop used)\n"
    )
    print(f"{'variant':48s} {'MAE':>5s} {'B*':>6s} {'adults<B*':>9s}  at B*")
    shipped_scores = np.zeros(len(faces))
    for variant in VARIANTS:
        chosen = probabilities[:, list(variant.chips)]
        mae = np.mean(np.abs(np.array([expected(p) for p in chosen]) - ages))
        scores = np.array([variant.score(p) for p in chosen])
        cutoff = best_allow_cutoff(scores, ages)
        figures = gate_figures(scores, ages, AgeGate(0.0, cutoff))
        reviewed = np.mean(scores[ages >= 18] < cutoff)
        print(f"{variant.name:48s} {mae:5.2f} {cutoff:6.2f} {reviewed:9.3f}  {figures}")
        if variant.shipped:
            shipped_scores = scores
    gate = DEFAULT_AGE_GATE
    print(
        f"\nshipped variant at DEFAULT_AGE_GATE (refuse < {gate.refuse_below}, "
        f"review < {gate.review_below}):"
    )
    print("  " + gate_figures(shipped_scores, ages, gate))
    print("  " + margins(shipped_scores, ages, gate))
    for low, high in ((0, 8), (9, 12), (13, 17), (18, 20), (21, 25), (26, 80)):
        band = (ages >= low) & (ages <= high)
        counts = {
            d: int(np.sum([gate.decide(float(s)) == d for s in shipped_scores[band]]))
            for d in Decision
        }
        print(
            f"  ages {low:2d}-{high:2d} ({band.sum():3d}): "
            + ", ".join(f"{d} {n}" for d, n in counts.items())
        )
    ms, returned = time_estimator(estimator, faces)
    drift = np.max(np.abs(returned - shipped_scores))
    print(
        f"\nAgeEstimator.estimate: {ms:.1f} ms per face (median, {estimator.chips_per_face} chips,"
        f" 1 thread); max difference from the shipped variant above: {drift:.2e}"
    )


if __name__ == "__main__":
    main()
