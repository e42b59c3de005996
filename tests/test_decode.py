"""Tests for faceledger.faces.decode: every file is made here, by Pillow or by hand."""

from __future__ import annotations

import contextlib
import io
import pickle
import random
import struct

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageFile

from faceledger.faces.decode import (
    ACCEPTED_FORMATS,
    DecodedImage,
    DecodeLimits,
    ImageRejected,
    decode_image,
    sniff_format,
)
from tests.hostile import png_chunk, png_claiming

# At default limits Pillow's global bomb guard must never even warn about what we accept.
pytestmark = pytest.mark.filterwarnings("error::PIL.Image.DecompressionBombWarning")

RED = (255, 0, 0)
BLUE = (0, 0, 255)
GREEN = (0, 255, 0)
WHITE = (255, 255, 255)
LOSSY_TOLERANCE = 40

SAVE_OPTIONS: dict[str, dict[str, object]] = {
    "JPEG": {"quality": 95},
    "WEBP": {"lossless": True},
}


def encode(im: Image.Image, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **{**SAVE_OPTIONS.get(fmt, {}), **options})
    return buf.getvalue()


def two_tone(width: int, height: int, top: tuple[int, int, int], bottom: tuple[int, int, int]):
    """An RGB image whose top half is `top` and bottom half is `bottom`."""
    im = Image.new("RGB", (width, height), top)
    im.paste(bottom, (0, height // 2, width, height))
    return im


def noise(width: int, height: int) -> Image.Image:
    """Incompressible pixels, so a cut anywhere past the header lands in pixel data."""
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def assert_colour(pixel: np.ndarray, expected: tuple[int, int, int], tolerance: int = 0) -> None:
    diff = np.abs(pixel.astype(int) - np.array(expected))
    assert diff.max() <= tolerance, f"{pixel.tolist()} != {expected}"


def assert_well_formed(decoded: DecodedImage) -> None:
    assert decoded.rgb.dtype == np.uint8
    assert decoded.rgb.ndim == 3 and decoded.rgb.shape[2] == 3
    assert decoded.rgb.flags.c_contiguous


def rejected(data: bytes, limits: DecodeLimits | None = None) -> ImageRejected:
    with pytest.raises(ImageRejected) as info:
        decode_image(data) if limits is None else decode_image(data, limits)
    assert str(info.value)
    return info.value


def gif_with_screen(width: int, height: int) -> bytes:
    """A 1x1 GIF whose logical screen descriptor claims width x height."""
    data = bytearray(encode(Image.new("P", (1, 1)), "GIF"))
    data[6:10] = struct.pack("<HH", width, height)
    return bytes(data)


@pytest.fixture
def no_pixel_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if any pixel data is decoded: proves a rejection came from the header."""

    def refuse(self: ImageFile.ImageFile) -> None:
        raise AssertionError("pixel data was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


# --- accepted formats ----------------------------------------------------------------


@pytest.mark.parametrize("fmt", ACCEPTED_FORMATS)
def test_each_accepted_format_decodes_to_rgb(fmt: str) -> None:
    data = encode(two_tone(64, 48, RED, BLUE), fmt)
    assert sniff_format(data) == fmt

    decoded = decode_image(data)

    assert_well_formed(decoded)
    assert decoded.rgb.shape == (48, 64, 3)
    assert (decoded.width, decoded.height) == (64, 48)
    assert decoded.format == fmt
    assert decoded.scale == 1.0
    tolerance = LOSSY_TOLERANCE if fmt == "JPEG" else 0
    assert_colour(decoded.rgb[5, 32], RED, tolerance)
    assert_colour(decoded.rgb[42, 32], BLUE, tolerance)


def test_big_tiff_is_accepted() -> None:
    data = encode(Image.new("RGB", (8, 6), GREEN), "TIFF", big_tiff=True)
    assert data[:4] == b"II+\x00"
    decoded = decode_image(data)
    assert decoded.rgb.shape == (6, 8, 3)
    assert_colour(decoded.rgb[3, 3], GREEN)


def test_result_array_is_read_only() -> None:
    decoded = decode_image(encode(Image.new("RGB", (4, 4), RED), "PNG"))
    with pytest.raises(ValueError):
        decoded.rgb[0, 0] = 0


def test_bytearray_is_accepted() -> None:
    decoded = decode_image(bytearray(encode(Image.new("RGB", (4, 3), RED), "PNG")))
    assert decoded.rgb.shape == (3, 4, 3)


# --- orientation and frames -----------------------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "TIFF", "WEBP"])
def test_exif_orientation_6_is_applied(fmt: str) -> None:
    # Stored 60 wide x 40 high, red on top; orientation 6 means "rotate 90 degrees clockwise
    # to display", which puts the top row on the right.
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    data = encode(two_tone(60, 40, RED, BLUE), fmt, exif=exif)

    decoded = decode_image(data)

    assert decoded.rgb.shape == (60, 40, 3)
    assert (decoded.width, decoded.height) == (40, 60)
    tolerance = LOSSY_TOLERANCE if fmt == "JPEG" else 0
    assert_colour(decoded.rgb[30, 35], RED, tolerance)
    assert_colour(decoded.rgb[30, 4], BLUE, tolerance)


def test_unreadable_exif_is_ignored_not_fatal() -> None:
    data = encode(Image.new("RGB", (8, 6), RED), "JPEG", exif=b"Exif\x00\x00garbage!")
    decoded = decode_image(data)
    assert decoded.rgb.shape == (6, 8, 3)


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP", "TIFF"])
def test_multi_frame_files_yield_the_first_frame(fmt: str) -> None:
    frames = [Image.new("RGB", (20, 10), colour) for colour in (RED, GREEN, BLUE)]
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:])
    with Image.open(io.BytesIO(data)) as check:
        assert getattr(check, "n_frames", 1) == 3

    decoded = decode_image(data)

    assert decoded.rgb.shape == (10, 20, 3)
    assert_colour(decoded.rgb[5, 10], RED)


# --- modes -------------------------------------------------------------------------------


def test_rgba_is_composited_on_white() -> None:
    im = Image.new("RGBA", (30, 10), (0, 0, 0, 0))  # transparent black
    im.paste((255, 0, 0, 255), (10, 0, 20, 10))  # opaque red
    im.paste((255, 0, 0, 128), (20, 0, 30, 10))  # half-transparent red
    decoded = decode_image(encode(im, "PNG"))
    assert_colour(decoded.rgb[5, 5], WHITE)
    assert_colour(decoded.rgb[5, 15], RED)
    assert_colour(decoded.rgb[5, 25], (255, 127, 127), tolerance=1)


def test_grey_with_alpha_is_composited_on_white() -> None:
    im = Image.new("LA", (10, 4), (0, 0))
    im.paste((0, 255), (5, 0, 10, 4))
    decoded = decode_image(encode(im, "PNG"))
    assert_colour(decoded.rgb[2, 2], WHITE)
    assert_colour(decoded.rgb[2, 7], (0, 0, 0))


def test_palette_image_converts() -> None:
    im = Image.new("P", (10, 4))
    im.putpalette([*RED, *BLUE] + [0] * (256 * 3 - 6))
    im.paste(1, (5, 0, 10, 4))
    decoded = decode_image(encode(im, "PNG"))
    assert_colour(decoded.rgb[2, 2], RED)
    assert_colour(decoded.rgb[2, 7], BLUE)


def test_palette_transparency_is_composited_on_white() -> None:
    im = Image.new("P", (10, 4))
    im.putpalette([*RED, *BLUE] + [0] * (256 * 3 - 6))
    im.paste(1, (5, 0, 10, 4))
    decoded = decode_image(encode(im, "PNG", transparency=1))
    assert_colour(decoded.rgb[2, 2], RED)
    assert_colour(decoded.rgb[2, 7], WHITE)


@pytest.mark.parametrize("fmt", ["JPEG", "TIFF"])
def test_cmyk_converts(fmt: str) -> None:
    im = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # no cyan, full magenta + yellow: red
    decoded = decode_image(encode(im, fmt))
    tolerance = LOSSY_TOLERANCE if fmt == "JPEG" else 0
    assert_colour(decoded.rgb[4, 4], RED, tolerance)


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_16_bit_grey_keeps_its_tones(fmt: str) -> None:
    values = np.array([[0, 32768, 65535, 4096]], dtype=np.uint16)
    data = encode(Image.fromarray(values), fmt)
    with Image.open(io.BytesIO(data)) as check:
        assert check.mode.startswith("I;16")

    decoded = decode_image(data)

    assert decoded.rgb[0, :, 0].tolist() == [0, 128, 255, 16]
    assert (decoded.rgb[..., 0] == decoded.rgb[..., 2]).all()


@pytest.mark.parametrize("fmt", ["PNG", "BMP", "TIFF"])
def test_one_bit_converts(fmt: str) -> None:
    im = Image.new("1", (16, 2), 0)
    im.paste(1, (8, 0, 16, 2))
    decoded = decode_image(encode(im, fmt))
    assert_colour(decoded.rgb[1, 2], (0, 0, 0))
    assert_colour(decoded.rgb[1, 12], WHITE)


def test_greyscale_jpeg_converts() -> None:
    decoded = decode_image(encode(Image.new("L", (16, 16), 200), "JPEG"))
    assert decoded.rgb.shape == (16, 16, 3)
    assert_colour(decoded.rgb[8, 8], (200, 200, 200), tolerance=2)


# --- draft (reduced-size JPEG decoding) -------------------------------------------------


@pytest.fixture(scope="module")
def big_jpeg() -> bytes:
    return encode(two_tone(4000, 3000, RED, BLUE), "JPEG")


@pytest.mark.parametrize(
    ("max_long_side", "expected_shape", "expected_scale"),
    [
        (1000, (750, 1000, 3), 0.25),
        (1001, (1500, 2000, 3), 0.5),
        (500, (375, 500, 3), 0.125),
        (100, (375, 500, 3), 0.125),  # 1/8 is the smallest DCT reduction
        (2001, (3000, 4000, 3), 1.0),
        (4000, (3000, 4000, 3), 1.0),
        (9000, (3000, 4000, 3), 1.0),
    ],
)
def test_draft_decodes_jpeg_at_reduced_size(
    big_jpeg: bytes,
    max_long_side: int,
    expected_shape: tuple[int, int, int],
    expected_scale: float,
) -> None:
    decoded = decode_image(big_jpeg, max_long_side=max_long_side)

    assert decoded.rgb.shape == expected_shape
    assert decoded.scale == expected_scale
    assert (decoded.width, decoded.height) == (4000, 3000)
    assert max(decoded.rgb.shape[:2]) >= min(max_long_side, 4000)
    assert_colour(decoded.rgb[10, 10], RED, LOSSY_TOLERANCE)
    assert_colour(decoded.rgb[-10, -10], BLUE, LOSSY_TOLERANCE)


@pytest.mark.parametrize("max_long_side", [1, 250, 499, 500, 501, 999, 1000, 1001, 2000, 2001])
def test_draft_never_undershoots_and_picks_the_smallest_size(
    big_jpeg: bytes, max_long_side: int
) -> None:
    decoded = decode_image(big_jpeg, max_long_side=max_long_side)
    long_side = max(decoded.rgb.shape[:2])
    assert long_side >= min(max_long_side, 500)  # 500 = 4000 / 8, the floor
    if decoded.scale > 0.125:
        assert long_side // 2 < max_long_side  # a further halving would have undershot
    assert long_side == round(4000 * decoded.scale)


def test_draft_respects_exif_orientation() -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    data = encode(two_tone(4000, 3000, RED, BLUE), "JPEG", exif=exif)

    decoded = decode_image(data, max_long_side=1000)

    assert decoded.rgb.shape == (1000, 750, 3)
    assert (decoded.width, decoded.height) == (3000, 4000)
    assert decoded.scale == 0.25


def test_draft_is_not_used_for_other_formats() -> None:
    data = encode(Image.new("RGB", (2000, 1000), RED), "PNG")
    decoded = decode_image(data, max_long_side=500)
    assert decoded.rgb.shape == (1000, 2000, 3)
    assert decoded.scale == 1.0


def test_max_long_side_must_be_positive() -> None:
    with pytest.raises(ValueError) as info:
        decode_image(encode(Image.new("RGB", (4, 4)), "JPEG"), max_long_side=0)
    assert not isinstance(info.value, ImageRejected)


# --- hostile input ------------------------------------------------------------------------


def test_zero_bytes() -> None:
    assert rejected(b"").reason == "empty"


@pytest.mark.parametrize(
    "data",
    [
        b"hello, world\n" * 20,
        b"<!DOCTYPE html><html><head><title>x</title></head><body><svg></svg></body></html>",
        b"<html><body><img src='a.jpg'></body></html>",
        b'{"image": "not really"}',
        b"BM is not a bitmap, just a sentence that starts with BM",
        b"RIFF\x24\x00\x00\x00WAVEfmt ",  # audio, not WebP
        b"\x00" * 64,
        b"\xff\xd8",  # two bytes of a JPEG signature
    ],
)
def test_non_images_are_not_an_image(data: bytes) -> None:
    assert sniff_format(data) is None
    assert rejected(data).reason == "not_an_image"


@pytest.mark.parametrize(
    "data",
    [
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n",
        b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>',
        b'\xef\xbb\xbf<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>',
        b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf",
        b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic",
        b"8BPS\x00\x01\x00\x00\x00\x00\x00\x00",
        b"\x00\x00\x00\x0cjP  \r\n\x87\n\x00\x00\x00\x14ftypjp2 ",
    ],
)
def test_refused_formats_are_unsupported(data: bytes) -> None:
    assert sniff_format(data) is None
    assert rejected(data).reason == "unsupported_format"


def test_formats_pillow_could_read_but_we_refuse() -> None:
    ico = encode(Image.new("RGB", (16, 16), RED), "ICO")
    assert rejected(ico).reason == "unsupported_format"
    assert rejected(encode(Image.new("RGB", (4, 4)), "PPM")).reason == "not_an_image"


@pytest.mark.parametrize("fmt", ACCEPTED_FORMATS)
def test_truncated_files_are_refused(fmt: str) -> None:
    data = encode(noise(200, 150), fmt)
    cut = data[: len(data) * 6 // 10]
    assert sniff_format(cut) == fmt
    assert rejected(cut).reason == "truncated"


def test_jpeg_missing_only_its_end_marker_is_truncated() -> None:
    data = encode(noise(64, 64), "JPEG")
    assert data.endswith(b"\xff\xd9")
    assert rejected(data[:-2]).reason == "truncated"


def test_png_bomb_is_refused_from_the_header(no_pixel_decoding: None) -> None:
    data = png_claiming(100_000, 100_000)
    assert len(data) < 200
    assert sniff_format(data) == "PNG"
    assert rejected(data).reason == "decompression_bomb"


def test_png_bomb_is_refused_without_pillows_global_guard(
    monkeypatch: pytest.MonkeyPatch, no_pixel_decoding: None
) -> None:
    # Some hosts disable Pillow's process-wide guard; our per-call limits must still hold.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    assert rejected(png_claiming(100_000, 100_000)).reason == "decompression_bomb"


def test_wide_strip_is_too_large_dimension(no_pixel_decoding: None) -> None:
    data = encode(Image.new("L", (50_000, 1), 128), "PNG")
    assert len(data) < 1000
    assert rejected(data).reason == "too_large_dimension"


def test_tall_strip_is_too_large_dimension(no_pixel_decoding: None) -> None:
    data = encode(Image.new("L", (1, 50_000), 128), "PNG")
    assert rejected(data).reason == "too_large_dimension"


def test_gif_with_huge_logical_screen_is_refused(no_pixel_decoding: None) -> None:
    assert rejected(gif_with_screen(65_535, 65_535)).reason == "decompression_bomb"


def test_gif_with_wide_logical_screen_is_too_large_dimension(no_pixel_decoding: None) -> None:
    assert rejected(gif_with_screen(30_000, 10)).reason == "too_large_dimension"


def test_pixel_budget(no_pixel_decoding: None) -> None:
    limits = DecodeLimits(max_pixels=10_000)
    over = encode(Image.new("RGB", (150, 100)), "PNG")  # 15,000 pixels
    far_over = encode(Image.new("RGB", (1000, 1000)), "PNG")  # 100x the budget
    assert rejected(over, limits).reason == "too_many_pixels"
    assert rejected(far_over, limits).reason == "decompression_bomb"


def test_pixel_budget_admits_an_image_at_the_limit() -> None:
    data = encode(Image.new("RGB", (100, 100)), "PNG")
    assert decode_image(data, DecodeLimits(max_pixels=10_000)).rgb.shape == (100, 100, 3)


def test_max_bytes() -> None:
    data = encode(noise(32, 32), "PNG")
    assert rejected(data, DecodeLimits(max_bytes=len(data) - 1)).reason == "too_many_bytes"
    assert decode_image(data, DecodeLimits(max_bytes=len(data))).rgb.shape == (32, 32, 3)


def test_header_declaring_zero_size_is_corrupt() -> None:
    assert rejected(png_claiming(0, 10)).reason == "corrupt"


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")
@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"this is not a chunk stream" * 4, "corrupt"),
        (b"\xff\xd8\xff" + bytes(range(256)) * 4, "corrupt"),
        (b"GIF89a" + b"\xff" * 64, "corrupt"),
        (b"II*\x00" + b"\xff\xff\xff\x7f" + b"\x00" * 64, "corrupt"),  # IFD past the end
        (b"BM" + b"\x00" * 12 + struct.pack("<I", 40) + b"\xff" * 64, "corrupt"),
        (b"RIFF\x0c\x00\x00\x00WEBPVP8 \x04\x00\x00\x00", "corrupt"),
        (b"RIFF\xff\x00\x00\x00WEBPVP8 \x04\x00\x00\x00", "truncated"),
    ],
)
def test_garbage_after_a_valid_signature_is_refused(data: bytes, reason: str) -> None:
    assert sniff_format(data) is not None
    assert rejected(data).reason == reason


@pytest.mark.filterwarnings("error")
def test_pillow_warnings_raised_as_errors_are_still_rejections() -> None:
    # Pillow warns "Corrupt EXIF data" on this TIFF; a host running with -W error gets the
    # warning as an exception, which must still come out as ImageRejected.
    data = b"II*\x00" + b"\xff\xff\xff\x7f" + b"\x00" * 64
    assert rejected(data).reason == "corrupt"


def test_corrupt_png_pixel_stream_is_corrupt() -> None:
    ihdr = struct.pack(">IIBBBBB", 16, 16, 8, 0, 0, 0, 0)
    data = (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", b"definitely not zlib" * 8)
        + png_chunk(b"IEND", b"")
    )
    assert rejected(data).reason == "corrupt"


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_mutated_files_are_decoded_or_rejected_never_crash() -> None:
    """A small seeded fuzz: byte flips, cuts and poked-in extreme integers over real files.

    Anything but a well-formed DecodedImage or ImageRejected escaping is a bug.
    """
    rng = random.Random(1234)
    seeds = [encode(noise(24, 16), fmt) for fmt in ACCEPTED_FORMATS]
    extremes = [b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff"]
    for _ in range(600):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.choice([1, 2, 8])):
            at = rng.randrange(len(data))
            roll = rng.random()
            if roll < 0.6:
                data[at] = rng.randrange(256)
            elif roll < 0.9:
                data[at : at + 4] = rng.choice(extremes)
            else:
                del data[at:]
                break
        with contextlib.suppress(ImageRejected):
            assert_well_formed(decode_image(bytes(data)))


def test_non_bytes_input_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        decode_image("not bytes")  # type: ignore[arg-type]


# --- API details ---------------------------------------------------------------------------


def test_image_rejected_survives_pickling() -> None:
    original = ImageRejected("truncated", "cut short")
    copy = pickle.loads(pickle.dumps(original))
    assert isinstance(copy, ImageRejected)
    assert (copy.reason, str(copy)) == ("truncated", "cut short")


@pytest.mark.parametrize("field", ["max_bytes", "max_pixels", "max_side"])
def test_limits_must_be_positive(field: str) -> None:
    with pytest.raises(ValueError):
        DecodeLimits(**{field: 0})


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\xff\xd8\xff\xe0", "JPEG"),
        (b"\x89PNG\r\n\x1a\n", "PNG"),
        (b"GIF87a", "GIF"),
        (b"GIF89a", "GIF"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8L", "WEBP"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8X", "WEBP"),
        (b"BM" + b"\x00" * 12 + struct.pack("<I", 124), "BMP"),
        (b"II*\x00", "TIFF"),
        (b"MM\x00*", "TIFF"),
        (b"MM\x00+", "TIFF"),
        (b"GIF88a", None),
        (b"\x89PNG\r\n", None),
        (b"RIFF\x00\x00\x00\x00WEBPJUNK", None),
        (b"BM" + b"\x00" * 12 + struct.pack("<I", 41), None),
        (b"BM" + b"\x00" * 12 + b"\x28", None),  # DIB header size cut short
        (b"", None),
    ],
)
def test_sniff_format(data: bytes, expected: str | None) -> None:
    assert sniff_format(data) == expected
