"""Decode untrusted image bytes into an RGB array, or refuse them with a reason.

Images come from crawls and uploads, so every byte is hostile until proven otherwise. The
defences run cheapest first:

1. byte-count and magic-byte checks before Pillow sees anything, so only the six accepted
   formats reach a Pillow plugin, and only the plugin for the format the bytes claim;
2. the dimensions declared in the header are checked against `DecodeLimits` before any
   pixel buffer is allocated, so a bomb declaring 100,000 x 100,000 costs a header parse;
3. pixels are decoded with Pillow's truncation tolerance left off, and every exception its
   plugins raise on malformed input becomes `ImageRejected` with a machine-readable reason.

Pillow's own bomb guard (`PIL.Image.MAX_IMAGE_PIXELS`) is process-global, so this module
never changes it and does not depend on it: the limits in (2) are per call. The guard still
runs inside `Image.open`; the default `max_pixels` sits below its warning threshold
(~89.5 MP), so at defaults it never fires on an image these limits accept. A caller that
raises `max_pixels` above that should raise Pillow's global once at start-up too. Likewise
`PIL.ImageFile.LOAD_TRUNCATED_IMAGES` is never set here; if the host process sets it,
truncated JPEG/PNG/GIF/BMP/TIFF files decode with grey fill instead of being refused.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import ExifTags, Image, UnidentifiedImageError

from faceledger.errors import EXIT_BAD_IMAGE, Refused

RejectReason = Literal[
    "empty",
    "too_many_bytes",
    "not_an_image",
    "unsupported_format",
    "too_many_pixels",
    "too_large_dimension",
    "decompression_bomb",
    "truncated",
    "corrupt",
    "unsupported_mode",
    "out_of_memory",
]

#: Pillow format names that `decode_image` accepts, in the spelling `sniff_format` returns.
ACCEPTED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")

_MiB = 1024 * 1024


# Rejections whose bytes are no image at all (415), or too many to read (413); else 422.
_HTTP_STATUS = {
    "too_many_bytes": 413,
    "empty": 415,
    "not_an_image": 415,
    "unsupported_format": 415,
}


class ImageRejected(Refused):
    """Bytes that will not be decoded.

    `reason` is a stable slug for metrics and API responses; `str(exc)` is for humans.
    """

    code = "bad_image"
    exit_status = EXIT_BAD_IMAGE

    def __init__(self, reason: RejectReason, message: str) -> None:
        super().__init__(message, reason=reason)
        self.reason: RejectReason = reason
        self.message = message
        self.http_status = _HTTP_STATUS.get(reason, self.http_status)

    def __reduce__(self) -> tuple[type[ImageRejected], tuple[RejectReason, str]]:
        # Workers send rejections across process boundaries; the default reduce would
        # rebuild the exception from `args` alone and lose `reason`.
        return (type(self), (self.reason, self.message))


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """Per-call ceilings on what one untrusted image may cost.

    The defaults admit any real photograph and little else:

    - `max_bytes` 50 MiB: above a maximum-quality JPEG from a 60 MP camera (~30-40 MB)
      and any web image, while bounding what a single request can make us buffer.
    - `max_pixels` 80 MP: covers 61 MP full-frame and 50 MP phone sensors, and stays
      below Pillow's global warning threshold (~89.5 MP). Decoding holds a few 4-byte
      buffers per pixel at its peak, so this bounds one decode to roughly 1 GB.
    - `max_side` 20,000: admits long panoramas but refuses degenerate strips (50,000 x 1)
      that fit the pixel budget yet break resizing and detection downstream.

    A header declaring more than twice `max_pixels` is reported as a decompression bomb
    (the same 2x convention Pillow uses); merely exceeding it is `too_many_pixels`.
    """

    max_bytes: int = 50 * _MiB
    max_pixels: int = 80_000_000
    max_side: int = 20_000

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_pixels", "max_side"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"DecodeLimits.{name} must be a positive int, got {value!r}")


DEFAULT_LIMITS = DecodeLimits()


@dataclass(frozen=True, slots=True)
class DecodedImage:
    """A decoded image, upright (EXIF orientation applied), first frame only.

    `rgb` is a read-only (H, W, 3) uint8 C-contiguous array; copy it to draw on it.
    `width` and `height` are the full-resolution size after orientation, i.e. the frame
    that face boxes are reported in. `scale` maps those pixels to `rgb`'s pixels
    (x_rgb = x_original * scale); it is 1.0 unless reduced JPEG decoding was used.
    """

    rgb: np.ndarray
    width: int
    height: int
    format: str
    scale: float


# Everything Pillow's decoders are known to raise on malformed input. Listed rather than
# `Exception` so that AssertionError, AttributeError and NameError from bugs still surface.
_PILLOW_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # includes UnidentifiedImageError and "image file is truncated"
    SyntaxError,  # plugins' "not a valid X file"
    ValueError,
    TypeError,
    struct.error,
    EOFError,
    LookupError,  # IndexError / KeyError from out-of-range offsets and tags
    ArithmeticError,  # ZeroDivisionError / OverflowError from absurd header fields
    RecursionError,
    MemoryError,
    Image.DecompressionBombError,
    # Pillow warns on some malformed input ("Corrupt EXIF data"); under -W error those
    # warnings, and DecompressionBombWarning, arrive as exceptions.
    Warning,
)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TIFF_PREFIXES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF
_WEBP_CHUNKS = (b"VP8 ", b"VP8L", b"VP8X")
_BMP_HEADER_SIZES = frozenset({12, 40, 52, 56, 64, 108, 124})  # the DIB headers Pillow reads

# Recognised only to say "we know what this is and refuse it" instead of "not an image".
_REFUSED_PREFIXES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "PDF"),
    (b"%!PS", "PostScript"),
    (b"\xc5\xd0\xd3\xc6", "EPS"),
    (b"8BPS", "PSD"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "JPEG XL"),
    (b"\xff\x0a", "JPEG XL"),
    (b"qoif", "QOI"),
    (b"DDS ", "DDS"),
    (b"gimp xcf", "XCF"),
    (b"v/1\x01", "OpenEXR"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"\x00\x00\x02\x00", "CUR"),
)
_HEIF_BRANDS = frozenset(
    {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"}
)

# EXIF orientation -> the transpose that makes the image upright (the table
# ImageOps.exif_transpose uses; applied here without its metadata rewriting, which can
# fail on malformed EXIF after the pixels are already fine).
_UPRIGHT: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPS_AXES = frozenset({5, 6, 7, 8})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_DCT_FACTORS = (8, 4, 2)  # the reductions libjpeg's scaled IDCT offers through draft()


def sniff_format(data: bytes) -> str | None:
    """Return the accepted format (see `ACCEPTED_FORMATS`) whose signature `data` starts
    with, or None.

    Stricter than Pillow's own checks where those are loose (BMP is "BM" plus a known DIB
    header size, WebP needs a VP8 chunk), so text that happens to start with "BM" is not an
    image. Only the first 18 bytes are read.
    """
    head = bytes(data[:18])
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(_PNG_SIGNATURE):
        return "PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP" and head[12:16] in _WEBP_CHUNKS:
        return "WEBP"
    dib_header_size = int.from_bytes(head[14:18], "little") if len(head) == 18 else 0
    if head[:2] == b"BM" and dib_header_size in _BMP_HEADER_SIZES:
        return "BMP"
    if head[:4] in _TIFF_PREFIXES:
        return "TIFF"
    return None


def decode_image(
    data: bytes, limits: DecodeLimits = DEFAULT_LIMITS, *, max_long_side: int | None = None
) -> DecodedImage:
    """Decode untrusted `data` to an upright RGB array of its first frame.

    With `max_long_side`, a JPEG larger than that is decoded at 1/2, 1/4 or 1/8 size by
    libjpeg's scaled IDCT (several times faster than decoding then resizing), choosing
    the smallest size whose long side is still >= `max_long_side`. Other formats are
    decoded at full size: resizing is the detector's job.

    Raises ImageRejected for anything that is not a sound image within `limits`.
    """
    if max_long_side is not None and max_long_side < 1:
        raise ValueError(f"max_long_side must be positive, got {max_long_side}")
    fmt = _admit(data, limits)
    try:
        return _decode(data, fmt, limits, max_long_side)
    except ImageRejected:
        raise
    except _PILLOW_ERRORS as exc:
        message = f"{fmt} data could not be decoded: {_describe(exc)}"
        raise ImageRejected(_reason_for(exc), message) from exc


def _admit(data: bytes, limits: DecodeLimits) -> str:
    """Checks that need no parsing; returns the sniffed format."""
    if not isinstance(data, bytes | bytearray):
        raise TypeError(f"expected bytes, got {type(data).__name__}")
    if not data:
        raise ImageRejected("empty", "no bytes to decode")
    if len(data) > limits.max_bytes:
        raise ImageRejected(
            "too_many_bytes", f"{len(data)} bytes exceeds the limit of {limits.max_bytes}"
        )
    fmt = sniff_format(data)
    if fmt is None:
        accepted = ", ".join(ACCEPTED_FORMATS)
        refused = _sniff_refused_format(data)
        if refused is not None:
            raise ImageRejected(
                "unsupported_format", f"{refused} is not an accepted format ({accepted})"
            )
        raise ImageRejected("not_an_image", f"data is not an image in {accepted} format")
    if fmt == "WEBP" and _riff_is_short(data):
        raise ImageRejected("truncated", "WebP data is shorter than its RIFF header declares")
    return fmt


def _sniff_refused_format(data: bytes) -> str | None:
    """Name formats we recognise but refuse (documents, vector and newer image codecs)."""
    head = bytes(data[:1024])
    for prefix, name in _REFUSED_PREFIXES:
        if head.startswith(prefix):
            return name
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return "AVIF" if head[8:12].startswith(b"avi") else "HEIF"
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip().lower()
    xml_like = text.startswith((b"<svg", b"<?xml", b"<!--", b"<!doctype svg"))
    if xml_like and b"<svg" in text and b"<html" not in text:
        return "SVG"
    return None


def _riff_is_short(data: bytes) -> bool:
    """libwebp reports a cut-off file only as a generic failure; the RIFF size is exact."""
    declared = int.from_bytes(data[4:8], "little") + 8
    return len(data) < declared


def _decode(data: bytes, fmt: str, limits: DecodeLimits, max_long_side: int | None) -> DecodedImage:
    # Image.open parses only the header; no pixel buffer exists until load().
    with Image.open(io.BytesIO(data), formats=[fmt]) as im:
        width, height = im.size
        _check_dimensions(width, height, limits)
        scale = 1.0
        if fmt == "JPEG" and max_long_side is not None:
            scale = _draft_jpeg(im, max_long_side)
        im.load()  # first frame only: Pillow opens multi-frame files positioned on frame 0
        orientation = _exif_orientation(im)
        rgb = _rgb_array(_upright(im, orientation))
    if orientation in _SWAPS_AXES:
        width, height = height, width
    return DecodedImage(rgb=rgb, width=width, height=height, format=fmt, scale=scale)


def _check_dimensions(width: int, height: int, limits: DecodeLimits) -> None:
    """Refuse on the header's word, before anything is allocated for the pixels."""
    pixels = width * height
    if width < 1 or height < 1:
        raise ImageRejected("corrupt", f"header declares an empty {width}x{height} image")
    if pixels > 2 * limits.max_pixels:
        raise ImageRejected(
            "decompression_bomb",
            f"header declares {width}x{height} ({pixels} pixels), "
            f"far over the limit of {limits.max_pixels}",
        )
    if max(width, height) > limits.max_side:
        raise ImageRejected(
            "too_large_dimension",
            f"{width}x{height} has a side over the limit of {limits.max_side}",
        )
    if pixels > limits.max_pixels:
        raise ImageRejected(
            "too_many_pixels",
            f"{width}x{height} ({pixels} pixels) exceeds the limit of {limits.max_pixels}",
        )


