"""Evaluating an emotion model on a FER2013 split, against both label sets (no PyTorch needed).

Every head of the model is scored against FER2013's original labels (all faces of the split) and against
the FER+ crowd majority (:func:`classmood.evaluation.datasets.crowd_majority`: faces whose most-voted FER+ column is
unique and one of the seven shared emotions; the others are counted and left out). Each score comes with
per-class precision and recall, the confusion matrix, the expected calibration error before and after the
head's temperature, the share of each predicted class, and how often calm faces read negative.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from classmood.evaluation.calibration import expected_calibration_error, uncalibrate
from classmood.evaluation.datasets import CONTEMPT, NOT_A_FACE, UNKNOWN, FaceDataset, crowd_majority, load_fer2013
from classmood.evaluation.metrics import Metrics, compute_metrics
from classmood.labels import LABELS, NEGATIVE_INDICES
from classmood.vision.classifier import EmotionClassifier
from classmood.vision.contract import HeadSpec

NEUTRAL = LABELS.index("Neutral")
LABEL_SETS = ("fer2013", "crowd")


@dataclass(frozen=True)
class Score:
    """One head against one label set."""

    labels: str
    count: int
    metrics: Metrics
    ece: float
    ece_uncalibrated: float

    def to_dict(self) -> dict[str, Any]:
        return {"labels": self.labels, "count": self.count, "ece": self.ece,
                "ece_uncalibrated": self.ece_uncalibrated, **self.metrics.to_dict()}


@dataclass(frozen=True)
class HeadEvaluation:
    head: str
    temperature: float
    scores: dict[str, Score]
    predicted_share: dict[str, float]
    crowd_neutral_read_negative: float  # of the faces whose crowd majority is Neutral

    def to_dict(self) -> dict[str, Any]:
        return {"head": self.head, "temperature": self.temperature,
                "scores": {k: v.to_dict() for k, v in self.scores.items()},
                "predicted_share": self.predicted_share,
                "crowd_neutral_read_negative": self.crowd_neutral_read_negative}


@dataclass(frozen=True)
class Evaluation:
    model: str
    model_version: str
    split: str
    count: int
    flip_tta: bool
    default_head: str
    crowd_faces: dict[str, int]
    heads: dict[str, HeadEvaluation]

    @property
    def metrics(self) -> Metrics:
        """The default head against FER2013's labels (the figure peers publish for their only head)."""
        return self.heads[self.default_head].scores["fer2013"].metrics

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "model_version": self.model_version, "split": self.split, "count": self.count,
                "flip_tta": self.flip_tta, "default_head": self.default_head, "crowd_faces": self.crowd_faces,
                "heads": {k: v.to_dict() for k, v in self.heads.items()}}


def crowd_exclusions(votes: npt.NDArray[np.int64]) -> dict[str, int]:
    """How many faces the crowd scoring keeps, and why the others are left out."""
    top = votes.argmax(axis=1)
    tied = (votes == votes.max(axis=1, keepdims=True)).sum(axis=1) > 1
    kept = crowd_majority(votes) >= 0
    return {"scored": int(kept.sum()), "no_unique_majority": int(tied.sum()),
            "not_a_face": int((~tied & (top == NOT_A_FACE)).sum()),
            "unknown": int((~tied & (top == UNKNOWN)).sum()),
            "contempt": int((~tied & (top == CONTEMPT)).sum())}


def _score(name: str, truth: npt.NDArray[np.int64], probs: npt.NDArray[np.float64],
           before: npt.NDArray[np.float64]) -> Score:
    return Score(name, len(truth), compute_metrics(truth, probs.argmax(axis=1)),
                 expected_calibration_error(probs, truth), expected_calibration_error(before, truth))


def webcam_copy(pixels: npt.NDArray[np.uint8], seed: int = 0) -> npt.NDArray[np.uint8]:
    """The faces as a classroom webcam might deliver them: every face gets the training corruptions
    (:func:`classmood.ml.augment.webcam_corrupt`, each applied with certainty to a fixed random half), seeded,
    so every model is scored on the same corrupted copy. Needs PyTorch (the ``train`` extra)."""
    import torch

    from classmood.ml.augment import WebcamConfig, webcam_corrupt

    cfg = WebcamConfig(photometric_prob=0.5, blur_prob=0.5, noise_prob=0.5, jpeg_prob=0.5, rescale_prob=0.5,
                       hand_prob=0.15, glasses_prob=0.15)
    gen = torch.Generator().manual_seed(seed)
    out = []
    for start in range(0, len(pixels), 256):
        x = torch.from_numpy(pixels[start : start + 256]).unsqueeze(1).float().div_(255.0)
        out.append((webcam_corrupt(x, cfg, gen)[:, 0].numpy() * 255.0).round().astype(np.uint8))
    return np.concatenate(out) if out else pixels.copy()


