"""Evaluating an emotion model on a FER2013 split (no PyTorch needed for ONNX models)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from classmood.datasets import FaceDataset, load_fer2013
from classmood.labels import LABELS
from classmood.metrics import Metrics, compute_metrics
from classmood.vision.classifier import EmotionClassifier


@dataclass(frozen=True)
class Evaluation:
    model: str
    split: str
    count: int
    metrics: Metrics
    flip_tta: bool

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "split": self.split, "count": self.count, "flip_tta": self.flip_tta,
                **self.metrics.to_dict()}


def evaluate_onnx(data_path: str | Path | FaceDataset, *, model_path: str | Path | None = None,
                  split: str = "PrivateTest", flip_tta: bool = True, precision: str = "int8") -> Evaluation:
    """Score an ONNX model (the shipped one by default) on one split of FER2013.

    ``data_path`` may also be an already loaded :class:`FaceDataset`. ``flip_tta`` averages the
    probabilities of each face and its mirror image, as :class:`EmotionClassifier` does by default.
    """
    dataset = data_path if isinstance(data_path, FaceDataset) else load_fer2013(data_path)
    data = dataset.split(split)
    clf = EmotionClassifier(model_path, flip_tta=flip_tta, precision=precision)
    probs = clf.predict(data.pixels)
    metrics = compute_metrics(data.labels, probs.argmax(axis=1))
    return Evaluation(str(clf.path), split, len(data), metrics, flip_tta)


def format_evaluation(ev: Evaluation) -> str:
    """Human-readable report: headline figures, per-class table, confusion matrix."""
    m = ev.metrics
    lines = [f"{ev.model} on {ev.split} ({ev.count} faces{', flip TTA' if ev.flip_tta else ''})",
             f"accuracy {m.accuracy:.4f}   macro-F1 {m.macro_f1:.4f}", "",
             f"{'class':<10}{'precision':>10}{'recall':>9}{'f1':>8}{'support':>9}"]
    for name, p, r, f, s in zip(LABELS, m.precision, m.recall, m.f1, m.support, strict=True):
        lines.append(f"{name:<10}{p:>10.3f}{r:>9.3f}{f:>8.3f}{s:>9d}")
    lines += ["", "confusion matrix (rows: true, columns: predicted)",
              " " * 10 + "".join(f"{n[:7]:>8}" for n in LABELS)]
    for name, row in zip(LABELS, m.confusion, strict=True):
        lines.append(f"{name:<10}" + "".join(f"{v:>8d}" for v in row))
    return "\n".join(lines)


def save_evaluation(ev: Evaluation, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(ev.to_dict(), indent=2))
