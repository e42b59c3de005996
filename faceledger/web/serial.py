"""One image at a time for the web app's threads: dlib's detector is not safe for
concurrent use (onnxruntime inside it uses both cores anyway). Database transactions need
no such lock: they take turns in the database itself (see `store.db`)."""

from __future__ import annotations

import threading
from typing import Any

from faceledger.faces.pipeline import AnalysedImage, FacePipeline


class SerialPipeline(FacePipeline):
    """A FacePipeline that analyses one image at a time, whatever the number of threads."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lock = threading.Lock()

    def analyse(self, data: bytes, *, probe: bool = False) -> AnalysedImage:
        with self._lock:
            return super().analyse(data, probe=probe)
