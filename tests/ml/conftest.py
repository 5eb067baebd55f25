"""Fixtures for the model tests: small FER2013 files in each of the three layouts, built at test time, and one
tiny training run that several test files read."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from classmood.labels import FER2013_TO_INDEX, LABELS

FER2013_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "fer2013"
USAGE_NAMES = ("Training", "PublicTest", "PrivateTest")


def synthetic_fer(n: int = 84, seed: int = 0) -> dict[str, np.ndarray]:
    """Arrays shaped like fer2013.npz: random faces, FER2013 label codes, usage codes."""
    rng = np.random.default_rng(seed)
    return {"pixels": rng.integers(0, 256, (n, 48, 48), dtype=np.uint8),
            "labels": (np.arange(n) % 7).astype(np.uint8),
            "usage": np.repeat(np.arange(3, dtype=np.uint8), n // 3)}


@pytest.fixture(scope="session")
def fer_arrays() -> dict[str, np.ndarray]:
    return synthetic_fer()


@pytest.fixture(scope="session")
def fer_npz(tmp_path_factory: pytest.TempPathFactory, fer_arrays: dict[str, np.ndarray]) -> Path:
    path = tmp_path_factory.mktemp("npz") / "fer2013.npz"
    np.savez_compressed(path, **fer_arrays)
    return path


@pytest.fixture(scope="session")
def fer_csv(tmp_path_factory: pytest.TempPathFactory, fer_arrays: dict[str, np.ndarray]) -> Path:
    path = tmp_path_factory.mktemp("csv") / "fer2013.csv"
    rows = ["emotion,pixels,Usage"]
    for pix, lab, use in zip(fer_arrays["pixels"], fer_arrays["labels"], fer_arrays["usage"], strict=True):
        rows.append(f"{lab},{' '.join(map(str, pix.ravel()))},{USAGE_NAMES[use]}")
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="session")
def fer_folders(tmp_path_factory: pytest.TempPathFactory, fer_arrays: dict[str, np.ndarray]) -> Path:
    """The Kaggle image-folder layout: train/<class>/*.png (Training+PublicTest), test/<class>/*.png."""
    root = tmp_path_factory.mktemp("folders")
    for i, (pix, code, use) in enumerate(zip(*fer_arrays.values(), strict=True)):
        sub = "test" if use == 2 else "train"
        folder = root / sub / LABELS[FER2013_TO_INDEX[int(code)]].lower()
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{i:05d}.png"), pix)
    return root


@pytest.fixture(scope="session")
def learnable_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few hundred faces whose class shows as a bright horizontal band: a run can learn it quickly."""
    rng = np.random.default_rng(1)
    n = 420
    labels = np.arange(n) % 7
    pixels = rng.normal(90, 20, (n, 48, 48))
    for i, c in enumerate(labels):
        pixels[i, 6 * c + 2 : 6 * c + 7, :] += 120
    data = {"pixels": pixels.clip(0, 255).astype(np.uint8), "labels": labels.astype(np.uint8),
            "usage": np.where(np.arange(n) < 350, 0, 1).astype(np.uint8)}
    path = tmp_path_factory.mktemp("learnable") / "fer2013.npz"
    np.savez_compressed(path, **data)
    np.save(path.with_name("ferplus_votes.npy"), votes_for(labels, rng))
    return path


def votes_for(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """FER+-shaped votes (N, 10) that mostly agree with ``labels`` (LABELS order): 7 to 10 votes for it."""
    from classmood.evaluation.datasets import FERPLUS_TO_INDEX

    column = {index: col for col, index in enumerate(FERPLUS_TO_INDEX)}
    votes = np.zeros((len(labels), 10), np.int64)
    for i, c in enumerate(labels):
        agree = int(rng.integers(7, 11))
        votes[i, column[int(c)]] = agree
        votes[i, rng.integers(0, 10, 10 - agree)] += 1
    return votes


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """PyTorch on one thread, as before afterwards. The suite runs two test processes on two cores: with a
    thread per core each, torch's threads fight over the cores and a tiny run is several times slower."""
    try:
        import torch
    except ImportError:  # the tests that need it skip themselves
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    with one_torch_thread():
        yield


@dataclass(frozen=True)
class TinyRun:
    """A finished ``classmood.ml.train.train`` run of cm-tiny on :func:`learnable_npz`."""

    cfg: Any  # classmood.ml.train.TrainConfig (torch is imported only by the tests that need it)
    out: Path  # its folder: best.pt, last.pt, summary.json (read, never written, by the tests)
    summary: dict[str, Any]


@pytest.fixture(scope="session")
def tiny_run(learnable_npz: Path, tmp_path_factory: pytest.TempPathFactory) -> TinyRun:
    """One trained tiny network for the whole process: the training test checks it and resumes a copy of its
    recipe, the ensemble tests use its ``best.pt`` as a trained member (three epochs learn the bands)."""
    pytest.importorskip("torch", reason="PyTorch is in the `train` extra")
    from classmood.ml.train import TrainConfig, train

    cfg = TrainConfig(model="cm-tiny", epochs=3, batch_size=32, lr=0.05, warmup_epochs=0.5, bf16=False)
    out = tmp_path_factory.mktemp("tiny-run")
    with one_torch_thread():  # a session fixture is made before the module's autouse one
        summary = train(learnable_npz, out, cfg, log=lambda _: None)
    return TinyRun(cfg, out, summary)
