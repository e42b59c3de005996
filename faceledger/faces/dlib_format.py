"""Read the weights of dlib's face-recognition ResNet straight from its `.dat` file.

dlib built without BLAS needs ~95 ms per face; the same network in onnxruntime is an order
of magnitude faster. To get there without depending on dlib's C++ at conversion time, this
module parses dlib's own binary serialization of `dlib_face_recognition_resnet_model_v1.dat`
and checks every layer against the known architecture (dlib's `dnn_face_recognition_ry_model`),
so that a different or damaged file fails loudly with a `ValueError` naming the byte offset
instead of producing a silently wrong network.

Format notes (from the bytes of the packaged file): integers are one byte holding the
number of little-endian bytes that follow (0x80 set when negative), then those bytes;
strings are a packed length and raw characters; floats outside tensors are a packed
mantissa and a packed base-2 exponent; bools are the characters '0' / '1'; tensors are
version 2, then num_samples, k, nr, nc, then raw little-endian float32 values. Wrappers
serialize their version, then their subnetwork, then their own layer, so all wrapper
versions come first (output to input) and the layers follow from input to output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

INPUT_SIZE = 150
EMBEDDING_DIM = 128

_MAX_TENSOR_VALUES = 1 << 26
_SPECIAL_EXPONENTS = {32000: math.inf, 32001: -math.inf, 32002: math.nan}


# --- what the reader returns ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConvWeights:
    """A convolution: filters [out, in, kh, kw] and biases [out], plus stride and padding."""

    filters: np.ndarray
    biases: np.ndarray
    stride: int
    padding: int


@dataclass(frozen=True, slots=True)
class AffineWeights:
    """A per-channel affine layer: y = gamma * x + beta (the frozen batch norm)."""

    gamma: np.ndarray
    beta: np.ndarray


@dataclass(frozen=True, slots=True)
class ResidualBlock:
    """relu(shortcut(x) + affine(conv(relu(affine(conv(x)))))).

    When `downsample` is true the first conv has stride 2 and the shortcut is a 2x2 stride-2
    average pool; dlib then adds tensors of different shapes by zero-padding the smaller
    one at the trailing end of each dimension.
    """

    conv1: ConvWeights
    affine1: AffineWeights
    conv2: ConvWeights
    affine2: AffineWeights
    downsample: bool


@dataclass(frozen=True, slots=True)
class ResnetWeights:
    """Everything needed to rebuild the network, in the order it runs.

    `channel_means` are the input layer's R, G, B means; the input layer computes
    (pixel - mean) / 256 per channel. `fc` is stored as dlib keeps it, [inputs, outputs],
    so the descriptor is `pooled @ fc`.
    """

    channel_means: tuple[float, float, float]
    input_size: int
    stem_conv: ConvWeights
    stem_affine: AffineWeights
    blocks: tuple[ResidualBlock, ...]
    fc: np.ndarray


# --- the known architecture ----------------------------------------------------------------

# dlib's levels in the order they run (level4 .. level0): (filters, blocks, first block
# downsamples). A downsampling block has a stride-2 first conv and an average-pool shortcut.
_LEVELS = ((32, 3, False), (64, 4, True), (128, 3, True), (256, 3, True), (256, 1, True))
# (filters, downsample) per residual block, in the order they run.
ARCHITECTURE: tuple[tuple[int, bool], ...] = tuple(
    (filters, down and i == 0) for filters, count, down in _LEVELS for i in range(count)
)
STEM_FILTERS = 32
STEM_KERNEL = 7
STEM_POOL = 3  # 3x3 max pool, stride 2, no padding


@dataclass(frozen=True, slots=True)
class _Layer:
    """One expected entry of the layer stack: a dlib layer name, or 'tag'/'skip'."""

    kind: str
    filters: int = 0
    in_channels: int = 0
    kernel: int = 0
    stride: int = 1


def _block_layers(filters: int, in_channels: int, downsample: bool) -> list[_Layer]:
    stride = 2 if downsample else 1
    body = [
        _Layer("tag"),
        _Layer("con_", filters, in_channels, 3, stride),
        _Layer("affine_", filters),
        _Layer("relu_"),
        _Layer("con_", filters, filters, 3, 1),
        _Layer("affine_", filters),
    ]
    if downsample:
        body += [_Layer("tag"), _Layer("skip"), _Layer("avg_pool_", kernel=2, stride=2)]
    return [*body, _Layer("add_prev_"), _Layer("relu_")]


def _expected_layers() -> list[_Layer]:
    """The network's layer stack from input to output, tag and skip layers included."""
    layers = [
        _Layer("input_rgb_image_sized"),
        _Layer("con_", STEM_FILTERS, 3, STEM_KERNEL, 2),
        _Layer("affine_", STEM_FILTERS),
        _Layer("relu_"),
        _Layer("max_pool_", kernel=STEM_POOL, stride=2),
    ]
    channels = STEM_FILTERS
    for filters, downsample in ARCHITECTURE:
        layers += _block_layers(filters, channels, downsample)
        channels = filters
    layers += [_Layer("avg_pool_", kernel=0, stride=1), _Layer("fc_", EMBEDDING_DIM, channels)]
    return layers


