"""Plain data types that cross the face pipeline's boundary (picklable, no dlib objects)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Box:
    """A face box in original-image pixels (left, top, width, height)."""

    left: int
    top: int
    width: int
    height: int

    def as_list(self) -> list[int]:
        return [self.left, self.top, self.width, self.height]


@dataclass(frozen=True, slots=True)
class FaceRecord:
    """One detected face: where it is, how good it is, how old it looks, and its template.

    `landmarks` is a (5, 2) float32 array in original-image pixels, in dlib's 5-point order
    (right eye outer/inner, left eye outer/inner, nose base). `embedding` is a 128-D
    float32 unit vector.
    """

    box: Box
    landmarks: np.ndarray
    detector_score: float
    quality: float
    age: float
    embedding: np.ndarray
