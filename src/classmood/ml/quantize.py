"""Post-training int8 quantisation of the exported ONNX model (onnxruntime's static quantiser).

Static quantisation with per-channel int8 weights and uint8 activations, in onnxruntime's
operator-oriented format (QLinearConv etc.), runs the network on integer kernels (VNNI where
the CPU has it). The activation ranges are calibrated on Training faces only, so neither test
split influences the quantised model. The result is checked by accuracy on PublicTest by the
caller (``classmood export --int8``), never on PrivateTest.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

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
    overflow it; on such a CPU the full-range copy lost 1.5 points of accuracy. Everything after the logits
    stays in float (:func:`after_logits`).
    """
    src, out = Path(fp32_path), Path(out_path)
    session = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(src), str(pre))
        quantize_static(str(pre), str(out), _FaceReader(input_name, faces_to_input(calibration_faces)),
                        quant_format=QuantFormat.QOperator, per_channel=True, reduce_range=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=after_logits(onnx.load(str(pre))))
    _copy_metadata(src, out, {"precision": "int8 (static, per-channel 7-bit weights, float bias, temperature and "
                                           "softmax, calibrated on 2048 Training faces)"})
    return out


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
