"""The shipped ONNX model through the public API, without PyTorch: labels, shapes, threads, accuracy."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from classmood import LABELS, EmotionClassifier
from classmood.vision.classifier import default_model_path

FER2013_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "fer2013"


@pytest.fixture(scope="module")
def clf() -> EmotionClassifier:
    return EmotionClassifier()


def test_labels_and_metadata_travel_with_the_model(clf: EmotionClassifier) -> None:
    assert clf.labels == list(LABELS) == ["Angry", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise"]
    assert list(clf.contract.labels) == clf.labels  # the label order is part of the contract
    assert clf.metadata["parameters"] <= 1_500_000
    assert default_model_path().is_file()


def test_predict_returns_probabilities_for_any_crop_size(clf: EmotionClassifier) -> None:
    rng = np.random.default_rng(0)
    probs = clf.predict(rng.integers(0, 256, (300, 48, 48), dtype=np.uint8))  # more than one internal batch
    assert probs.shape == (300, 7) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    big = clf.predict(rng.integers(0, 256, (2, 96, 80), dtype=np.uint8))
    assert big.shape == (2, 7)
    assert clf.predict(np.zeros((0, 48, 48), np.uint8)).shape == (0, 7)
    assert clf.predict(np.full((1, 48, 48), 0, np.uint8)).shape == (1, 7)  # flat crop: finite, no NaN
    assert np.isfinite(clf.predict(np.zeros((1, 48, 48), np.uint8))).all()
    with pytest.raises(ValueError, match="grey faces"):
        clf.predict(np.zeros((2, 48, 48, 3), np.uint8))


def test_predict_is_safe_from_several_threads(clf: EmotionClassifier) -> None:
    faces = np.random.default_rng(1).integers(0, 256, (40, 48, 48), dtype=np.uint8)
    serial = [clf.predict(faces[i : i + 10]) for i in range(0, 40, 10)]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(clf.predict, [faces[i : i + 10] for i in range(0, 40, 10)]))
    for a, b in zip(serial, parallel, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_missing_model_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="emotion model not found"):
        EmotionClassifier(tmp_path / "nope.onnx")


@pytest.mark.fer2013
@pytest.mark.skipif(not (FER2013_DIR / "fer2013.npz").is_file(),
                    reason=f"FER2013 not found at {FER2013_DIR} (see its README); the accuracy check needs it")
def test_shipped_model_on_private_test() -> None:
    """Regression floors for the shipped cm-small-5 (measured once: see the model card), both heads."""
    from classmood.evaluation.heads import evaluate_onnx

    result = evaluate_onnx(FER2013_DIR, split="PrivateTest")
    assert result.default_head == "crowd"
    crowd = result.heads["crowd"]
    agreement = crowd.scores["crowd"]
    assert result.crowd_faces["scored"] == 3350  # unique FER+ majority among the seven emotions
    assert agreement.metrics.accuracy >= 0.84, f"FER+ agreement {agreement.metrics.accuracy:.4f}"  # 0.8472
    assert agreement.ece <= 0.03 and agreement.ece < agreement.ece_uncalibrated
    assert crowd.crowd_neutral_read_negative <= 0.20  # calm faces must not read negative
    # Disgust: 10 of its 22 faces, 0.455 measured; one face is 0.045 of recall, so the floor (0.40, 9 faces)
    # leaves one face of margin for int8 rounding on other CPUs.
    assert min(agreement.metrics.recall) >= 0.40
    fer = result.heads["fer2013"].scores["fer2013"].metrics
    assert fer.accuracy >= 0.69, f"FER2013 accuracy of the fer2013 head {fer.accuracy:.4f}"  # 0.6963
    assert min(fer.recall) >= 0.42  # Fear: 0.438 measured (the issue asks 0.45: not met by this release)
