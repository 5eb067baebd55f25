"""Classification metrics in numpy: accuracy, macro-F1, per-class precision and recall, confusion matrix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from classmood.labels import LABELS


@dataclass(frozen=True)
class Metrics:
    """Scores of predictions against true labels, both in LABELS order."""

    accuracy: float
    macro_f1: float
    precision: tuple[float, ...]
    recall: tuple[float, ...]
    f1: tuple[float, ...]
    support: tuple[int, ...]
    confusion: tuple[tuple[int, ...], ...]  # rows: true class, columns: predicted class

    def to_dict(self) -> dict[str, Any]:
        per_class = {
            name: {"precision": p, "recall": r, "f1": f, "support": s}
            for name, p, r, f, s in zip(LABELS, self.precision, self.recall, self.f1, self.support, strict=True)
        }
        return {
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "per_class": per_class,
            "labels": list(LABELS),
            "confusion_matrix": [list(row) for row in self.confusion],
        }


def compute_metrics(true: npt.ArrayLike, pred: npt.ArrayLike, num_classes: int = len(LABELS)) -> Metrics:
    """Score predicted class indices against true ones.

    >>> m = compute_metrics([0, 1, 1], [0, 1, 0])
    >>> round(m.accuracy, 3)
    0.667
    """
    t = np.asarray(true, dtype=np.int64)
    p = np.asarray(pred, dtype=np.int64)
    if t.shape != p.shape or t.ndim != 1:
        raise ValueError("true and predicted labels must be 1-D arrays of the same length")
    cm = np.bincount(t * num_classes + p, minlength=num_classes * num_classes).reshape(num_classes, num_classes)
    tp = np.diag(cm).astype(np.float64)
    predicted = cm.sum(axis=0)
    actual = cm.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return Metrics(
        accuracy=float(tp.sum() / max(len(t), 1)),
        macro_f1=float(f1.mean()),
        precision=tuple(float(v) for v in precision),
        recall=tuple(float(v) for v in recall),
        f1=tuple(float(v) for v in f1),
        support=tuple(int(v) for v in actual),
        confusion=tuple(tuple(int(v) for v in row) for row in cm),
    )
