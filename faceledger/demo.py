"""The demo: build a collection from a folder of face photos and search it with a held-out one.

It needs no network: the photos come from a folder the user names (the Makefile passes the
shared LFW sample when it is there). A `Person/photo.jpg` layout is used to hold one photo
of a person out as the probe, so the search has a true answer to find.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from faceledger.ingest.files import IMAGE_SUFFIXES


@dataclass(frozen=True)
class DemoPlan:
    gallery: list[Path]
    probe: Path


def plan_demo(folder: Path, people: int) -> DemoPlan:
    """Take the first `people` people (by name) with at least two photos; hold one out."""
    if not folder.is_dir():
        raise FileNotFoundError(f"demo folder {folder} does not exist")
    persons = sorted(p for p in folder.iterdir() if p.is_dir())
    chosen: list[list[Path]] = []
    for person in persons:
        photos = sorted(p for p in person.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if len(photos) >= 2:
            chosen.append(photos)
        if len(chosen) == people:
            break
    if not chosen:
        raise ValueError(f"{folder} has no Person/ subfolder with two or more photos")
    probe = chosen[0][-1]
    gallery = [photo for photos in chosen for photo in photos if photo != probe]
    return DemoPlan(gallery=gallery, probe=probe)