# --- primitive decoding --------------------------------------------------------------------


class _Stream:
    """A cursor over the file's bytes that reports every problem with its offset."""

    def __init__(self, data: bytes, source: str) -> None:
        self.data = data
        self.pos = 0
        self.source = source

    def error(self, message: str, at: int | None = None) -> ValueError:
        offset = self.pos if at is None else at
        return ValueError(f"{self.source}: offset {offset}: {message}")

    def take(self, count: int, what: str) -> bytes:
        if count < 0 or self.pos + count > len(self.data):
            raise self.error(f"file ends inside {what} (needs {count} bytes)")
        chunk = self.data[self.pos : self.pos + count]
        self.pos += count
        return chunk

    def integer(self, what: str) -> int:
        start = self.pos
        head = self.take(1, what)[0]
        size = head & 0x7F
        if size > 8:
            raise self.error(f"bad integer header 0x{head:02x} for {what}", start)
        value = int.from_bytes(self.take(size, what), "little")
        return -value if head & 0x80 else value

    def expect_int(self, expected: int, what: str) -> None:
        start = self.pos
        value = self.integer(what)
        if value != expected:
            raise self.error(f"{what} is {value}, expected {expected}", start)

    def string(self, what: str) -> str:
        start = self.pos
        length = self.integer(f"length of {what}")
        if not 0 <= length <= 256:
            raise self.error(f"implausible length {length} for {what}", start)
        raw = self.take(length, what)
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise self.error(f"{what} is not ASCII: {raw!r}", start) from None

    def expect_string(self, expected: str, what: str) -> None:
        start = self.pos
        value = self.string(what)
        if value != expected:
            raise self.error(f"{what} is {value!r}, expected {expected!r}", start)

    def real(self, what: str) -> float:
        mantissa = self.integer(f"mantissa of {what}")
        exponent = self.integer(f"exponent of {what}")
        if exponent in _SPECIAL_EXPONENTS:
            return _SPECIAL_EXPONENTS[exponent]
        return math.ldexp(mantissa, exponent)

    def boolean(self, what: str) -> bool:
        start = self.pos
        char = self.take(1, what)
        if char not in (b"0", b"1"):
            raise self.error(f"{what} is {char!r}, expected '0' or '1'", start)
        return char == b"1"

    def tensor(self, what: str) -> np.ndarray:
        start = self.pos
        self.expect_int(2, f"version of tensor {what}")
        shape = tuple(self.integer(f"dimension of tensor {what}") for _ in range(4))
        count = math.prod(shape)
        if min(shape) < 0 or count > _MAX_TENSOR_VALUES:
            raise self.error(f"implausible shape {shape} for tensor {what}", start)
        raw = self.take(4 * count, f"values of tensor {what}")
        return np.frombuffer(raw, dtype="<f4").reshape(shape).astype(np.float32)

    def alias_shape(self, what: str) -> tuple[int, int, int, int]:
        self.expect_int(1, f"version of alias tensor {what}")
        n, k, nr, nc = (self.integer(f"dimension of alias {what}") for _ in range(4))
        return n, k, nr, nc

    def expect_alias(self, expected: tuple[int, int, int, int], what: str) -> None:
        start = self.pos
        shape = self.alias_shape(what)
        if shape != expected:
            raise self.error(f"{what} has shape {shape}, expected {expected}", start)


