"""Recipes as data: the shipped model's every setting in recipes/, `--set` on top, and `classmood train --recipe`."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from typer.testing import CliRunner

torch = pytest.importorskip("torch", reason="PyTorch is in the `train` extra")

from classmood.cli import app  # noqa: E402
from classmood.ml.augment import AugmentConfig, WebcamConfig  # noqa: E402
from classmood.ml.checkpoint import recipe_version  # noqa: E402
from classmood.ml.recipe import CHECKOUT, find_recipe, load_recipe, parse_set  # noqa: E402
from classmood.ml.select import MIN_FER_ACC  # noqa: E402
from classmood.ml.train import TrainConfig  # noqa: E402


def test_the_shipped_recipe_holds_every_setting_of_cm_small_5() -> None:
    recipe = load_recipe("cm-small-5")
    assert find_recipe("cm-small-5") == CHECKOUT / "recipes" / "cm-small-5.toml"
    assert recipe.version == recipe.train.version == "cm-small-5"
    assert recipe.teacher_members == ("models/cm-small-4.onnx", "models/cm-small-3.onnx")
    assert all((CHECKOUT / member).is_file() for member in recipe.teacher_members)
    cfg = recipe.train
    assert (cfg.teacher, cfg.kd_alpha, cfg.kd_crowd_alpha, cfg.min_fer_acc, cfg.seed, cfg.epochs) == (
        "runs/teacher-4-3.npy", 0.6, 0.3, 0.700, 1, 72)
    # Every [train] field is written out in the file (limit only as a comment: unset).
    table = recipe.settings["train"]
    assert set(table) == {f.name for f in dataclasses.fields(TrainConfig)} - {"version", "limit"}
    assert set(table["augment"]) == {f.name for f in dataclasses.fields(AugmentConfig)}
    assert set(table["webcam"]) == {f.name for f in dataclasses.fields(WebcamConfig)}
    # The rest is the plain recipe's: the defaults of TrainConfig.
    plain = dataclasses.replace(cfg, version="", seed=0, teacher="", kd_alpha=0.0, kd_crowd_alpha=None)
    assert plain == TrainConfig() and cfg.min_fer_acc == MIN_FER_ACC
    assert len(recipe.candidates) == 4 and "runs/cm-small-5-cw05/best.pt" in recipe.candidates


def test_a_variant_extends_its_release_and_set_changes_one_setting() -> None:
    variant = load_recipe("cm-small-5-cw05")
    base = load_recipe("cm-small-5")
    assert variant.version == "cm-small-5" and variant.out == Path("runs/cm-small-5-cw05")
    assert variant.train == dataclasses.replace(base.train, crowd_weight=0.5)
    changed = load_recipe("cm-small-5", ["epochs=1", "limit=500", "augment.erase_prob=0.5", "webcam=false"])
    assert (changed.train.epochs, changed.train.limit, changed.train.augment.erase_prob) == (1, 500, 0.5)
    assert changed.train.webcam is None
    assert parse_set("teacher=runs/t.npy") == (["teacher"], "runs/t.npy")  # a bare word is a string
    with pytest.raises(ValueError, match="unknown training setting epoch"):
        load_recipe("cm-small-5", ["epoch=1"])
    with pytest.raises(ValueError, match=r"no recipe .cm-small-0. \(known: .*cm-small-5"):
        load_recipe("cm-small-0")


def test_the_lite_experiment_is_cm_small_5_on_the_narrower_network() -> None:
    """cm-lite-1 (issue 24, not released): only the network, its teacher, the floor and the candidates differ."""
    from classmood.ml.model import VARIANTS, build_model, count_macs

    lite, base, fer = load_recipe("cm-lite-1"), load_recipe("cm-small-5"), load_recipe("cm-lite-1-fer")
    assert lite.version == fer.version == "cm-lite-1"
    assert lite.teacher_members == ("models/cm-small-5.onnx", *base.teacher_members)
    assert lite.train == dataclasses.replace(base.train, version="cm-lite-1", model="cm-lite", seed=2,
                                             min_fer_acc=0.692, teacher="runs/teacher-5-4-3.npy")
    assert fer.train == dataclasses.replace(lite.train, crowd_weight=0.5, kd_alpha=0.8)
    assert lite.candidates == ("runs/cm-lite-1/best.pt", "runs/cm-lite-1-fer/best.pt")
    assert VARIANTS["cm-lite"].widths == (32, 64, 128)
    assert count_macs(build_model("cm-lite")) < 0.45 * count_macs(build_model("cm-small"))


def test_classmood_train_runs_a_recipe_and_the_checkpoint_names_its_release(learnable_npz: Path,
                                                                             tmp_path: Path) -> None:
    recipe = tmp_path / "tiny.toml"
    recipe.write_text('version = "cm-tiny-1"\n[train]\nmodel = "cm-tiny"\nbatch_size = 32\nlr = 0.05\n'
                      "bf16 = false\nwarmup_epochs = 0.5\n")
    out = tmp_path / "run"
    # Two steps (the first 64 faces of each split) run the whole command: training, choice, checkpoint.
    result = CliRunner().invoke(app, ["train", "--recipe", str(recipe), "--set", "epochs=1", "--set", "limit=64",
                                      "--data", str(learnable_npz), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "on 64 faces" in result.output and "1 epochs of 2 steps" in result.output
    assert "chosen checkpoint: epoch 1" in result.output
    assert recipe_version(out / "best.pt") == "cm-tiny-1"
    # The same folder with another setting is refused by name, as a usage error.
    again = CliRunner().invoke(app, ["train", "--recipe", str(recipe), "--set", "epochs=2", "--set", "limit=64",
                                     "--data", str(learnable_npz), "--out", str(out)])
    assert again.exit_code == 1 and "differing: epochs" in again.output
    bad = CliRunner().invoke(app, ["train", "--recipe", "no-such-recipe"])
    assert bad.exit_code == 2 and "no recipe" in bad.output
