"""The CNN: shapes, size budget, a tiny training run that learns and resumes by the rule, ONNX export parity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is in the `train` extra")

from classmood.labels import NUM_CLASSES  # noqa: E402
from classmood.ml.checkpoint import ConfigMismatch, load_checkpoint  # noqa: E402
from classmood.ml.export import Adjustment, export_onnx  # noqa: E402
from classmood.ml.model import (  # noqa: E402
    VARIANTS,
    build_model,
    count_macs,
    count_parameters,
)
from classmood.ml.train import TrainConfig, train  # noqa: E402
from classmood.vision.classifier import EmotionClassifier  # noqa: E402

from .conftest import TinyRun  # noqa: E402


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_forward_shape_and_finite(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name).eval()
    x = torch.randn(5, 1, 48, 48)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (5, len(model.config.heads), NUM_CLASSES)
    assert torch.isfinite(y).all()
    model.train()
    model(torch.randn(2, 1, 48, 48)).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_shipped_variant_fits_the_budget() -> None:
    model = build_model("cm-small")
    assert count_parameters(model) <= 1_500_000
    assert 2 * count_macs(model) <= 200_000_000  # ~100 MMACs (about 100 M multiply-adds) per face


class Interrupted(Exception):
    """Stands for a run stopped after an epoch."""


def test_tiny_training_run_lowers_the_loss_and_resumes(tiny_run: TinyRun, learnable_npz: Path,
                                                        tmp_path: Path) -> None:
    cfg, summary = tiny_run.cfg, tiny_run.summary  # 3 epochs of cm-tiny (tests/ml/conftest.py)
    losses = [h["loss"] for h in summary["history"]]
    assert losses[-1] < 0.8 * losses[0], losses
    assert summary["best"]["scores"]["fer_acc"] > 0.5  # chance is 1/7
    assert summary["best"]["scores"]["crowd_agree"] > 0.5
    assert {"loss_fer", "loss_crowd"} <= set(summary["history"][-1])
    assert json.loads((tiny_run.out / "summary.json").read_text())["epochs"] == 3
    assert load_checkpoint(tiny_run.out / "best.pt").config.name == "cm-tiny"

    # A run stopped after its second epoch and started again with the same settings ends where the whole run did.
    def stop_after_two(line: str) -> None:
        if line.startswith('{"epoch": 2,'):
            raise Interrupted

    with pytest.raises(Interrupted):
        train(learnable_npz, tmp_path / "cut", cfg, log=stop_after_two)
    lines: list[str] = []
    resumed = train(learnable_npz, tmp_path / "cut", cfg, log=lines.append)
    assert any(line.startswith("resumed from") and "after epoch 2" in line for line in lines)
    assert [h["epoch"] for h in resumed["history"]] == [1, 2, 3]
    assert [h["loss"] for h in resumed["history"]] == losses
    assert resumed["best"] == summary["best"]

    # Other settings never continue an old run: the differing fields are named.
    longer = TrainConfig(**{**cfg.to_dict(), "epochs": 4, "seed": 3, "augment": cfg.augment, "webcam": cfg.webcam})
    with pytest.raises(ConfigMismatch, match=r"differing: epochs, seed\b"):
        train(learnable_npz, tmp_path / "cut", longer, log=lambda _: None)


def test_onnx_export_matches_pytorch_with_a_dynamic_batch(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model("cm-small").eval()
    temperatures = {"crowd": 1.5, "fer2013": 0.8}
    bias = (0.5, -0.5, 0.0, 0.0, 0.25, 0.0, -0.25)
    report = export_onnx(model, tmp_path / "m.onnx", adjustments={"crowd": Adjustment(1.5, bias, 0.3),
                                                                  "fer2013": Adjustment(0.8)})
    assert report["max_abs_diff"] <= 1e-4
    faces = np.random.default_rng(0).integers(0, 256, (9, 48, 48), dtype=np.uint8)
    from classmood.vision.preprocess import faces_to_input

    with torch.no_grad():
        logits = model(torch.from_numpy(faces_to_input(faces)))
    for head, t in temperatures.items():
        clf = EmotionClassifier(tmp_path / "m.onnx", head=head, flip_tta=False)
        shift = torch.tensor(bias) if head == "crowd" else 0.0
        expected = torch.softmax((logits[:, model.head_index(head)] + shift) / t, dim=1).numpy()
        for n in (1, 9):
            np.testing.assert_allclose(clf.predict(faces[:n]), expected[:n], atol=1e-4)
        assert clf.head_spec.temperature == t
    assert EmotionClassifier(tmp_path / "m.onnx").head == "crowd"  # the contract's default head
    assert clf.metadata["parameters"] == count_parameters(model)
