"""The face pipeline on real photos: detection at the right scale, embeddings, ages."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from faceledger.faces.pipeline import FacePipeline
from tests.faces import photos

THRESHOLD = 0.9125  # the shipped default; see README "Accuracy"


def jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def test_one_face_with_unit_embedding_and_landmarks(
    pipeline: FacePipeline, faces_dev: Path
) -> None:
    analysed = pipeline.analyse(photos(faces_dev, "Angelina_Jolie")[0].read_bytes())
    assert (analysed.width, analysed.height) == (250, 250)
    assert len(analysed.faces) == 1
    face = analysed.faces[0]
    assert 50 < face.box.left + face.box.width / 2 < 200
    assert abs(float(np.linalg.norm(face.embedding)) - 1.0) < 1e-4
    assert face.landmarks.shape == (5, 2)
    assert 0.0 < face.quality <= 1.0
    assert 18 <= face.age <= 60


def test_same_person_matches_and_others_do_not(pipeline: FacePipeline, faces_dev: Path) -> None:
    jolie = [
        pipeline.analyse(p.read_bytes()).faces[0] for p in photos(faces_dev, "Angelina_Jolie")[:3]
    ]
    others = [
        pipeline.analyse(photos(faces_dev, name)[0].read_bytes()).faces[0]
        for name in ("George_W_Bush", "Colin_Powell", "Serena_Williams")
    ]
    for a in jolie[1:]:
        assert float(a.embedding @ jolie[0].embedding) >= THRESHOLD
    for other in others:
        assert float(other.embedding @ jolie[0].embedding) < THRESHOLD


def test_small_image_is_upsampled_so_its_face_is_found(
    pipeline: FacePipeline, faces_dev: Path
) -> None:
    image = Image.open(photos(faces_dev, "Colin_Powell")[0])
    small = image.resize((110, 110))
    faces = pipeline.analyse(jpeg(small)).faces
    assert len(faces) == 1
    assert faces[0].box.width < 80


def test_large_image_boxes_map_back_to_original_pixels(
    pipeline: FacePipeline, faces_dev: Path
) -> None:
    path = photos(faces_dev, "Colin_Powell")[0]
    original = pipeline.analyse(path.read_bytes()).faces[0]
    big = Image.open(path).resize((3000, 3000), Image.Resampling.BICUBIC)
    analysed = pipeline.analyse(jpeg(big))
    assert (analysed.width, analysed.height) == (3000, 3000)
    scaled = analysed.faces[0].box
    assert abs(scaled.left - original.box.left * 12) < 60
    assert abs(scaled.width - original.box.width * 12) < 120
    assert float(analysed.faces[0].embedding @ original.embedding) > 0.95


def test_group_photo_yields_several_faces(pipeline: FacePipeline, shared_data: Path) -> None:
    faces = pipeline.analyse((shared_data / "groups" / "dlib_2007_007763.jpg").read_bytes()).faces
    assert len(faces) >= 5


def test_image_without_a_face(pipeline: FacePipeline) -> None:
    gradient = np.tile(np.linspace(0, 255, 300, dtype=np.uint8), (200, 1))
    picture = Image.fromarray(np.stack([gradient] * 3, axis=2))
    assert pipeline.analyse(jpeg(picture)).faces == []