def _dct_factor(width: int, height: int, max_long_side: int) -> int:
    """Largest DCT reduction whose output long side (rounded up) is still >= the target."""
    long_side, short_side = max(width, height), min(width, height)
    for factor in _DCT_FACTORS:
        if -(-long_side // factor) >= max_long_side and short_side >= factor:
            return factor
    return 1


def _draft_jpeg(im: Image.Image, max_long_side: int) -> float:
    """Ask libjpeg for a reduced decode; returns the scale it actually configured."""
    width, height = im.size
    factor = _dct_factor(width, height, max_long_side)
    if factor == 1:
        return 1.0
    # draft() picks the largest factor f with size // request >= f; requesting
    # size // factor makes that exactly `factor`.
    configured = im.draft(None, (width // factor, height // factor))
    if configured is None:  # e.g. a multi-tile JPEG: Pillow decodes it at full size
        return 1.0
    _, box = configured
    return box[2] / width


def _exif_orientation(im: Image.Image) -> int:
    """EXIF orientation 1-8; 1 when absent or unreadable, since bad metadata is no reason
    to refuse good pixels."""
    try:
        value = im.getexif().get(ExifTags.Base.Orientation, 1)
    except _PILLOW_ERRORS:
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _upright(im: Image.Image, orientation: int) -> Image.Image:
    method = _UPRIGHT.get(orientation)
    return im if method is None else im.transpose(method)


def _rgb_array(im: Image.Image) -> np.ndarray:
    """Pixels of any mode as a read-only (H, W, 3) uint8 array."""
    try:
        rgb = _to_rgb(im)
    except ValueError as exc:  # "conversion from X to Y not supported"
        raise ImageRejected("unsupported_mode", f"cannot convert mode {im.mode} to RGB") from exc
    # Read-only: built over the bytes Pillow exports, so no second copy is made.
    array = np.asarray(rgb, dtype=np.uint8)
    if not array.flags.c_contiguous:
        array = np.ascontiguousarray(array)
    array.setflags(write=False)
    return array


def _to_rgb(im: Image.Image) -> Image.Image:
    """Convert to RGB: high-bit-depth grey is scaled, alpha is composited on white."""
    if im.mode.startswith("I"):
        return _scale_high_bit_depth(im).convert("RGB")
    if im.mode in _ALPHA_MODES or "transparency" in im.info:
        return _flatten_on_white(im)
    if im.mode == "RGB":
        return im
    return im.convert("RGB")  # 1, L, P, CMYK, YCbCr, LAB, HSV, F (clamped)


def _scale_high_bit_depth(im: Image.Image) -> Image.Image:
    """16-bit (and 32-bit int, read as 16-bit) grey to 8-bit by keeping the high byte.

    Pillow's own conversion clips at 255, which would turn most 16-bit images white.
    """
    grey = np.clip(np.asarray(im), 0, 65535) >> 8
    return Image.fromarray(grey.astype(np.uint8))  # 2-D uint8 -> mode L


def _flatten_on_white(im: Image.Image) -> Image.Image:
    """Composite on white: transparent pixels often hold black or garbage colour, and a
    white page is what a viewer would have shown behind them."""
    rgba = im if im.mode == "RGBA" else im.convert("RGBA")
    canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    canvas.alpha_composite(rgba)
    return canvas.convert("RGB")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, UnidentifiedImageError):  # its message names only a BytesIO object
        return "the header is not valid"
    return f"{type(exc).__name__}: {exc}"[:300]


def _reason_for(exc: BaseException) -> RejectReason:
    """Classify a Pillow failure; anything not clearly a bomb, truncation or OOM is corrupt."""
    if isinstance(exc, Image.DecompressionBombError | Image.DecompressionBombWarning):
        return "decompression_bomb"
    if isinstance(exc, MemoryError):
        return "out_of_memory"
    if isinstance(exc, EOFError) or (isinstance(exc, OSError) and "truncated" in str(exc)):
        return "truncated"
    if isinstance(exc, ValueError) and "Decompressed data too large" in str(exc):
        return "decompression_bomb"  # a zTXt/iCCP chunk that inflates past Pillow's cap
    return "corrupt"
