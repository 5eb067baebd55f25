"""Post-training int8 quantisation of the exported ONNX model (onnxruntime's static quantiser).

Static quantisation with per-channel int8 weights and uint8 activations, in onnxruntime's
operator-oriented format (QLinearConv etc.), runs the network on integer kernels (VNNI where
the CPU has it). The activation ranges are calibrated on Training faces only, so neither test
split influences the quantised model. The result is checked by accuracy on PublicTest by the
caller (``classmood export --int8``, ``classmood quantize``), never on PrivateTest.

Three parts stay in float, where integers cost time or precision and save nothing
(``classmood bench model`` measures the whole; the model card has the figures):

- the stem (the first convolution, on the one-channel input, its ReLU and max-pool): with a single
  input channel the integer kernel spends its time re-quantising 32 x 48 x 48 outputs per face;
  in float, with the pooled output quantised, the stem takes a third of the time (60 against
  180 microseconds for a face and its mirror on one thread, of about 900 for the whole network);
- the heads' linear layers (192 x 7 multiply-adds each), so the logits are not rounded to 256 levels;
- everything after the logits (:func:`after_logits`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from classmood.evaluation.datasets import FaceDataset
from classmood.vision.preprocess import faces_to_input


class _FaceReader(CalibrationDataReader):  # type: ignore[misc]  # untyped base class
    """Feeds calibration faces to the quantiser in batches."""

    def __init__(self, input_name: str, x: npt.NDArray[np.float32], batch: int = 64) -> None:
        self.input_name, self.x, self.batch, self.pos = input_name, x, batch, 0

    def get_next(self) -> dict[str, npt.NDArray[np.float32]] | None:
        if self.pos >= len(self.x):
            return None
        chunk = self.x[self.pos : self.pos + self.batch]
        self.pos += self.batch
        return {self.input_name: chunk}


def quantize_int8(fp32_path: str | Path, out_path: str | Path, calibration_faces: npt.NDArray[np.uint8]) -> Path:
    """Write an int8 copy of ``fp32_path`` calibrated on uint8 grey faces (N, 48, 48); keeps the metadata.

    Weights use 7 of their 8 bits (``reduce_range``): CPUs without VNNI (AVX2 only, e.g. many AMD EPYC and
    older Intel parts) multiply uint8 by int8 with a 16-bit saturating instruction, and full-range weights
    overflow it; on such a CPU the full-range copy lost 1.5 points of accuracy. The stem, the heads' linear
    layers and everything after the logits stay in float (see the module's docstring).
    """
    src, out = Path(fp32_path), Path(out_path)
    session = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(src), str(pre))
        prepared = onnx.load(str(pre))
        in_float = float_stem(prepared) + linear_heads(prepared) + after_logits(prepared)
        onnx.save(prepared, str(pre))
        quantize_static(str(pre), str(out), _FaceReader(input_name, faces_to_input(calibration_faces)),
                        quant_format=QuantFormat.QOperator, per_channel=True, reduce_range=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=in_float)
    _copy_metadata(src, out, {"precision": PRECISION})
    return out


PRECISION = ("int8 (static, per-channel 7-bit weights, calibrated on 2048 Training faces; the stem, the heads' "
             "linear layers, bias, temperature and softmax in float)")


def float_stem(model: onnx.ModelProto) -> list[str]:
    """The stem's nodes (Conv -> Relu -> MaxPool on the graph's input), to keep in float; [] for another graph.

    The graph is rewritten in place to Conv -> MaxPool -> Relu, which computes exactly the same values (a
    maximum commutes with a rising function). Why: with Relu before MaxPool, onnxruntime's optimiser moves
    the QuantizeLinear that follows the pool above it (``QDQPropagationTransformer``), and the pool then runs
    on uint8 in NCHW order on a generic kernel, three times slower than the int8 stem it replaces. After the
    Relu the QuantizeLinear stays put, and onnxruntime fuses the Relu into its blocked (NCHWc) float pool.
    """
    nodes = list(model.graph.node)
    conv = _sole_consumer(model, model.graph.input[0].name, "Conv")
    relu = _sole_consumer(model, conv.output[0], "Relu") if conv else None
    pool = _sole_consumer(model, relu.output[0], "MaxPool") if relu else None
    if conv is None or relu is None or pool is None or len(pool.output) != 1:
        return []
    if not all(n.name for n in (conv, relu, pool)):
        raise ValueError("the graph's stem has unnamed nodes; they could not be kept in float")
    gone, pooled = relu.output[0], pool.output[0]  # the full-size ReLU output no longer exists
    pool.input[0], pool.output[0] = conv.output[0], f"{pooled}_before_relu"
    relu.input[0], relu.output[0] = pool.output[0], pooled
    kept = [v for v in model.graph.value_info if v.name != gone]
    del model.graph.value_info[:]
    model.graph.value_info.extend(kept)
    # The pool now comes first: it takes the ReLU's place in the (topologically sorted) node list.
    i, j = nodes.index(relu), nodes.index(pool)
    nodes[i], nodes[j] = pool, relu
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return [conv.name, pool.name, relu.name]


def _sole_consumer(model: onnx.ModelProto, tensor: str, op_type: str) -> onnx.NodeProto | None:
    """The one node that reads ``tensor``, if it is of ``op_type`` and the tensor is not a graph output."""
    readers: list[onnx.NodeProto] = [n for n in model.graph.node if tensor in n.input]
    if len(readers) != 1 or readers[0].op_type != op_type or any(o.name == tensor for o in model.graph.output):
        return None
    return readers[0]


def linear_heads(model: onnx.ModelProto) -> list[str]:
    """The linear layers after the last convolution (the heads), to keep in float."""
    nodes = list(model.graph.node)
    last_conv = max((i for i, n in enumerate(nodes) if n.op_type == "Conv"), default=-1)
    names = [n.name for n in nodes[last_conv + 1 :] if n.op_type in ("Gemm", "MatMul")]
    if not all(names):
        raise ValueError("the graph has unnamed linear heads; they could not be kept in float")
    return names


def after_logits(model: onnx.ModelProto) -> list[str]:
    """The nodes after the heads' last linear layer (bias, temperature, softmax, per-head outputs): they stay in
    float. So the probabilities are not rounded to steps of 1/256, and the int8 logits do not depend on the
    release step's bias and temperature, which are fitted on those very logits."""
    nodes = list(model.graph.node)
    last = max(i for i, n in enumerate(nodes) if n.op_type in ("Gemm", "MatMul"))
    names = [n.name for n in nodes[last + 1 :]]
    if not all(names):
        raise ValueError("the graph has unnamed nodes after its logits; they could not be kept in float")
    return names


