"""One way to open an ONNX model: every model session in the project is made here.

Keeping session options in one place (threads, graph optimisation) means the embedder and
the age model are tuned together, and a worker process can size them to its share of cores.
"""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort


def onnx_session(model: Path | bytes, threads: int = 1) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