def evaluate_onnx(data_path: str | Path | FaceDataset, *, model_path: str | Path | None = None,
                  split: str = "PrivateTest", flip_tta: bool = True, precision: str = "int8",
                  webcam: bool = False) -> Evaluation:
    """Score every head of an ONNX model (the shipped one by default) on one split of FER2013.

    ``data_path`` may also be an already loaded :class:`FaceDataset`. ``flip_tta`` averages the
    probabilities of each face and its mirror image, as :class:`EmotionClassifier` does by default.
    Crowd scores need the FER+ votes beside the data (``ferplus_votes.npy``); without them only the
    FER2013 scores are given. ``webcam`` scores a corrupted copy of the split (:func:`webcam_copy`).
    """
    dataset = data_path if isinstance(data_path, FaceDataset) else load_fer2013(data_path)
    data = dataset.split(split)
    if webcam:
        data = FaceDataset(webcam_copy(data.pixels), data.labels, data.usage, data.votes)
        split = f"{split} (webcam-corrupted copy)"
    clf = EmotionClassifier(model_path, flip_tta=False, precision=precision)
    views = [clf.predict_heads(data.pixels)]
    if flip_tta:
        views.append(clf.predict_heads(np.ascontiguousarray(data.pixels[:, :, ::-1])))
    majority = crowd_majority(data.votes) if data.votes is not None else None
    heads = {spec.name: _evaluate_head(spec, [v[spec.name] for v in views], data.labels, majority)
             for spec in clf.contract.heads}
    crowd_faces = crowd_exclusions(data.votes) if data.votes is not None else {}
    return Evaluation(str(clf.path), clf.contract.model_version, split, len(data), flip_tta,
                      clf.contract.default_head, crowd_faces, heads)


def _evaluate_head(spec: HeadSpec, views: list[npt.NDArray[np.float32]], labels: npt.NDArray[np.int64],
                   majority: npt.NDArray[np.int64] | None) -> HeadEvaluation:
    name, temperature = spec.name, spec.temperature
    probs = np.mean(np.asarray(views, np.float64), axis=0)
    before = np.mean([uncalibrate(v, temperature, spec.bias) for v in views], axis=0)
    scores = {"fer2013": _score("fer2013", labels, probs, before)}
    calm_negative = float("nan")
    if majority is not None:
        keep = majority >= 0
        scores["crowd"] = _score("crowd", majority[keep], probs[keep], before[keep])
        calm = majority == NEUTRAL
        calm_negative = float(np.isin(probs[calm].argmax(axis=1), NEGATIVE_INDICES).mean()) if calm.any() else 0.0
    share = np.bincount(probs.argmax(axis=1), minlength=len(LABELS)) / max(len(probs), 1)
    return HeadEvaluation(name, temperature, scores, {n: float(s) for n, s in zip(LABELS, share, strict=True)},
                          calm_negative)


def _metrics_table(m: Metrics) -> list[str]:
    lines = [f"{'class':<10}{'precision':>10}{'recall':>9}{'f1':>8}{'support':>9}"]
    for name, p, r, f, s in zip(LABELS, m.precision, m.recall, m.f1, m.support, strict=True):
        lines.append(f"{name:<10}{p:>10.3f}{r:>9.3f}{f:>8.3f}{s:>9d}")
    lines += ["confusion matrix (rows: true, columns: predicted)", " " * 10 + "".join(f"{n[:7]:>8}" for n in LABELS)]
    for name, row in zip(LABELS, m.confusion, strict=True):
        lines.append(f"{name:<10}" + "".join(f"{v:>8d}" for v in row))
    return lines


def format_evaluation(ev: Evaluation) -> str:
    """Human-readable report: headline figures of every head against both label sets, tables, matrices."""
    lines = [f"{ev.model} ({ev.model_version}) on {ev.split}: {ev.count} faces{', mirror TTA' if ev.flip_tta else ''}"]
    if ev.crowd_faces:
        left_out = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in ev.crowd_faces.items() if k != "scored")
        lines.append(f"crowd labels (FER+ majority over the seven emotions): {ev.crowd_faces['scored']} faces "
                     f"scored; left out: {left_out}")
    lines.append("")
    lines.append(f"{'head':<9}{'labels':<9}{'faces':>6}{'accuracy':>10}{'macro-F1':>10}{'min recall':>12}"
                 f"{'ECE':>8}{'ECE raw':>9}")
    for h in ev.heads.values():
        for s in h.scores.values():
            m = s.metrics
            lines.append(f"{h.head + (' *' if h.head == ev.default_head else ''):<9}{s.labels:<9}{s.count:>6}"
                         f"{m.accuracy:>10.4f}{m.macro_f1:>10.4f}{min(m.recall):>12.3f}{s.ece:>8.4f}"
                         f"{s.ece_uncalibrated:>9.4f}")
    lines.append("(* the default head; ECE raw: without the fitted bias and temperature; temperatures: "
                 + ", ".join(f"{h.head} {h.temperature:.3f}" for h in ev.heads.values()) + ")")
    for h in ev.heads.values():
        shares = "  ".join(f"{n} {v:.1%}" for n, v in h.predicted_share.items())
        lines += ["", f"== head {h.head} ==", f"predicted shares: {shares}"]
        if "crowd" in h.scores:
            lines.append(f"faces whose crowd majority is Neutral read negative (Angry, Disgust, Fear, Sad): "
                         f"{h.crowd_neutral_read_negative:.1%}")
        for s in h.scores.values():
            lines += ["", f"-- against {s.labels} labels ({s.count} faces) --", *_metrics_table(s.metrics)]
    return "\n".join(lines)


def save_evaluation(ev: Evaluation, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(ev.to_dict(), indent=2))

