"""Reading FER2013 in its three layouts (no PyTorch needed).

* ``fer2013.npz`` as prepared in ``shared/data/fer2013`` (arrays ``pixels``, ``labels``, ``usage``);
* the original Kaggle ``fer2013.csv`` (columns ``emotion,pixels,Usage``);
* the image-folder edition: ``train/<class>/*.jpg`` and ``test/<class>/*.jpg``.

Labels are returned in :data:`classmood.labels.LABELS` order, whatever the source's own coding.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from classmood.labels import FER2013_TO_INDEX, label_index

TRAINING, PUBLIC_TEST, PRIVATE_TEST = 0, 1, 2
SPLITS = {"Training": TRAINING, "PublicTest": PUBLIC_TEST, "PrivateTest": PRIVATE_TEST}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".pgm"}
_CODE_MAP = np.array(FER2013_TO_INDEX, dtype=np.int64)


VOTES_FILE = "ferplus_votes.npy"
# FER+ vote columns: neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, not-a-face.
# FERPLUS_TO_INDEX[column] is the position of that emotion in LABELS (the first seven columns).
FERPLUS_TO_INDEX: tuple[int, ...] = (4, 3, 6, 5, 0, 1, 2)
FERPLUS_COLUMNS = 10
CONTEMPT, UNKNOWN, NOT_A_FACE = 7, 8, 9
# A row needs at least this many of its ten votes on the seven shared emotions to get a crowd target: rows
# voted mostly "unknown", "not a face" or contempt say little about our seven classes.
MIN_EMOTION_VOTES = 5
NO_MAJORITY = -1


@dataclass(frozen=True)
class FaceDataset:
    """Grey 48x48 faces with labels (LABELS order) and split codes (0 train, 1 public, 2 private).

    ``votes`` are the FER+ crowd votes (N, 10) in FER+ column order when they were found beside the data.
    """

    pixels: npt.NDArray[np.uint8]
    labels: npt.NDArray[np.int64]
    usage: npt.NDArray[np.int8]
    votes: npt.NDArray[np.int64] | None = None

    def split(self, name: str) -> FaceDataset:
        """Return the rows of one split: ``Training``, ``PublicTest`` or ``PrivateTest``."""
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; choose from {', '.join(SPLITS)}")
        return self.subset(self.usage == SPLITS[name])

    def subset(self, keep: npt.NDArray[np.bool_] | slice) -> FaceDataset:
        votes = None if self.votes is None else self.votes[keep]
        return FaceDataset(self.pixels[keep], self.labels[keep], self.usage[keep], votes)

    def require_votes(self) -> npt.NDArray[np.int64]:
        if self.votes is None:
            raise ValueError(f"no FER+ votes loaded: put {VOTES_FILE} beside the FER2013 data")
        return self.votes

    def __len__(self) -> int:
        return len(self.labels)


def crowd_targets(votes: npt.NDArray[np.integer]) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """Soft targets (N, 7) in LABELS order from FER+ votes (N, 10), and which rows have one.

    Votes for contempt, "unknown" and "not a face" are dropped (contempt has no counterpart among the seven
    classes); the remaining votes are normalised into a distribution. Rows with fewer than
    :data:`MIN_EMOTION_VOTES` emotion votes get no target (mask False, target all zeros).

    >>> t, ok = crowd_targets(np.array([[6, 0, 0, 2, 0, 0, 0, 2, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0, 2, 8]]))
    >>> t[0].round(2).tolist(), ok.tolist()
    ([0.0, 0.0, 0.0, 0.0, 0.75, 0.25, 0.0], [True, False])
    """
    v = np.asarray(votes, np.float64)
    emotions = np.zeros((len(v), len(FERPLUS_TO_INDEX)), np.float64)
    emotions[:, list(FERPLUS_TO_INDEX)] = v[:, : len(FERPLUS_TO_INDEX)]
    total = emotions.sum(axis=1)
    ok = total >= MIN_EMOTION_VOTES
    targets = np.where(ok[:, None], emotions / np.maximum(total, 1.0)[:, None], 0.0)
    return targets.astype(np.float32), ok


def crowd_majority(votes: npt.NDArray[np.integer]) -> npt.NDArray[np.int64]:
    """The crowd's label per row in LABELS order, or :data:`NO_MAJORITY`.

    A row has a label when its most-voted of all ten FER+ columns is unique and is one of the seven shared
    emotions: rows whose top vote is tied, contempt, "unknown" or "not a face" are left out of scoring.

    >>> crowd_majority(np.array([[6, 0, 0, 2, 0, 0, 0, 2, 0, 0], [3, 3, 0, 0, 0, 0, 0, 0, 0, 4],
    ...                          [4, 4, 0, 0, 0, 0, 0, 2, 0, 0]])).tolist()
    [4, -1, -1]
    """
    v = np.asarray(votes, np.int64)
    top = v.argmax(axis=1)
    unique = (v == v.max(axis=1, keepdims=True)).sum(axis=1) == 1
    shared = top < len(FERPLUS_TO_INDEX)
    mapped = np.array(FERPLUS_TO_INDEX + (NO_MAJORITY,) * (FERPLUS_COLUMNS - len(FERPLUS_TO_INDEX)))[top]
    return np.where(unique & shared, mapped, NO_MAJORITY).astype(np.int64)


def load_votes(path: Path, rows: int) -> npt.NDArray[np.int64] | None:
    """FER+ votes from ``path`` if it exists and matches the data's row count."""
    if not path.is_file():
        return None
    votes = np.load(path).astype(np.int64)
    if votes.shape != (rows, FERPLUS_COLUMNS):
        raise ValueError(f"{path}: expected FER+ votes shaped ({rows}, {FERPLUS_COLUMNS}), got {votes.shape}")
    return np.asarray(votes, np.int64)


