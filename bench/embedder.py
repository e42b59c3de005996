"""Benchmark the face embedder: dlib's own ResNet vs our ONNX conversion in onnxruntime.

The ONNX embedder exists because dlib here is built without BLAS; this script measures the
gain in one run, on the same chips: ms per face for dlib (batches of 1 and 32) and for
onnxruntime at 1 and 2 threads with batches of 1 and 32, and each one's speed-up over dlib
at batch 1.

    .venv/bin/python bench/embedder.py [--faces 64] [--repeats 3]

Chips are real aligned LFW faces when the shared data is present, otherwise seeded random
images (the network's cost does not depend on the content).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import dlib
import numpy as np

from faceledger.faces import model_files
from faceledger.faces.resnet_onnx import build_resnet_onnx
from faceledger.faces.sessions import onnx_session

FACES_DEV = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "faces-dev"


def load_chips(count: int) -> tuple[np.ndarray, str]:
    """`count` aligned 150x150 chips: LFW faces if available, else seeded noise."""
    if FACES_DEV.is_dir():
        detector = dlib.get_frontal_face_detector()
        predictor = dlib.shape_predictor(str(model_files.landmarks_5()))
        chips = []
        for path in sorted(FACES_DEV.glob("*/*.jpg")):
            image = dlib.load_rgb_image(str(path))
            faces = detector(image, 1)
            if faces:
                shape = predictor(image, faces[0])
                chips.append(dlib.get_face_chip(image, shape, size=150, padding=0.25))
            if len(chips) == count:
                return np.stack(chips), "LFW faces"
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (count, 150, 150, 3), dtype=np.uint8), "random images"


def ms_per_face(
    run_batch: Callable[[np.ndarray], object], chips: np.ndarray, batch: int, repeats: int
) -> float:
    """Median over `repeats` passes of the wall time per face, after one warm-up batch."""
    run_batch(chips[:batch])
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(0, len(chips), batch):
            run_batch(chips[i : i + batch])
        timings.append((time.perf_counter() - start) * 1000 / len(chips))
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=64, help="chips timed per configuration")
    parser.add_argument("--repeats", type=int, default=3, help="passes; the median is shown")
    args = parser.parse_args()

    chips, source = load_chips(args.faces)
    dat = model_files.resnet_embedder()
    model = dlib.face_recognition_model_v1(str(dat))
    onnx_bytes = build_resnet_onnx(dat)
    print(f"{len(chips)} chips ({source}), median of {args.repeats} passes\n")

    def dlib_batch(batch: np.ndarray) -> object:
        return model.compute_face_descriptor(list(batch))

    baseline = ms_per_face(dlib_batch, chips, 1, args.repeats)
    print(f"{'engine':<24}{'ms/face':>10}{'vs dlib':>10}")
    print(f"{'dlib, batch 1':<24}{baseline:>10.2f}{1.0:>9.1f}x")
    ms = ms_per_face(dlib_batch, chips, 32, args.repeats)
    print(f"{'dlib, batch 32':<24}{ms:>10.2f}{baseline / ms:>9.1f}x")
    for threads in (1, 2):
        session = onnx_session(onnx_bytes, threads)
        for batch in (1, 32):
            ms = ms_per_face(
                lambda b, s=session: s.run(None, {"chips": b}), chips, batch, args.repeats
            )
            label = f"onnx {threads} thread{'s' if threads > 1 else ''}, batch {batch}"
            print(f"{label:<24}{ms:>10.2f}{baseline / ms:>9.1f}x")


if __name__ == "__main__":
    main()
