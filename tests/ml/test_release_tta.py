"""The release step's mirror TTA rule (issue 24): a head of a file keeps mirror test-time augmentation only where
it buys at least ``MIN_TTA_GAIN`` accuracy on PublicTest, measured on the finished file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is in the `train` extra")

from classmood.evaluation.datasets import load_fer2013  # noqa: E402
from classmood.evaluation.heads import evaluate_onnx  # noqa: E402
from classmood.ml import export  # noqa: E402
from classmood.ml.export import choose_head_tta, export_onnx  # noqa: E402
from classmood.ml.model import HEADS, build_model  # noqa: E402
from classmood.vision.classifier import EmotionClassifier  # noqa: E402


def quiet(_: str) -> None:
    """No log lines in the tests."""


@pytest.fixture()
def exported(tmp_path: Path) -> Path:
    torch.manual_seed(11)
    path = tmp_path / "net.onnx"
    export_onnx(build_model("cm-tiny").eval(), path)
    return path


def _tta(path: Path) -> dict[str, str]:
    contract = EmotionClassifier(path).contract
    return {h: contract.head_tta(h) for h in contract.head_names}


def test_the_gain_is_what_evaluation_measures(exported: Path, learnable_npz: Path) -> None:
    data = load_fer2013(learnable_npz)
    gains = choose_head_tta(exported, data, quiet)
    runs = [evaluate_onnx(data, model_path=exported, split="PublicTest", flip_tta=f).heads for f in (True, False)]
    for head in HEADS:
        expected = runs[0][head].scores[head].metrics.accuracy - runs[1][head].scores[head].metrics.accuracy
        assert gains[head] == pytest.approx(expected)


def without_probs(path: Path, faces: np.ndarray) -> np.ndarray:
    return EmotionClassifier(path, flip_tta=False).predict_heads(faces)["crowd"]


def test_heads_below_the_gain_stop_mirroring(exported: Path, learnable_npz: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    data = load_fer2013(learnable_npz)
    faces = data.split("PublicTest").pixels[:9]
    before = without_probs(exported, faces)
    monkeypatch.setattr(export, "MIN_TTA_GAIN", -1.0)  # any gain is enough: every head mirrors
    choose_head_tta(exported, data, quiet)
    assert _tta(exported) == {h: "mirror" for h in HEADS}
    monkeypatch.setattr(export, "MIN_TTA_GAIN", 1.01)  # no gain is enough: none does, and the classifier follows
    gains = choose_head_tta(exported, data, quiet)
    assert _tta(exported) == {h: "none" for h in HEADS}
    assert not EmotionClassifier(exported).flip_tta
    np.testing.assert_allclose(EmotionClassifier(exported).predict(faces), before, atol=0)
    # exactly the crowd head's gain is enough for it; the other head mirrors only if it gains as much
    monkeypatch.setattr(export, "MIN_TTA_GAIN", gains["crowd"])
    choose_head_tta(exported, data, quiet)
    assert _tta(exported) == {h: "mirror" if g >= gains["crowd"] else "none" for h, g in gains.items()}
