"""Hostile files made by hand, shared by the decoder and ingestion tests."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

from PIL import Image


def png_chunk(tag: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(tag + payload)
    return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", crc)


def png_claiming(width: int, height: int) -> bytes:
    """A well-formed PNG (valid CRCs) declaring width x height 8-bit grey, with a tiny IDAT.

    A real bomb would carry ~10 MB of deflated zeros; the header is what must be refused.
    """
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 4096))
        + png_chunk(b"IEND", b"")
    )


def write_hostile_files(folder: Path) -> dict[str, str]:
    """Write one file per hostile case; return file name -> the rejection reason expected."""
    cases: dict[str, tuple[bytes, str]] = {
        "bomb.png": (png_claiming(100_000, 100_000), "decompression_bomb"),
        "empty.jpg": (b"", "empty"),
        "notes.jpg": (b"these are my notes, not a photo\n" * 20, "not_an_image"),
        "page.png": (b"<!doctype html><html><body>hi</body></html>", "not_an_image"),
        "wide.png": (_png_of(Image.new("L", (50_000, 1))), "too_large_dimension"),
        "truncated.jpg": (_jpeg_noise()[:3000], "truncated"),
    }
    for name, (data, _) in cases.items():
        (folder / name).write_bytes(data)
    return {name: reason for name, (_, reason) in cases.items()}


def _png_of(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _jpeg_noise() -> bytes:
    import numpy as np

    pixels = np.random.default_rng(1).integers(0, 255, (300, 300, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()