def load_npz(path: Path) -> FaceDataset:
    """``fer2013.npz``; the FER+ votes are picked up from ``ferplus_votes.npy`` beside it (row-aligned)."""
    with np.load(path) as data:
        pixels = np.ascontiguousarray(data["pixels"], dtype=np.uint8)
        labels = _CODE_MAP[data["labels"].astype(np.int64)]
        usage = data["usage"].astype(np.int8)
    return FaceDataset(pixels, labels, usage, load_votes(path.with_name(VOTES_FILE), len(labels)))


def load_csv(path: Path) -> FaceDataset:
    pixels, labels, usage = [], [], []
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"emotion", "pixels", "Usage"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: not a FER2013 CSV, missing columns {sorted(missing)}")
        for line, row in enumerate(reader, start=2):
            values = np.array(row["pixels"].split(), dtype=np.uint8)
            if values.size != 48 * 48 or row["Usage"] not in SPLITS:
                raise ValueError(f"{path}:{line}: expected 2304 pixels and a known Usage")
            pixels.append(values.reshape(48, 48))
            labels.append(FER2013_TO_INDEX[int(row["emotion"])])
            usage.append(SPLITS[row["Usage"]])
    votes = load_votes(path.with_name(VOTES_FILE), len(labels))
    return FaceDataset(np.stack(pixels), np.array(labels, np.int64), np.array(usage, np.int8), votes)


def load_folders(root: Path, val_fraction: float = 0.1, seed: int = 0) -> FaceDataset:
    """Read ``train/<class>/`` and ``test/<class>/``.

    This edition has no PublicTest split, so a stratified ``val_fraction`` of ``train``
    (fixed seed) stands in for PublicTest, and ``test`` is reported as PrivateTest.
    """
    parts = []
    for sub, code in (("train", TRAINING), ("test", PRIVATE_TEST)):
        pix, lab = _read_class_folders(root / sub)
        use = np.full(len(lab), code, np.int8)
        if code == TRAINING:
            use[_stratified_pick(lab, val_fraction, seed)] = PUBLIC_TEST
        parts.append((pix, lab, use))
    return FaceDataset(*(np.concatenate(arrays) for arrays in zip(*parts, strict=True)))


def _read_class_folders(folder: Path) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: missing folder of the image-folder layout")
    pixels, labels = [], []
    for class_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        index = label_index(class_dir.name)
        for file in sorted(class_dir.iterdir()):
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            image = cv2.imread(str(file), cv2.IMREAD_GRAYSCALE)
            if image is None:
                raise ValueError(f"{file}: not a readable image")
            if image.shape != (48, 48):
                image = cv2.resize(image, (48, 48), interpolation=cv2.INTER_AREA)
            pixels.append(image)
            labels.append(index)
    if not labels:
        raise ValueError(f"{folder}: no images found")
    return np.stack(pixels), np.array(labels, np.int64)


def _stratified_pick(labels: npt.NDArray[np.int64], fraction: float, seed: int) -> npt.NDArray[np.int64]:
    rng = np.random.default_rng(seed)
    picked = []
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        picked.append(rng.choice(rows, size=round(len(rows) * fraction), replace=False))
    return np.sort(np.concatenate(picked))


def load_fer2013(path: str | Path) -> FaceDataset:
    """Load FER2013 from a file or a folder holding one of the three layouts.

    >>> data = load_fer2013("../shared/data/fer2013")  # doctest: +SKIP
    >>> len(data.split("PrivateTest"))  # doctest: +SKIP
    3589
    """
    path = Path(path)
    if path.is_file():
        if path.suffix == ".npz":
            return load_npz(path)
        if path.suffix == ".csv":
            return load_csv(path)
        raise ValueError(f"{path}: expected a .npz or .csv file, or a folder")
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such file or folder")
    for name, loader in (("fer2013.npz", load_npz), ("fer2013.csv", load_csv)):
        if (path / name).is_file():
            return loader(path / name)
    if (path / "train").is_dir() and (path / "test").is_dir():
        return load_folders(path)
    raise FileNotFoundError(f"{path}: found neither fer2013.npz, fer2013.csv nor train/ and test/ folders")
