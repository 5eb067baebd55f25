"""The path for machines without bf16 (cm-small-3's recipe): the ensemble teacher, the resumable fine-tunes; and the
release step: the recall floors, the int8 copy."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from classmood.evaluation.calibration import uncalibrate  # noqa: E402
from classmood.evaluation.datasets import FaceDataset  # noqa: E402
from classmood.ml.checkpoint import ConfigMismatch, load_checkpoint  # noqa: E402
from classmood.ml.distill import Member, RecipeConfig, run_recipe, teacher_probs  # noqa: E402
from classmood.ml.export import (  # noqa: E402
    MIN_RECALL,
    Adjustment,
    export_onnx,
    fit_head_adjustments,
    floor_bias,
    release_floor,
)
from classmood.ml.finetune import FinetuneConfig, TopNet, TrunkCache, cached_trunk, finetune  # noqa: E402
from classmood.ml.model import VARIANTS, build_model  # noqa: E402
from classmood.ml.quantize import quantize_int8  # noqa: E402
from classmood.vision.classifier import EmotionClassifier  # noqa: E402


def test_the_release_floor_on_recall_is_each_heads_own() -> None:
    # One rare class (6) is read right on 43 of its 100 faces: above the crowd head's floor (0.40), below the
    # fer2013 head's (0.45). Only the fer2013 head needs the prior correction that lifts it.
    assert MIN_RECALL["crowd"] < release_floor("crowd") < 0.43 < MIN_RECALL["fer2013"] < release_floor("fer2013")
    labels = np.repeat(np.arange(7), 100)
    logits = np.eye(7)[labels] * 3.0
    missed = np.flatnonzero(labels == 6)[43:]
    logits[missed] = 0.0
    logits[missed, 0], logits[missed, 6] = 1.0, 0.8
    train_labels = np.array([0] * 30 + [1, 2, 3, 4, 5] * 14 + [6])
    train = FaceDataset(np.zeros((len(train_labels), 48, 48), np.uint8), train_labels,
                        np.zeros(len(train_labels), np.int8))
    val = FaceDataset(np.zeros((len(labels), 48, 48), np.uint8), labels, np.ones(len(labels), np.int8))
    fitted = fit_head_adjustments({"crowd": [logits, logits], "fer2013": [logits, logits]}, train, val)
    assert fitted["crowd"].strength == 0.0 and fitted["crowd"].bias == ()
    assert fitted["fer2013"].strength > 0.0
    shifted = logits + np.array(fitted["fer2013"].bias)
    assert (shifted[labels == 6].argmax(axis=1) == 6).mean() >= release_floor("fer2013")  # with the margin


def test_a_weak_class_that_is_common_on_training_gets_the_class_lift() -> None:
    # Class 0 is read right on 40 of its 100 faces (the others read 1, by 0.22 logits) and is the most common
    # class on Training: a prior correction only pushes it down, so the class lift raises it alone.
    labels = np.repeat(np.arange(7), 100)
    logits = np.eye(7)[labels] * 3.0
    missed = np.flatnonzero(labels == 0)[40:]
    logits[missed] = 0.0
    logits[missed, 0], logits[missed, 1] = 0.8, 1.02
    prior = np.array([0.4, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])
    strength, bias = floor_bias([logits, logits], labels, prior, 0.45)
    assert strength == 0.0 and abs(bias.sum()) < 1e-9
    assert 0.22 < bias[0] - bias[1] < 0.3 and np.allclose(bias[1:], bias[1])  # the fewest rounds that flip them
    assert ((logits + bias).argmax(axis=1) == labels).all()
    # A floor no lift within MAX_LIFT can reach: no bias at all.
    hopeless = logits.copy()
    hopeless[missed, 1] = 3.0
    assert not floor_bias([hopeless, hopeless], labels, prior, 0.45)[1].any()


def test_the_teacher_averages_its_members_and_shares_a_face_with_its_mirror() -> None:
    torch.manual_seed(0)
    tops = [TopNet(build_model("cm-small").eval()) for _ in range(2)]
    rows, views = 5, 3
    x = np.random.default_rng(0).standard_normal((rows * views, 96, 6, 6)).astype(np.float16)
    cache = TrunkCache(x, np.tile(np.arange(rows), views), np.zeros((rows * views, 7), np.float32),
                       np.ones(rows * views, bool), x[:2], np.arange(2), np.arange(2))
    probs = teacher_probs(tops, cache, views).astype(np.float64)
    assert probs.shape == (rows * views, 2, 7)
    np.testing.assert_allclose(probs.sum(axis=2), 1.0, atol=2e-3)
    with torch.no_grad():
        each = [torch.softmax(top(torch.from_numpy(x.astype(np.float32))), dim=2).numpy() for top in tops]
    mean = np.mean(each, axis=0)
    np.testing.assert_allclose(probs[: rows], (mean[:rows] + mean[rows : 2 * rows]) / 2, atol=2e-3)
    np.testing.assert_array_equal(probs[:rows], probs[rows : 2 * rows])
    np.testing.assert_allclose(probs[2 * rows :], mean[2 * rows :], atol=2e-3)  # webcam views: their own


@pytest.fixture(scope="module")
def base_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("base") / "base.onnx"
    export_onnx(build_model("cm-small").eval(), path)
    return path


@pytest.fixture(scope="module")
def tiny_base_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cm-tiny warm start: the recipe's stages do not depend on the architecture (run_recipe's ``config``), and
    its trunk costs a fraction of cm-small's. The cm-small warm start is the interrupted fine-tune's."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny-base") / "base.onnx"
    export_onnx(build_model("cm-tiny").eval(), path)
    return path


def test_the_recipe_runs_every_stage_chooses_by_the_rule_and_resumes(learnable_npz: Path, tiny_base_onnx: Path,
                                                                    tmp_path: Path) -> None:
    quick = FinetuneConfig(epochs=1, batch_size=64, lr=0.05, webcam_views=1, min_fer_acc=0.0)
    rc = RecipeConfig(members=(Member(1.0, 0), Member(0.5, 1)), finetune=quick)
    tiny = VARIANTS["cm-tiny"]
    lines: list[str] = []
    summary = run_recipe(tiny_base_onnx, learnable_npz, tmp_path, rc, tiny, log=lines.append)
    names = [row["run"] for row in summary["ablation"]]
    assert names == ["member-0", "member-1", "student", "ensemble (teacher)"]
    student = next(row for row in summary["ablation"] if row["run"] == "student")
    assert student["kd_alpha"] == 0.5
    [teacher_file] = tmp_path.glob("teacher-*.npy")
    assert np.load(teacher_file).shape == (3 * 350, 2, 7)  # three views of the 350 Training faces
    assert student["run"] == "student" and summary["recipe"]["kd_alpha"] == 0.5
    runs = {row["run"]: row for row in summary["ablation"][:-1]}
    assert summary["chosen"] == max(runs, key=lambda r: runs[r]["crowd_agree"])  # every run clears the floor
    assert (tmp_path / "best.pt").exists() and (tmp_path / "recipe.json").exists()
    history = json.loads((tmp_path / "student" / "summary.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [0, 1]
    assert load_checkpoint(tmp_path / "best.pt").config == tiny
    # Everything is on disk: a second run reads it back and trains nothing.
    again: list[str] = []
    resumed = run_recipe(tiny_base_onnx, learnable_npz, tmp_path, rc, tiny, log=again.append)
    assert resumed["chosen"] == summary["chosen"]
    assert any("read from" in line for line in again)
    assert sum("done before" in line for line in again) == 3
    assert not any('"stage": "finetune"' in line for line in again)


class _Stop(Exception):
    pass


def test_an_interrupted_fine_tune_resumes_after_its_last_epoch(learnable_npz: Path, base_onnx: Path,
                                                               tmp_path: Path) -> None:
    cfg = FinetuneConfig(epochs=2, batch_size=64, lr=0.05, webcam_views=0, min_fer_acc=0.0)
    # The trunk's activations once for the three calls (each would compute the same ones: same base and views).
    cache = cached_trunk(base_onnx, learnable_npz, cfg, log=lambda _: None)

    def stop_after_first_epoch(line: str) -> None:
        if '"epoch": 1' in line:
            raise _Stop  # as if the machine went away once epoch 1 was saved

    with pytest.raises(_Stop):
        finetune(base_onnx, learnable_npz, tmp_path, cfg, log=stop_after_first_epoch, cache=cache)
    assert not (tmp_path / "summary.json").exists()
    lines: list[str] = []
    summary = finetune(base_onnx, learnable_npz, tmp_path, cfg, log=lines.append, cache=cache)
    assert [h["epoch"] for h in summary["history"]] == [0, 1, 2]
    assert not any("probe" in line for line in lines)  # the probe and epoch 1 were not run again
    assert sum('"stage": "finetune"' in line for line in lines) == 1
    # A different recipe in the same folder is refused, naming what differs (the rule of classmood train too).
    with pytest.raises(ConfigMismatch, match=r"differing: epochs\)"):
        finetune(base_onnx, learnable_npz, tmp_path, dataclasses.replace(cfg, epochs=1), log=lambda _: None,
                 cache=cache)


def test_int8_logits_do_not_depend_on_the_release_adjustments(base_onnx: Path, tmp_path: Path) -> None:
    # The release step fits bias and temperature on an int8 copy's logits: they must be the shipped copy's.
    torch.manual_seed(0)
    model = build_model("cm-small").eval()
    faces = np.random.default_rng(0).integers(0, 256, (64, 48, 48), dtype=np.uint8)
    outputs = []
    for adjust in (Adjustment(), Adjustment(0.6, (0.4, 1.2, 0.3, -0.5, -0.6, 0.1, -0.9), 0.5)):
        fp32 = tmp_path / f"m{len(outputs)}.onnx"
        export_onnx(model, fp32, adjustments={"crowd": adjust})
        clf = EmotionClassifier(quantize_int8(fp32, tmp_path / f"m{len(outputs)}.int8.onnx", faces),
                                head="crowd", flip_tta=False, precision="int8")
        outputs.append(uncalibrate(clf.predict(faces), clf.head_spec.temperature, clf.head_spec.bias))
    np.testing.assert_allclose(outputs[0], outputs[1], atol=1e-4)
