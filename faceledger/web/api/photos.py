"""What routes taking a photo of a person outside a search (opt-outs, subject reports)
share: the form fields, and the API's answer when the decoder refuses the photo."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import File, Form, UploadFile

from faceledger.faces.decode import ImageRejected
from faceledger.web.errors import rejected_image

Photo = Annotated[UploadFile, File(description="A photo of the person.")]
FaceNumber = Annotated[int | None, Form(ge=1, description="Which face (1-based).")]


@contextmanager
def image_refusals(data: bytes) -> Iterator[None]:
    """Turn the decoder's refusal of `data` into a 413, 415 or 422 `bad_image` answer."""
    try:
        yield
    except ImageRejected as problem:
        raise rejected_image(problem, data) from None
