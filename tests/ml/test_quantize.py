"""The int8 copy of the shipped network: which parts stay in float, and that it still says what fp32 says."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from classmood.ml.quantize import PRECISION, float_stem, linear_heads, quantize_int8
from classmood.vision.classifier import EmotionClassifier, default_model_path
from classmood.vision.preprocess import faces_to_input

FP32 = default_model_path("fp32")


@pytest.fixture(scope="module")
def faces() -> np.ndarray:
    """96 grey face crops: the astronaut's face (scikit-image) shifted, scaled, mirrored and re-lit."""
    from skimage import data

    grey = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)
    rng = np.random.default_rng(0)
    crops = []
    for _ in range(96):
        side = int(rng.integers(130, 190))
        x, y = int(rng.integers(150, 200)), int(rng.integers(30, 70))
        crop = cv2.resize(grey[y : y + side, x : x + side], (48, 48), interpolation=cv2.INTER_AREA)
        crop = crop[:, ::-1] if rng.random() < 0.5 else crop
        crops.append(np.clip(crop * rng.uniform(0.6, 1.3) + rng.uniform(-30, 30), 0, 255).astype(np.uint8))
    return np.stack(crops)


def _run(model: onnx.ModelProto | Path, x: np.ndarray) -> list[np.ndarray]:
    source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    return [np.asarray(o) for o in session.run(None, {session.get_inputs()[0].name: x})]


def test_the_float_stem_computes_the_same_values(faces: np.ndarray) -> None:
    model = onnx.load(str(FP32))
    names = float_stem(model)
    ops = {n.name: n.op_type for n in model.graph.node}
    assert [ops[name] for name in names] == ["Conv", "MaxPool", "Relu"]
    onnx.checker.check_model(model)
    x = faces_to_input(faces)
    for before, after in zip(_run(FP32, x), _run(model, x), strict=True):
        np.testing.assert_allclose(after, before, atol=1e-6)
    # Once rewritten, the stem is no longer Conv -> Relu -> MaxPool: a second call changes nothing.
    again = onnx.load_from_string(model.SerializeToString())
    assert float_stem(again) == [] and again == model


def test_the_int8_copy_keeps_stem_and_heads_in_float(faces: np.ndarray, tmp_path: Path) -> None:
    path = quantize_int8(FP32, tmp_path / "m.int8.onnx", faces)
    model = onnx.load(str(path))
    ops = [n.op_type for n in model.graph.node]
    assert ops[:4] == ["Conv", "MaxPool", "Relu", "QuantizeLinear"]
    assert ops.count("Gemm") == 2 and "QGemm" not in ops and len(linear_heads(model)) == 2
    assert ops.count("QLinearConv") == 9  # every other convolution runs on integers
    clf = EmotionClassifier(path, head="crowd")
    assert clf.metadata["precision"] == PRECISION
    # The same answers as the float network on the faces it was calibrated on, within int8 rounding.
    reference = EmotionClassifier(FP32, head="crowd")
    ours, theirs = clf.predict_heads(faces), reference.predict_heads(faces)
    assert set(ours) == set(theirs) == {"crowd", "fer2013"}
    for head in ours:
        assert np.abs(ours[head] - theirs[head]).mean() < 0.02
        assert (ours[head].argmax(1) == theirs[head].argmax(1)).mean() >= 0.9