# --- layers --------------------------------------------------------------------------------


def _read_input(s: _Stream) -> tuple[float, float, float]:
    s.expect_string("input_rgb_image_sized", "input layer name")
    start = s.pos
    means = (s.real("red mean"), s.real("green mean"), s.real("blue mean"))
    if not all(0.0 <= m <= 255.0 for m in means):
        raise s.error(f"channel means {means} are outside 0..255", start)
    s.expect_int(INPUT_SIZE, "input rows")
    s.expect_int(INPUT_SIZE, "input columns")
    return means


def _read_multipliers(s: _Stream, what: str) -> None:
    for name in ("learning rate", "weight decay", "bias learning rate", "bias weight decay"):
        s.real(f"{what} {name} multiplier")


def _read_conv(s: _Stream, layer: _Layer) -> ConvWeights:
    s.expect_string("con_4", "conv layer name")
    start = s.pos
    params = s.tensor("conv params").reshape(-1)
    out, inp, k = layer.filters, layer.in_channels, layer.kernel
    s.expect_int(out, "conv filter count")
    s.expect_int(k, "conv kernel rows")
    s.expect_int(k, "conv kernel columns")
    s.expect_int(layer.stride, "conv row stride")
    s.expect_int(layer.stride, "conv column stride")
    padding = k // 2 if layer.stride == 1 else 0
    s.expect_int(padding, "conv row padding")
    s.expect_int(padding, "conv column padding")
    s.expect_alias((out, inp, k, k), "conv filters")
    s.expect_alias((1, out, 1, 1), "conv biases")
    _read_multipliers(s, "conv")
    n_filters = out * inp * k * k
    if params.size != n_filters + out:
        raise s.error(f"conv params hold {params.size} values, expected {n_filters + out}", start)
    filters = params[:n_filters].reshape(out, inp, k, k)
    return ConvWeights(filters, params[n_filters:].copy(), layer.stride, padding)


def _read_affine(s: _Stream, layer: _Layer) -> AffineWeights:
    s.expect_string("affine_", "affine layer name")
    start = s.pos
    params = s.tensor("affine params").reshape(-1)
    channels = layer.filters
    s.expect_alias((1, channels, 1, 1), "affine gamma")
    s.expect_alias((1, channels, 1, 1), "affine beta")
    s.expect_int(0, "affine mode (0 = per channel)")
    if params.size != 2 * channels:
        raise s.error(f"affine params hold {params.size} values, expected {2 * channels}", start)
    return AffineWeights(params[:channels].copy(), params[channels:].copy())


def _read_pool(s: _Stream, layer: _Layer) -> None:
    name = f"{layer.kind}2"
    s.expect_string(name, "pool layer name")
    s.expect_int(layer.kernel, f"{name} window rows")
    s.expect_int(layer.kernel, f"{name} window columns")
    s.expect_int(layer.stride, f"{name} row stride")
    s.expect_int(layer.stride, f"{name} column stride")
    s.expect_int(0, f"{name} row padding")
    s.expect_int(0, f"{name} column padding")


