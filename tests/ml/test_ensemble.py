"""The second-stage recipe: an ensemble teacher of checkpoints and exported files, distillation in the full
training loop from a warm start, and the choice among finished candidates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is in the `train` extra")

from classmood.evaluation.calibration import softmax  # noqa: E402
from classmood.evaluation.datasets import load_fer2013  # noqa: E402
from classmood.ml.checkpoint import load_checkpoint  # noqa: E402
from classmood.ml.ensemble import build_teacher, choose, member_probs  # noqa: E402
from classmood.ml.export import Adjustment, export_onnx  # noqa: E402
from classmood.ml.model import HEADS, build_model, predict_logits  # noqa: E402
from classmood.ml.select import public_scores  # noqa: E402
from classmood.ml.train import TrainConfig, train  # noqa: E402

from .conftest import TinyRun  # noqa: E402


def quiet(_: str) -> None:
    """No log lines in the tests."""


@pytest.fixture(scope="module")
def first_stage(tiny_run: TinyRun) -> Path:
    """The shared tiny run's chosen checkpoint (3 epochs of cm-tiny, tests/ml/conftest.py): a trained member."""
    return tiny_run.out / "best.pt"


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module]:
    """An untrained network exported with a bias and temperature inside its graph."""
    torch.manual_seed(5)
    net = build_model("cm-tiny").eval()
    path = tmp_path_factory.mktemp("onnx") / "other.onnx"
    bias = (0.4, -0.3, 0.0, 0.2, 0.0, -0.1, 0.0)
    export_onnx(net, path, adjustments={"crowd": Adjustment(0.6, bias, 0.3), "fer2013": Adjustment(1.7)})
    return path, net


def _raw_tta(net: torch.nn.Module, pixels: np.ndarray) -> np.ndarray:
    views = [predict_logits(net, pixels), predict_logits(net, pixels, mirror=True)]
    return np.mean([softmax(v.reshape(-1, 7)).reshape(v.shape) for v in views], axis=0)


def test_an_exported_member_contributes_its_raw_softmax(learnable_npz: Path,
                                                        exported: tuple[Path, torch.nn.Module]) -> None:
    path, net = exported
    val = load_fer2013(learnable_npz).split("PublicTest")
    probs = member_probs(path, val)
    assert probs.shape == (len(val), len(HEADS), 7)
    # The graph's bias and temperature are undone: the member is its network, whatever the release fitted.
    np.testing.assert_allclose(probs, _raw_tta(net, val.pixels), atol=2e-4)


@pytest.fixture(scope="module")
def teacher(learnable_npz: Path, first_stage: Path, exported: tuple[Path, torch.nn.Module],
            tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The teacher of the trained and the exported member, built once (the tests only read it), and its scores."""
    path = tmp_path_factory.mktemp("teacher") / "teacher.npy"
    return path, build_teacher([first_stage, exported[0]], learnable_npz, path, log=quiet)


def test_the_teacher_averages_its_members_on_every_training_face(learnable_npz: Path, first_stage: Path,
                                                                 exported: tuple[Path, torch.nn.Module],
                                                                 teacher: tuple[Path, dict[str, Any]]) -> None:
    members = [first_stage, exported[0]]
    path, scores = teacher
    probs = np.load(path).astype(np.float64)
    data = load_fer2013(learnable_npz)
    train_set = data.split("Training")
    assert probs.shape == (len(train_set), len(HEADS), 7)
    expected = np.mean([member_probs(m, train_set) for m in members], axis=0)
    np.testing.assert_allclose(probs, expected, atol=2e-3)  # float16 on disk
    assert set(scores) == {str(first_stage), str(exported[0]), "ensemble"}
    val = data.split("PublicTest")
    assert scores[str(first_stage)] == public_scores(member_probs(first_stage, val), val)
    assert scores[str(first_stage)]["fer_acc"] > 0.5  # the trained member learnt the bands; chance is 1/7


def test_distillation_starts_from_the_first_stage_and_learns_from_the_teacher(
        learnable_npz: Path, first_stage: Path, teacher: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    teacher_file = teacher[0]
    # Two steps on the first 64 Training faces (limit) are enough: at lr 0 nothing may move, and the first
    # epoch's loss shows whether the teacher's probabilities took part.
    still = TrainConfig(model="cm-tiny", epochs=1, batch_size=32, lr=0.0, warmup_epochs=0.0, bf16=False,
                        min_fer_acc=0.0, init=str(first_stage), teacher=str(teacher_file), kd_alpha=0.5, limit=64)
    summary = train(learnable_npz, tmp_path / "still", still, log=quiet)
    start, after = load_checkpoint(first_stage), load_checkpoint(tmp_path / "still" / "last.pt")
    for (name, a), b in zip(start.state_dict().items(), after.state_dict().values(), strict=True):
        if "running" not in name and "num_batches" not in name:  # batch-norm statistics move in train mode
            torch.testing.assert_close(a, b, msg=name)
    # With the teacher's weight the loss is not the plain two-head loss of the same weights.
    plain = train(learnable_npz, tmp_path / "plain", TrainConfig(**{**still.to_dict(), "teacher": "", "kd_alpha": 0.0,
                                                                   "augment": still.augment,
                                                                   "webcam": still.webcam}), log=quiet)
    assert summary["history"][0]["loss"] != pytest.approx(plain["history"][0]["loss"], rel=1e-3)
    wrong = tmp_path / "short.npy"
    np.save(wrong, np.load(teacher_file)[:10])
    with pytest.raises(ValueError, match="teacher probabilities"):
        train(learnable_npz, tmp_path / "wrong", TrainConfig(**{**still.to_dict(), "teacher": str(wrong),
                                                               "augment": still.augment, "webcam": still.webcam}),
              log=quiet)


def test_the_choice_follows_the_rule_and_copies_a_winning_checkpoint(
        learnable_npz: Path, first_stage: Path, exported: tuple[Path, torch.nn.Module], tmp_path: Path) -> None:
    out = tmp_path / "release.pt"
    winner = choose([exported[0], first_stage], learnable_npz, out, min_fer_acc=0.0, log=quiet)
    assert winner == first_stage  # the trained one agrees with the crowd far more than an untrained network
    assert out.read_bytes() == first_stage.read_bytes()
    # Below the floor the rule ranks by fer2013 accuracy alone, so an impossible floor still picks the same.
    assert choose([exported[0], first_stage], learnable_npz, None, min_fer_acc=1.1, log=quiet) == first_stage
