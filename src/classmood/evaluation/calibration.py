"""Calibration: do the probabilities mean what they say? (numpy only)

Dashboards average probabilities into histograms, so a head that says 0.8 must be right about 80 % of the
time. :func:`expected_calibration_error` measures it (15 equal-width confidence bins, Guo et al., 2017) and
:func:`fit_temperature` fits the one number that fixes most of it: logits are divided by a temperature before
the softmax. The fit minimises the negative log-likelihood on a validation split (PublicTest), with the
model's test-time augmentation (the average of the face's and its mirror image's probabilities) included.

>>> rng = np.random.default_rng(0)
>>> labels = rng.integers(0, 7, 4000)
>>> logits = 3.0 * (np.eye(7)[labels] + rng.normal(0, 0.8, (4000, 7)))   # over-confident
>>> t = fit_temperature([logits], labels)
>>> before = expected_calibration_error(softmax(logits), labels)
>>> after = expected_calibration_error(softmax(logits / t), labels)
>>> t > 1.0, after < before
(True, True)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

ECE_BINS = 15
FloatArray = npt.NDArray[np.floating]


def softmax(logits: FloatArray, temperature: float = 1.0) -> npt.NDArray[np.float64]:
    z = np.asarray(logits, np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=-1, keepdims=True))


def tta_probs(views: Sequence[FloatArray], temperature: float = 1.0) -> npt.NDArray[np.float64]:
    """Probabilities averaged over the views' logits (N, C) after dividing each by ``temperature``."""
    return np.asarray(np.mean([softmax(v, temperature) for v in views], axis=0))


def negative_log_likelihood(probs: FloatArray, labels: npt.NDArray[np.integer]) -> float:
    p = np.clip(np.asarray(probs, np.float64)[np.arange(len(labels)), labels], 1e-12, 1.0)
    return float(-np.log(p).mean())


def fit_temperature(views: Sequence[FloatArray], labels: npt.NDArray[np.integer],
                    bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """The temperature that minimises the NLL of the TTA-averaged probabilities (golden-section search).

    The NLL is unimodal in log-temperature for one view; with averaged views it is so in practice, and the
    search is bracketed by ``bounds``.
    """
    labels = np.asarray(labels)

    def loss(log_t: float) -> float:
        return negative_log_likelihood(tta_probs(views, float(np.exp(log_t))), labels)

    lo, hi = np.log(bounds[0]), np.log(bounds[1])
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = loss(a), loss(b)
    for _ in range(60):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = loss(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = loss(b)
    return float(np.exp((lo + hi) / 2.0))


def expected_calibration_error(probs: FloatArray, labels: npt.NDArray[np.integer], bins: int = ECE_BINS) -> float:
    """Weighted mean gap between confidence and accuracy over ``bins`` equal-width confidence bins.

    >>> expected_calibration_error(np.array([[0.9, 0.1], [0.9, 0.1]]), np.array([0, 1]))
    0.4
    """
    p = np.asarray(probs, np.float64)
    labels = np.asarray(labels)
    if len(p) == 0:
        return 0.0
    confidence = p.max(axis=1)
    correct = (p.argmax(axis=1) == labels).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return round(float(ece), 12)


def uncalibrate(probs: FloatArray, temperature: float, bias: Sequence[float] = ()) -> npt.NDArray[np.float64]:
    """Undo what the graph applied for one view: ``p = softmax((z + b) / T)``, so ``softmax(T log p - b)`` is
    ``softmax(z)``, the network's own probabilities."""
    z = np.log(np.clip(np.asarray(probs, np.float64), 1e-12, 1.0)) * temperature
    return softmax(z - np.asarray(bias, np.float64) if len(bias) else z)


def prior_correction(prior: FloatArray, strength: float) -> npt.NDArray[np.float64]:
    """Logit adjustment against a class prior (Menon et al., 2021): ``-strength * log(prior)``, zero-mean.

    Rare classes gain, common ones lose; ``strength`` 0 changes nothing.

    >>> prior_correction(np.array([0.5, 0.5]), 1.0).tolist()
    [0.0, 0.0]
    """
    b = -strength * np.log(np.clip(np.asarray(prior, np.float64), 1e-6, 1.0))
    return np.asarray(b - b.mean())