def _copy_metadata(src: Path, out: Path, extra: dict[str, Any]) -> None:
    source, target = onnx.load(str(src)), onnx.load(str(out))
    del target.metadata_props[:]
    for prop in source.metadata_props:
        target.metadata_props.add(key=prop.key, value=prop.value)
    for key, value in extra.items():
        target.metadata_props.add(key=key, value=str(value))
    onnx.save(target, str(out))


def calibration_sample(pixels: npt.NDArray[np.uint8], n: int = 2048, seed: int = 0) -> npt.NDArray[np.uint8]:
    """A fixed random sample of Training faces for calibration."""
    rng = np.random.default_rng(seed)
    return pixels[rng.choice(len(pixels), size=min(n, len(pixels)), replace=False)]


def release_int8(fp32: str | Path, data: FaceDataset, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Write the int8 copy of an exported model, calibrated on the release step's Training faces (the file's
    adjustments stay as they are), and check both files on PublicTest (never on PrivateTest)."""
    from classmood.vision.classifier import int8_path

    out = quantize_int8(fp32, int8_path(fp32), calibration_sample(data.split("Training").pixels))
    return public_test_checks([Path(fp32), out], data, log)


def public_test_checks(paths: list[Path], data: FaceDataset, log: Callable[[str], None]) -> dict[str, Any]:
    """Each file's heads on PublicTest against both label sets, and each head's lowest recall on its own."""
    from classmood.evaluation.heads import evaluate_onnx

    checks: dict[str, Any] = {}
    for path in paths:
        ev = evaluate_onnx(data, model_path=path, split="PublicTest")
        checks[str(path)] = {h: {s.labels: s.metrics.accuracy for s in he.scores.values()}
                             for h, he in ev.heads.items()}
        # each head against its own labels (a head is named after the labels it learnt)
        checks[str(path)]["min_recall"] = {h: min(he.scores[h].metrics.recall) for h, he in ev.heads.items()
                                           if h in he.scores}
        log(f"{path}: PublicTest {checks[str(path)]}, {path.stat().st_size} bytes")
    return checks
