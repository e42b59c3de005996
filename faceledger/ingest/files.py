"""Turn the paths a user names (folders, image files, web archives) into SourceItems."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from faceledger.errors import NotFound
from faceledger.ingest.warc import iter_warc
from faceledger.types import SourceItem

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
ARCHIVE_SUFFIXES = (".warc", ".warc.gz", ".arc", ".arc.gz")


def is_archive(path: Path) -> bool:
    return path.name.lower().endswith(ARCHIVE_SUFFIXES)


def expand(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """Split the named paths into image files and archives; folders are walked recursively.

    Inside folders only known image and archive suffixes are taken; a file named
    explicitly is always taken (as an archive if its name says so, else as an image).
    """
    images: list[Path] = []
    archives: list[Path] = []
    for path in paths:
        if not path.exists():
            raise NotFound(f"no such file or folder: {path}")
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                if is_archive(child):
                    archives.append(child)
                elif child.suffix.lower() in IMAGE_SUFFIXES:
                    images.append(child)
        elif is_archive(path):
            archives.append(path)
        else:
            images.append(path)
    return images, archives


def read_file(path: Path, max_bytes: int) -> SourceItem:
    """Read one image file; an unreadable or oversize file becomes an error item."""
    resolved = path.resolve()
    url = resolved.as_uri()
    try:
        stat = resolved.stat()
        captured = datetime.fromtimestamp(stat.st_mtime, UTC)
        if stat.st_size > max_bytes:
            return SourceItem(
                image_url=url,
                data=None,
                error=f"too_many_bytes: {stat.st_size} bytes, the limit is {max_bytes}",
            )
        return SourceItem(image_url=url, data=resolved.read_bytes(), captured_at=captured)
    except OSError as error:
        return SourceItem(image_url=url, data=None, error=f"unreadable: {error.strerror or error}")


def iter_items(images: list[Path], archives: list[Path], max_bytes: int) -> Iterator[SourceItem]:
    for path in images:
        yield read_file(path, max_bytes)
    for archive in archives:
        yield from iter_warc(archive, max_bytes=max_bytes)
