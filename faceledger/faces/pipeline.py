"""The face pipeline: image bytes in, FaceRecords out (decode, detect, align, embed, age).

Every process that looks at faces (ingest workers, search, evaluation) builds one
FacePipeline and reuses it: model loading costs far more than a single image.
"""

from __future__ import annotations

from dataclasses import dataclass

import dlib
import numpy as np

from faceledger.config import Settings
from faceledger.faces.age import AgeEstimator
from faceledger.faces.decode import DecodedImage, DecodeLimits, decode_image
from faceledger.faces.detect import Detection, FaceDetector, to_shape
from faceledger.faces.embed import (
    CHIP_PADDING,
    CHIP_SIZE,
    Embedder,
    create_embedder,
    normalise,
)
from faceledger.faces.quality import face_quality
from faceledger.faces.types import Box, FaceRecord


@dataclass(frozen=True, slots=True)
class AnalysedImage:
    """The faces of one image and the image's size, both in original-image pixels."""

    width: int
    height: int
    faces: list[FaceRecord]


class FacePipeline:
    def __init__(
        self,
        settings: Settings,
        *,
        embedder: str = "onnx",
        threads: int = 1,
        limits: DecodeLimits | None = None,
    ) -> None:
        self.limits = limits or DecodeLimits()
        self.max_side = settings.detect_max_side
        self.detector = FaceDetector(
            settings.detector, settings.detect_min_side, settings.detect_max_side
        )
        self.embedder: Embedder = create_embedder(embedder, settings.model_cache_dir, threads)
        self.ages = AgeEstimator()

    def analyse(self, data: bytes, *, probe: bool = False) -> AnalysedImage:
        """Find and describe every face; raises ImageRejected for bad input.

        A `probe` (an image a searcher says shows a face) gets a second, more lenient look
        when the first finds nothing; see `FaceDetector.detect`.
        """
        decoded = decode_image(data, self.limits, max_long_side=self.max_side)
        return AnalysedImage(
            width=decoded.width,
            height=decoded.height,
            faces=self.describe(decoded, self.detector.detect(decoded.rgb, retry=probe)),
        )

    def describe(self, decoded: DecodedImage, detections: list[Detection]) -> list[FaceRecord]:
        if not detections:
            return []
        rgb = decoded.rgb
        shapes = dlib.full_object_detections()
        for detection in detections:
            shapes.append(to_shape(detection))
        chips = np.stack(dlib.get_face_chips(rgb, shapes, size=CHIP_SIZE, padding=CHIP_PADDING))
        vectors = mirrored_embeddings(self.embedder, chips)
        boxes = [d.box for d in detections]
        ages = self.ages.estimate_many(
            rgb, [(d.landmarks, b) for d, b in zip(detections, boxes, strict=True)]
        )
        inverse = 1.0 / decoded.scale
        return [
            FaceRecord(
                box=_scaled(box, inverse),
                landmarks=detection.landmarks * inverse,
                detector_score=round(detection.score, 4),
                quality=face_quality(chip, detection.landmarks, box[2] * inverse),
                age=round(float(age), 2),
                embedding=vector,
            )
            for detection, box, chip, vector, age in zip(
                detections, boxes, chips, vectors, ages, strict=True
            )
        ]


def mirrored_embeddings(embedder: Embedder, chips: np.ndarray) -> np.ndarray:
    """Average each chip's embedding with its mirror image's (one batch), then renormalise.

    Measured on LFW (faces-dev pairs): 10-fold accuracy 98.93% -> 99.24%.
    """
    both = embedder.embed(np.ascontiguousarray(np.concatenate([chips, chips[:, :, ::-1]])))
    return normalise(both[: len(chips)] + both[len(chips) :])


def _scaled(box: tuple[int, int, int, int], factor: float) -> Box:
    return Box(*(round(v * factor) for v in box))
