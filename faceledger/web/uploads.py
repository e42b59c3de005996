"""Uploaded photos: read within the byte limit, then left to the services' decoder.

The body limit (`security.BodyLimit`) already stops what no photo could be; this caps the
photo itself at the decoder's `max_bytes`, so the same `DecodeLimits` decide bytes here and
pixels and dimensions in the decoder. Whatever passes is refused (and ledgered) by the
service if it is not a sound image, with `errors.upload_status` choosing 415 or 422.
"""

from __future__ import annotations

from fastapi import UploadFile

from faceledger.faces.decode import DecodeLimits
from faceledger.web.errors import ApiError


def read_photo(upload: UploadFile, limits: DecodeLimits) -> bytes:
    data = upload.file.read(limits.max_bytes + 1)
    if len(data) > limits.max_bytes:
        raise ApiError(
            413,
            "too_many_bytes",
            f"the photo exceeds the limit of {limits.max_bytes} bytes",
            reason="too_many_bytes",
        )
    return data
