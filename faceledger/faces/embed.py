"""Face embedders behind one interface: aligned 150x150 chips in, unit 128-D vectors out.

`OnnxEmbedder` runs dlib's ResNet, converted by our own reader from the packaged `.dat`
file, in onnxruntime (~15x faster than dlib's BLAS-less build here). `DlibEmbedder` runs
dlib itself and is kept as the reference the conversion is checked against.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import dlib
import numpy as np
import numpy.typing as npt

from faceledger.faces import model_files
from faceledger.faces.resnet_onnx import cached_resnet_onnx
from faceledger.faces.sessions import onnx_session

CHIP_SIZE = 150
CHIP_PADDING = 0.25


class Embedder(Protocol):
    def embed(self, chips: np.ndarray) -> np.ndarray:
        """(N, 150, 150, 3) uint8 RGB chips -> (N, 128) float32 unit vectors."""
        ...


def normalise(vectors: npt.ArrayLike) -> np.ndarray:
    matrix = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    unit: np.ndarray = matrix / np.maximum(norms, 1e-12)
    return unit


class OnnxEmbedder:
    def __init__(self, cache_dir: Path, threads: int = 1) -> None:
        path = cached_resnet_onnx(model_files.resnet_embedder(), cache_dir)
        self._session = onnx_session(path, threads)
        self._input = self._session.get_inputs()[0].name

    def embed(self, chips: np.ndarray) -> np.ndarray:
        if len(chips) == 0:
            return np.empty((0, 128), dtype=np.float32)
        (raw,) = self._session.run(None, {self._input: np.ascontiguousarray(chips)})
        return normalise(raw)


class DlibEmbedder:
    def __init__(self) -> None:
        self._model = dlib.face_recognition_model_v1(str(model_files.resnet_embedder()))

    def embed(self, chips: np.ndarray) -> np.ndarray:
        if len(chips) == 0:
            return np.empty((0, 128), dtype=np.float32)
        return normalise([self._model.compute_face_descriptor(chip) for chip in chips])


def create_embedder(kind: str, cache_dir: Path, threads: int = 1) -> Embedder:
    if kind == "onnx":
        return OnnxEmbedder(cache_dir, threads)
    if kind == "dlib":
        return DlibEmbedder()
    raise ValueError(f"unknown embedder {kind!r}: choose 'onnx' or 'dlib'")
