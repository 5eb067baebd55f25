"""A teacher for distillation, and the choice among candidates, from trained networks of any origin.

A member is a checkpoint (``best.pt`` of ``classmood train`` or ``classmood finetune``) or an exported ONNX
file with its contract (its in-graph bias and temperature are undone, so every member contributes its raw
softmax). Diverse members make the better teacher: a network trained from scratch and one fine-tuned from
another warm start disagree more than two fine-tunes of one start (see the model card's ablation).

Probabilities are in the order of :data:`classmood.ml.model.HEADS`, each head averaged over the face and its
mirror image (the shipped test-time augmentation), then over the members. PrivateTest is never read here.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from classmood.evaluation.calibration import tta_probs
from classmood.evaluation.datasets import FaceDataset, load_fer2013
from classmood.ml.checkpoint import load_checkpoint
from classmood.ml.export import HeadViews, onnx_views, torch_views
from classmood.ml.model import HEADS
from classmood.ml.select import MIN_FER_ACC, public_scores, selection_key
from classmood.ml.train import Logger


def member_views(path: str | Path, data: FaceDataset) -> HeadViews:
    """Each head's logits (face, then mirror image) of one member on ``data``."""
    if Path(path).suffix == ".onnx":
        return onnx_views(path, data)
    return torch_views(load_checkpoint(path), data)


def member_probs(path: str | Path, data: FaceDataset, heads: tuple[str, ...] = HEADS) -> npt.NDArray[np.float64]:
    """One member's probabilities (N, heads, 7) with the mirror test-time augmentation."""
    views = member_views(path, data)
    missing = [h for h in heads if h not in views]
    if missing:
        raise ValueError(f"{path}: no head {', '.join(missing)} (it has {', '.join(views)})")
    return np.stack([tta_probs(views[h]) for h in heads], axis=1)


def build_teacher(members: Sequence[str | Path], data_path: str | Path, out: str | Path,
                  log: Logger = print) -> dict[str, Any]:
    """Average the members over every Training face into ``out`` (.npy, float16, (rows, heads, 7)); return
    each member's and the ensemble's PublicTest scores (the ablation's rows)."""
    data = load_fer2013(data_path)
    train, val = data.split("Training"), data.split("PublicTest")
    scores: dict[str, Any] = {}
    val_probs, train_probs = [], []
    for member in members:
        val_probs.append(member_probs(member, val))
        scores[str(member)] = public_scores(val_probs[-1], val)
        log(f"member {member}: PublicTest {scores[str(member)]}")
        train_probs.append(member_probs(member, train))
    scores["ensemble"] = public_scores(np.mean(val_probs, axis=0), val)
    log(f"ensemble of {len(members)}: PublicTest {scores['ensemble']}")
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    np.save(target, np.mean(train_probs, axis=0).astype(np.float16))
    return scores


def choose(candidates: Sequence[str | Path], data_path: str | Path, out: str | Path | None = None, *,
           min_fer_acc: float = MIN_FER_ACC, log: Logger = print) -> Path:
    """The selection rule (:func:`~classmood.ml.select.selection_key`) among finished candidates, each scored
    the same way on PublicTest; a winning checkpoint is copied to ``out``. Returns the winner."""
    val = load_fer2013(data_path).split("PublicTest")
    keyed = []
    for candidate in candidates:
        scores = public_scores(member_probs(candidate, val), val)
        log(f"candidate {candidate}: PublicTest {scores}")
        keyed.append((selection_key(scores, min_fer_acc), Path(candidate)))
    winner = max(keyed, key=lambda pair: pair[0])[1]
    if out is not None and winner.suffix == ".pt":
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(winner, out)
    return winner
