"""A face quality score in [0, 1]: big, sharp, frontal faces score high.

It lets searchers and reviewers discount poor matches and lets ingestion report how good
its faces are; it is a heuristic, documented as such, not a learned measure.
"""

from __future__ import annotations

import numpy as np

# A face this wide (original pixels) or wider counts as full resolution for the embedder.
FULL_SIZE = 100.0
# Variance of the Laplacian on a 150 px grey chip above which a face counts as sharp.
SHARP_VARIANCE = 200.0


def sharpness(chip: np.ndarray) -> float:
    grey = chip.astype(np.float32).mean(axis=2)
    laplacian = (
        -4 * grey[1:-1, 1:-1] + grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:]
    )
    return float(min(1.0, laplacian.var() / SHARP_VARIANCE))


def frontality(landmarks: np.ndarray) -> float:
    """1 for a frontal face, falling as the nose moves off the eyes' midline (yaw)."""
    eye_a = landmarks[0:2].mean(axis=0)
    eye_b = landmarks[2:4].mean(axis=0)
    span = float(np.linalg.norm(eye_a - eye_b))
    if span < 1e-3:
        return 0.0
    midline = (eye_a + eye_b) / 2
    offset = abs(float(landmarks[4][0] - midline[0])) / span
    return float(max(0.0, 1.0 - 2.0 * offset))


def face_quality(chip: np.ndarray, landmarks: np.ndarray, face_width: float) -> float:
    size = min(1.0, face_width / FULL_SIZE)
    return round(float((size * sharpness(chip) * frontality(landmarks)) ** (1 / 3)), 4)
