"""Ingest throughput: `faceledger ingest` against face_recognition 1.3.0, measured in one run.

Both sides get the same images and the same number of worker processes, and both are timed
from a cold start (process pool, model loading) to the last face: what a user waits for.
The peer is `face_recognition.face_encodings` with its defaults (HOG, one upsampling, the
5-point model), the usual way it is used to index photos. Our side also estimates ages,
gates minors, writes the database and the index: the whole job.

The images are split into two halves, run in the order ours, peer, peer, ours, so that a
change in the machine's load during the run weighs on both sides alike.

    python bench/ingest.py [--images 900] [--workers 2] [--folder ../shared/data/faces-dev]

Install the peer with `pip install --no-deps face_recognition` (dlib-bin provides `dlib`).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import tempfile
import time
from collections import Counter
from pathlib import Path

from faceledger.auth.passwords import generate_password
from faceledger.auth.users import init_admin
from faceledger.config import load_settings
from faceledger.faces.embed import OnnxEmbedder
from faceledger.ingest.files import iter_items
from faceledger.ingest.job import IngestJob
from faceledger.policy.collections import create_collection
from faceledger.workspace import Workspace

REPO = Path(__file__).resolve().parents[1]


def sample(folder: Path, count: int) -> list[Path]:
    """Every k-th photo of the sorted set: a spread of people, not the first few names."""
    paths = sorted(folder.glob("*/*.jpg"))
    step = max(1, len(paths) // count)
    return paths[::step][:count]


def _peer_encode(path: str) -> int:
    import face_recognition

    image = face_recognition.load_image_file(path)
    return len(face_recognition.face_encodings(image))


def run_peer(paths: list[Path], workers: int) -> tuple[float, int]:
    started = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        faces = sum(pool.imap_unordered(_peer_encode, [str(p) for p in paths], chunksize=4))
    return time.perf_counter() - started, faces


def run_ours(paths: list[Path], workers: int, model_dir: Path) -> tuple[float, int, dict]:
    with tempfile.TemporaryDirectory() as data:
        settings = load_settings(Path(data), workers=workers, model_dir=model_dir)
        workspace = Workspace(settings)
        with workspace.sessions() as session:
            admin = init_admin(session, "bench", generate_password())
            create_collection(session, admin, "bench", legal_basis="benchmark of ingestion")
            session.commit()
        job = IngestJob(workspace, "bench", workers=workers)
        started = time.perf_counter()
        summary = job.run(iter_items(paths, [], 50 * 2**20))
        seconds = time.perf_counter() - started
    found = summary.faces_indexed + summary.skipped["minor_face"]
    found += summary.skipped["review_band_face"]
    return seconds, found, summary.as_dict()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=900)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--folder", type=Path, default=REPO.parent / "shared/data/faces-dev")
    args = parser.parse_args()
    paths = sample(args.folder, args.images)
    halves = (paths[: len(paths) // 2], paths[len(paths) // 2 :])
    ours_s = peer_s = 0.0
    ours_faces = peer_faces = indexed = 0
    skipped: Counter[str] = Counter()
    with tempfile.TemporaryDirectory() as models:
        # Convert the embedder once before timing: a real install does it once, ever.
        OnnxEmbedder(Path(models))
        for half, ours_first in zip(halves, (True, False), strict=True):
            for side in ("ours", "peer") if ours_first else ("peer", "ours"):
                if side == "ours":
                    seconds, faces, summary = run_ours(half, args.workers, Path(models))
                    ours_s, ours_faces = ours_s + seconds, ours_faces + faces
                    indexed += summary["faces_indexed"]
                    skipped.update(summary["skipped"])
                else:
                    seconds, faces = run_peer(half, args.workers)
                    peer_s, peer_faces = peer_s + seconds, peer_faces + faces
    result = {
        "images": len(paths),
        "workers": args.workers,
        "faceledger_images_per_s": round(len(paths) / ours_s, 2),
        "face_recognition_images_per_s": round(len(paths) / peer_s, 2),
        "speedup": round(peer_s / ours_s, 2),
        "faceledger_faces_found": ours_faces,
        "face_recognition_faces_found": peer_faces,
        "faceledger_faces_indexed": indexed,
        "faceledger_skipped": dict(skipped),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
