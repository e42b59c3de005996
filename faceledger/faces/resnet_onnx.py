"""Turn dlib's face-recognition ResNet into an ONNX model that onnxruntime can run fast.

dlib here is built without BLAS (~95 ms per face); the same network in onnxruntime runs
in a few milliseconds. The weights come from our own reader (`dlib_format`), so no
third-party converter is involved, and the graph reproduces dlib's quirks exactly:

* input: `chips`, uint8 [N, 150, 150, 3] RGB aligned face chips, exactly what
  `dlib.get_face_chip(img, shape, size=150, padding=0.25)` returns. The graph itself
  subtracts the per-channel means stored in the `.dat` and divides by 256, as dlib's
  `input_rgb_image_sized` does; the caller does no preprocessing.
* output: `embeddings`, float32 [N, 128], the raw descriptor, NOT normalised (the same
  vector `compute_face_descriptor` returns; the caller normalises).
* each affine (frozen batch norm) is folded into the convolution before it;
* stride-2 convs and pools use no padding, stride-1 3x3 convs pad by 1;
* residual additions whose operands differ in shape (channels 32 -> 64, or 3x3 vs 4x4 maps)
  zero-pad the smaller operand at the trailing end of each dimension, as dlib's add_prev does.

Sessions are not opened here; see `faceledger.faces.sessions`.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from faceledger.faces.dlib_format import (
    EMBEDDING_DIM,
    STEM_POOL,
    AffineWeights,
    ConvWeights,
    ResidualBlock,
    ResnetWeights,
    read_resnet,
)

OPSET = 17
INPUT_NAME = "chips"
OUTPUT_NAME = "embeddings"
# Bump when the graph changes, so cached models built by an older converter are not reused.
CONVERTER_VERSION = 1

Shape = tuple[int, int, int]  # channels, rows, columns of one sample


class _Graph:
    """Accumulates nodes and initializers with unique names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def name(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def const(self, stem: str, value: np.ndarray) -> str:
        name = self.name(stem)
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def op(self, op_type: str, inputs: list[str], output: str | None = None, **attrs: Any) -> str:
        out = output or self.name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out


def _pool_size(size: int, kernel: int, stride: int, padding: int = 0) -> int:
    """dlib's (and ONNX's floor-mode) output size of a conv or pool."""
    return 1 + (size + 2 * padding - kernel) // stride


def _conv_affine(
    g: _Graph, x: str, shape: Shape, conv: ConvWeights, affine: AffineWeights
) -> tuple[str, Shape]:
    """conv followed by affine, folded: W' = W * gamma, b' = b * gamma + beta."""
    gamma = affine.gamma.astype(np.float64)
    weights = conv.filters.astype(np.float64) * gamma[:, None, None, None]
    bias = conv.biases.astype(np.float64) * gamma + affine.beta.astype(np.float64)
    out_channels, _, kernel, _ = conv.filters.shape
    p = conv.padding
    y = g.op(
        "Conv",
        [x, g.const("w", weights.astype(np.float32)), g.const("b", bias.astype(np.float32))],
        kernel_shape=[kernel, kernel],
        strides=[conv.stride, conv.stride],
        pads=[p, p, p, p],
    )
    size = _pool_size(shape[1], kernel, conv.stride, p)
    return y, (out_channels, size, size)


def _pad_to(g: _Graph, x: str, shape: Shape, target: Shape) -> str:
    """Zero-pad at the trailing end of channels, rows and columns up to `target`."""
    extra = [t - s for s, t in zip(shape, target, strict=True)]
    if not any(extra):
        return x
    pads = np.array([0, 0, 0, 0, 0, *extra], dtype=np.int64)
    return g.op("Pad", [x, g.const("pads", pads)], mode="constant")


def _add_prev(g: _Graph, a: str, a_shape: Shape, b: str, b_shape: Shape) -> tuple[str, Shape]:
    """dlib's add_prev: the sum over the larger extent of each dimension, zeros elsewhere."""
    target: Shape = (
        max(a_shape[0], b_shape[0]),
        max(a_shape[1], b_shape[1]),
        max(a_shape[2], b_shape[2]),
    )
    total = g.op("Add", [_pad_to(g, a, a_shape, target), _pad_to(g, b, b_shape, target)])
    return total, target


def _block(g: _Graph, x: str, shape: Shape, block: ResidualBlock) -> tuple[str, Shape]:
    h, h_shape = _conv_affine(g, x, shape, block.conv1, block.affine1)
    h = g.op("Relu", [h])
    h, h_shape = _conv_affine(g, h, h_shape, block.conv2, block.affine2)
    shortcut, s_shape = x, shape
    if block.downsample:
        shortcut = g.op("AveragePool", [x], kernel_shape=[2, 2], strides=[2, 2])
        size = _pool_size(shape[1], 2, 2)
        s_shape = (shape[0], size, size)
    total, total_shape = _add_prev(g, h, h_shape, shortcut, s_shape)
    return g.op("Relu", [total]), total_shape


def _input(g: _Graph, means: tuple[float, float, float]) -> str:
    """uint8 NHWC RGB -> float NCHW, (pixel - mean) / 256 as dlib's input layer does."""
    x = g.op("Cast", [INPUT_NAME], to=TensorProto.FLOAT)
    x = g.op("Transpose", [x], perm=[0, 3, 1, 2])
    x = g.op("Sub", [x, g.const("means", np.array(means, np.float32).reshape(1, 3, 1, 1))])
    return g.op("Mul", [x, g.const("scale", np.array(1 / 256, dtype=np.float32))])


def resnet_graph(weights: ResnetWeights) -> onnx.ModelProto:
    """Build and check the ONNX model for already-read weights."""
    g = _Graph()
    x = _input(g, weights.channel_means)
    size = weights.input_size
    x, shape = _conv_affine(g, x, (3, size, size), weights.stem_conv, weights.stem_affine)
    x = g.op("Relu", [x])
    x = g.op("MaxPool", [x], kernel_shape=[STEM_POOL, STEM_POOL], strides=[2, 2])
    pooled = _pool_size(shape[1], STEM_POOL, 2)
    shape = (shape[0], pooled, pooled)
    for block in weights.blocks:
        x, shape = _block(g, x, shape, block)
    x = g.op("GlobalAveragePool", [x])
    x = g.op("Flatten", [x], axis=1)
    g.op("MatMul", [x, g.const("fc", np.ascontiguousarray(weights.fc))], output=OUTPUT_NAME)

    chips = helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8, ["N", size, size, 3])
    out = helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", EMBEDDING_DIM])
    graph = helper.make_graph(g.nodes, "dlib_face_resnet_v1", [chips], [out], g.initializers)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="faceledger",
        doc_string="dlib face ResNet v1: uint8 RGB 150x150 chips -> raw 128-D descriptors",
    )
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def build_resnet_onnx(dat_path: Path) -> bytes:
    """Read dlib's `.dat` and return the serialized ONNX model."""
    serialized: bytes = resnet_graph(read_resnet(dat_path)).SerializeToString()
    return serialized


def _cache_name(dat_path: Path) -> str:
    digest = hashlib.sha256(Path(dat_path).read_bytes()).hexdigest()[:16]
    return f"dlib_face_resnet_v1-{digest}-c{CONVERTER_VERSION}.onnx"


def cached_resnet_onnx(dat_path: Path, cache_dir: Path) -> Path:
    """Convert once per `.dat` content into `cache_dir` (atomically) and return the path."""
    target = Path(cache_dir) / _cache_name(dat_path)
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    data = build_resnet_onnx(dat_path)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
