"""Picks of real face photos from the shared LFW sample, by person, for tests."""

from __future__ import annotations

from pathlib import Path


def photos(faces_dev: Path, person: str) -> list[Path]:
    return sorted((faces_dev / person).glob("*.jpg"))


def people_with(faces_dev: Path, at_least: int, count: int) -> list[list[Path]]:
    """The first `count` people (by name) with at least `at_least` photos."""
    chosen = []
    for folder in sorted(p for p in faces_dev.iterdir() if p.is_dir()):
        images = sorted(folder.glob("*.jpg"))
        if len(images) >= at_least:
            chosen.append(images)
        if len(chosen) == count:
            break
    return chosen
