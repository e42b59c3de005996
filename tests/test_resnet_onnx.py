"""The ONNX conversion of dlib's face ResNet must compute what dlib computes.

The embedder's speed-up rests on this converter, so it is checked numerically against
`dlib.face_recognition_model_v1.compute_face_descriptor`: on seeded synthetic images (the
network is just a function of any 150x150 image; always runs) and on real aligned faces
from the shared LFW data (skipped when that folder is absent). Damaged model files must
fail with a ValueError, not yield a wrong network.
"""

from __future__ import annotations

import os
from pathlib import Path

import dlib
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from faceledger.faces import model_files
from faceledger.faces.dlib_format import parse_resnet, read_resnet
from faceledger.faces.resnet_onnx import build_resnet_onnx, cached_resnet_onnx
from faceledger.faces.sessions import onnx_session

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FACES_DEV = SHARED_DATA / "faces-dev"
MIN_COSINE = 0.9999
MAX_ABS_DIFF = 1e-3


@pytest.fixture(scope="module")
def dat_path() -> Path:
    return model_files.resnet_embedder()


@pytest.fixture(scope="module")
def session(dat_path: Path) -> ort.InferenceSession:
    return onnx_session(build_resnet_onnx(dat_path), threads=1)


@pytest.fixture(scope="module")
def dlib_model(dat_path: Path) -> dlib.face_recognition_model_v1:
    return dlib.face_recognition_model_v1(str(dat_path))


def _assert_matches_dlib(
    session: ort.InferenceSession, model: dlib.face_recognition_model_v1, chips: np.ndarray
) -> None:
    expected = np.array([model.compute_face_descriptor(chip) for chip in chips], np.float32)
    (got,) = session.run(None, {"chips": chips})
    assert got.shape == (len(chips), 128)
    assert got.dtype == np.float32
    cosine = np.sum(got * expected, axis=1) / (
        np.linalg.norm(got, axis=1) * np.linalg.norm(expected, axis=1)
    )
    assert cosine.min() > MIN_COSINE, cosine
    assert np.abs(got - expected).max() < MAX_ABS_DIFF


def _synthetic_chips() -> np.ndarray:
    rng = np.random.default_rng(20240611)
    noise = rng.integers(0, 256, size=(3, 150, 150, 3), dtype=np.uint8)
    ramp = np.linspace(0, 255, 150, dtype=np.float32)
    gradient = np.stack(
        [np.add.outer(ramp, ramp) / 2, np.tile(ramp, (150, 1)), np.tile(ramp[:, None], (1, 150))],
        axis=-1,
    ).astype(np.uint8)
    blocky = np.kron(rng.integers(0, 256, (15, 15, 3)), np.ones((10, 10, 1))).astype(np.uint8)
    return np.concatenate([noise, gradient[None], blocky[None]])


def test_matches_dlib_on_synthetic_images(
    session: ort.InferenceSession, dlib_model: dlib.face_recognition_model_v1
) -> None:
    _assert_matches_dlib(session, dlib_model, _synthetic_chips())


def test_batch_equals_one_by_one(session: ort.InferenceSession) -> None:
    chips = _synthetic_chips()
    (batch,) = session.run(None, {"chips": chips})
    single = np.concatenate([session.run(None, {"chips": chip[None]})[0] for chip in chips])
    np.testing.assert_allclose(batch, single, atol=1e-5)


def _face_chips(count: int) -> np.ndarray:
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(model_files.landmarks_5()))
    chips = []
    for path in sorted(FACES_DEV.glob("*/*.jpg"))[: count * 4]:
        image = dlib.load_rgb_image(str(path))
        faces = detector(image, 1)
        if faces:
            shape = predictor(image, faces[0])
            chips.append(dlib.get_face_chip(image, shape, size=150, padding=0.25))
        if len(chips) == count:
            break
    return np.stack(chips)


@pytest.mark.skipif(
    not FACES_DEV.is_dir(), reason=f"shared face data not found at {FACES_DEV} (no LFW images)"
)
def test_matches_dlib_on_real_faces(
    session: ort.InferenceSession, dlib_model: dlib.face_recognition_model_v1
) -> None:
    chips = _face_chips(8)
    assert len(chips) == 8
    _assert_matches_dlib(session, dlib_model, chips)


def test_reader_sees_the_known_architecture(dat_path: Path) -> None:
    weights = read_resnet(dat_path)
    np.testing.assert_allclose(weights.channel_means, (122.782, 117.001, 104.298), atol=1e-3)
    assert weights.stem_conv.filters.shape == (32, 3, 7, 7)
    widths = [32] * 3 + [64] * 4 + [128] * 3 + [256] * 4
    assert [b.conv2.filters.shape[0] for b in weights.blocks] == widths
    assert [b.downsample for b in weights.blocks].count(True) == 4
    assert weights.fc.shape == (256, 128)


def _damaged(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "damaged.dat"
    path.write_bytes(data)
    return path


def test_truncated_file_raises(dat_path: Path, tmp_path: Path) -> None:
    data = dat_path.read_bytes()
    for cut in (0, 200, 1_000_000, len(data) - 1):
        with pytest.raises(ValueError, match="offset"):
            build_resnet_onnx(_damaged(tmp_path, data[:cut]))


def test_corrupted_file_raises(dat_path: Path, tmp_path: Path) -> None:
    data = dat_path.read_bytes()
    renamed = data.replace(b"relu_", b"reLU_", 1)
    with pytest.raises(ValueError, match=r"offset \d+: layer name is 'reLU_'"):
        read_resnet(_damaged(tmp_path, renamed))
    first_conv = data.index(b"con_4")
    with pytest.raises(ValueError, match="offset"):
        parse_resnet(data[:first_conv] + b"con_5" + data[first_conv + 5 :])
    with pytest.raises(ValueError, match="unexpected bytes"):
        parse_resnet(data + b"\x00")
    with pytest.raises(ValueError, match="version of wrapper"):
        parse_resnet(data[:0x1D] + b"\x01\x07" + data[0x1F:])


def test_cached_model_is_written_once(dat_path: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = cached_resnet_onnx(dat_path, cache)
    stamp = first.stat().st_mtime_ns
    second = cached_resnet_onnx(dat_path, cache)
    assert first == second
    assert second.stat().st_mtime_ns == stamp
    assert os.listdir(cache) == [first.name]
    model = onnx.load(str(first))
    assert [i.name for i in model.graph.input] == ["chips"]
    assert [o.name for o in model.graph.output] == ["embeddings"]