def _read_fc(s: _Stream, layer: _Layer) -> np.ndarray:
    s.expect_string("fc_2", "fc layer name")
    s.expect_int(layer.filters, "fc output count")
    s.expect_int(layer.in_channels, "fc input count")
    start = s.pos
    params = s.tensor("fc params")
    expected = (layer.in_channels, layer.filters, 1, 1)
    if params.shape != expected:
        raise s.error(f"fc params have shape {params.shape}, expected {expected}", start)
    s.expect_alias(expected, "fc weights")
    s.expect_alias((0, 0, 0, 0), "fc biases")
    s.expect_int(1, "fc bias mode (1 = no bias)")
    _read_multipliers(s, "fc")
    return params.reshape(layer.in_channels, layer.filters)


def _read_details(s: _Stream, layer: _Layer) -> object:
    if layer.kind == "con_":
        return _read_conv(s, layer)
    if layer.kind == "affine_":
        return _read_affine(s, layer)
    if layer.kind in ("max_pool_", "avg_pool_"):
        _read_pool(s, layer)
        return None
    if layer.kind == "fc_":
        return _read_fc(s, layer)
    s.expect_string(layer.kind, "layer name")  # relu_ and add_prev_ carry no parameters
    return None


def _read_layer_state(s: _Stream, input_layer: bool) -> None:
    """Skip what dlib's add_layer keeps besides the layer: 3 flags and 3 work tensors."""
    for flag in ("setup called", "gradient stale", "output disabled"):
        s.boolean(f"add_layer flag '{flag}'")
    for name in ("x_grad", "cached_output", "grad_final" if input_layer else "params_grad"):
        s.tensor(name)
    if input_layer:
        s.expect_int(1, "sample expansion factor")


# --- the file ------------------------------------------------------------------------------


def _read_header(s: _Stream, layers: list[_Layer]) -> None:
    """The loss layer, then every wrapper's version from output down to input."""
    s.expect_int(1, "loss layer version")
    s.expect_string("loss_metric_2", "loss layer name")
    s.real("loss margin")
    s.real("loss distance threshold")
    wrappers = [layer for layer in reversed(layers) if layer.kind != "input_rgb_image_sized"]
    for depth, layer in enumerate(wrappers):
        if layer.kind in ("tag", "skip"):
            version = 1
        elif depth == len(wrappers) - 1:
            version = 3  # the add_layer that sits on the input layer
        else:
            version = 2
        s.expect_int(version, f"version of wrapper {depth} ({layer.kind} layer)")


def _assemble(means: tuple[float, float, float], details: list[object]) -> ResnetWeights:
    convs = [d for d in details if isinstance(d, ConvWeights)]
    affines = [d for d in details if isinstance(d, AffineWeights)]
    fc = next(d for d in details if isinstance(d, np.ndarray))
    blocks = tuple(
        ResidualBlock(
            convs[1 + 2 * i], affines[1 + 2 * i], convs[2 + 2 * i], affines[2 + 2 * i], down
        )
        for i, (_, down) in enumerate(ARCHITECTURE)
    )
    return ResnetWeights(means, INPUT_SIZE, convs[0], affines[0], blocks, fc)


def parse_resnet(data: bytes, source: str = "<bytes>") -> ResnetWeights:
    """Parse the bytes of `dlib_face_recognition_resnet_model_v1.dat`; ValueError if off."""
    s = _Stream(data, source)
    layers = _expected_layers()
    _read_header(s, layers)
    means = _read_input(s)
    details: list[object] = []
    for index, layer in enumerate(layers[1:]):
        if layer.kind in ("tag", "skip"):
            continue
        details.append(_read_details(s, layer))
        _read_layer_state(s, input_layer=index == 0)
    if s.pos != len(data):
        raise s.error(f"{len(data) - s.pos} unexpected bytes after the last layer")
    return _assemble(means, details)


def read_resnet(dat_path: Path) -> ResnetWeights:
    """Read and validate dlib's face ResNet `.dat` file."""
    return parse_resnet(Path(dat_path).read_bytes(), str(dat_path))
