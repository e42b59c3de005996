"""The form fields of routes taking a photo of a person outside a search (opt-outs, subject
reports). The decoder's refusal of the photo answers for itself: 413, 415 or 422 `bad_image`."""

from __future__ import annotations

from typing import Annotated

from fastapi import File, Form, UploadFile

Photo = Annotated[UploadFile, File(description="A photo of the person.")]
FaceNumber = Annotated[int | None, Form(ge=1, description="Which face (1-based).")]
