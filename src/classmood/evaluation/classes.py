"""The class histogram's own accuracy: simulated classes of FER2013 faces against the FER+ crowd.

A teacher reads the class histogram, not a per-face accuracy. Each simulated class is a sample of faces that
have a FER+ crowd majority (:func:`classmood.evaluation.datasets.crowd_majority`), one face per student. The
model's histogram is counted exactly as the server counts it: each face's label is the top of its probabilities
(:func:`classmood.labels.top_label`, the label every observation is stored with), and the shares are the server's
(:func:`classmood.server.analytics.queries.counts_from`). It is compared with the crowd's histogram of the same
faces (the shares of their majority labels) by two figures:

- the **total-variation distance** between the two histograms, half the sum of the absolute share differences
  (0: the same histogram, 1: nothing in common);
- the **error of the negative share** (Angry, Disgust, Fear, Sad together), the figure an alert reads.

Two kinds of class: **random** (faces drawn at random) and **calm** (faces whose crowd majority is Neutral, where
the crowd sees no negative face at all).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from classmood.evaluation.datasets import FaceDataset, crowd_majority, load_fer2013
from classmood.labels import LABELS, NEGATIVE_INDICES, top_label
from classmood.server.analytics.queries import counts_from

SIZES = (5, 10, 30)
KINDS = ("random", "calm")
CLASSES = 3000
NEGATIVE_AT = np.array(NEGATIVE_INDICES)  # an index array (a tuple would index dimensions)


@dataclass(frozen=True)
class ClassFigures:
    """One kind and size of class: the mean figures over its simulated classes."""

    kind: str
    students: int
    classes: int
    total_variation: float
    negative_share_error: float
    negative_share_shown: float
    negative_share_crowd: float


def server_shares(labels: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """The class histogram (shares in LABELS order) of the faces' labels, as the server computes it."""
    rows = zip(*np.unique(labels, return_counts=True), strict=True)
    shares = counts_from(rows).shares()
    return np.array([shares[label] for label in LABELS])


def simulate(predicted: npt.NDArray[np.int64], crowd: npt.NDArray[np.int64], *, kind: str, students: int,
             classes: int = CLASSES, seed: int = 0) -> ClassFigures:
    """Mean figures over ``classes`` classes of ``students`` faces each (without repetition inside a class),
    drawn from the faces of ``kind``; ``predicted`` and ``crowd`` are each face's label (crowd: its majority)."""
    pool = np.flatnonzero(crowd >= 0) if kind == "random" else np.flatnonzero(crowd == LABELS.index("Neutral"))
    if kind not in KINDS or len(pool) < students:
        raise ValueError(f"cannot draw {kind!r} classes of {students} from {len(pool)} faces")
    rng = np.random.default_rng(seed)
    tv, error, shown, truth = (np.empty(classes) for _ in range(4))
    for i in range(classes):
        faces = rng.choice(pool, size=students, replace=False)
        model, people = server_shares(predicted[faces]), server_shares(crowd[faces])
        tv[i] = 0.5 * np.abs(model - people).sum()
        shown[i], truth[i] = model[NEGATIVE_AT].sum(), people[NEGATIVE_AT].sum()
        error[i] = abs(shown[i] - truth[i])
    return ClassFigures(kind, students, classes, float(tv.mean()), float(error.mean()), float(shown.mean()),
                        float(truth.mean()))


def evaluate_classes(data_path: str | Path | FaceDataset, *, model_path: str | Path | None = None,
                     split: str = "PrivateTest", precision: str = "int8", classes: int = CLASSES,
                     seed: int = 0) -> dict[str, Any]:
    """Every kind and size of class on ``split``, with the shipped model's default head (mirror TTA) unless
    ``model_path`` names another file."""
    from classmood.vision.classifier import EmotionClassifier

    dataset = data_path if isinstance(data_path, FaceDataset) else load_fer2013(data_path)
    data = dataset.split(split)
    clf = EmotionClassifier(model_path, precision=precision)
    predicted = np.array([top_label(p) for p in clf.predict(data.pixels)], np.int64)
    crowd = crowd_majority(data.require_votes())
    rows = [simulate(predicted, crowd, kind=kind, students=n, classes=classes, seed=seed)
            for kind in KINDS for n in SIZES]
    return {"model": str(clf.path), "model_version": clf.contract.model_version, "head": clf.head,
            "split": split, "seed": seed, "rows": [asdict(r) for r in rows]}


def format_classes(result: dict[str, Any]) -> str:
    """The figures as a table."""
    lines = [f"{result['model']} ({result['model_version']}, {result['head']} head) on {result['split']}: "
             "simulated classes against the FER+ crowd majority",
             f"{'class':<8} {'students':>8} {'classes':>8} {'TV distance':>12} {'neg. error':>11} "
             f"{'neg. shown':>11} {'neg. crowd':>11}"]
    for r in result["rows"]:
        lines.append(f"{r['kind']:<8} {r['students']:>8} {r['classes']:>8} {r['total_variation']:>12.3f} "
                     f"{r['negative_share_error']:>11.3f} {r['negative_share_shown']:>11.3f} "
                     f"{r['negative_share_crowd']:>11.3f}")
    return "\n".join(lines)
