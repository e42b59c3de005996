"""Queries and writes on collections, images and faces: the only SQL the services use."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from faceledger.faces.types import FaceRecord
from faceledger.store.models import Collection, Face, SourceImage
from faceledger.types import SourceItem


def get_collection(session: Session, name: str) -> Collection | None:
    return session.scalar(select(Collection).where(Collection.name == name))


def list_collections(session: Session) -> list[tuple[Collection, int, int]]:
    """Every collection with its image and face counts."""
    images = (
        select(SourceImage.collection_id, func.count().label("n"))
        .group_by(SourceImage.collection_id)
        .subquery()
    )
    faces = (
        select(Face.collection_id, func.count().label("n")).group_by(Face.collection_id).subquery()
    )
    rows = session.execute(
        select(Collection, func.coalesce(images.c.n, 0), func.coalesce(faces.c.n, 0))
        .outerjoin(images, images.c.collection_id == Collection.id)
        .outerjoin(faces, faces.c.collection_id == Collection.id)
        .order_by(Collection.name)
    )
    return [(c, int(i), int(f)) for c, i, f in rows]


def stored_url(session: Session, collection_id: int, content_hash: str) -> str | None:
    """The URL an image with this content was stored under in the collection, if any."""
    return session.scalar(
        select(SourceImage.image_url).where(
            SourceImage.collection_id == collection_id, SourceImage.content_hash == content_hash
        )
    )


def add_image(
    session: Session,
    collection_id: int,
    item: SourceItem,
    content_hash: str,
    size: tuple[int, int],
    faces: Sequence[FaceRecord],
) -> list[tuple[int, np.ndarray]]:
    """Insert an image and its faces (caller commits); return (face id, embedding) pairs."""
    image = SourceImage(
        collection_id=collection_id,
        content_hash=content_hash,
        image_url=item.image_url,
        page_url=item.page_url,
        page_title=item.page_title,
        captured_at=item.captured_at,
        http_status=item.http_status,
        content_type=item.content_type,
        warc_file=item.warc_file,
        warc_record_id=item.warc_record_id,
        warc_digest=item.warc_digest,
        width=size[0],
        height=size[1],
    )
    rows = [
        Face(
            collection_id=collection_id,
            left=face.box.left,
            top=face.box.top,
            width=face.box.width,
            height=face.box.height,
            landmarks=np.round(face.landmarks, 1).tolist(),
            detector_score=face.detector_score,
            quality=face.quality,
            estimated_age=face.age,
            embedding=np.asarray(face.embedding, dtype="<f4").tobytes(),
        )
        for face in faces
    ]
    image.faces = rows
    session.add(image)
    session.flush()
    return [(row.id, face.embedding) for row, face in zip(rows, faces, strict=True)]


def face_ids(session: Session, collection_id: int) -> np.ndarray:
    ids = session.scalars(select(Face.id).where(Face.collection_id == collection_id)).all()
    return np.asarray(ids, dtype=np.int64)


def embeddings(
    session: Session, ids: Sequence[int], batch: int = 5000
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (ids, vectors) for the given face ids, in batches."""
    for start in range(0, len(ids), batch):
        chunk = [int(i) for i in ids[start : start + batch]]
        rows = session.execute(select(Face.id, Face.embedding).where(Face.id.in_(chunk))).all()
        if rows:
            yield (
                np.asarray([r[0] for r in rows], dtype=np.int64),
                np.stack([np.frombuffer(r[1], dtype="<f4") for r in rows]),
            )


def faces_with_images(session: Session, ids: Sequence[int]) -> dict[int, Face]:
    """Load faces and their source images by id."""
    rows = session.scalars(select(Face).where(Face.id.in_([int(i) for i in ids]))).all()
    for face in rows:
        _ = face.image
    return {face.id: face for face in rows}
