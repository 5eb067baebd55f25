"""The FER2013 loader reads the prepared npz, the original Kaggle CSV and the image-folder layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from classmood.evaluation.datasets import SPLITS, load_fer2013
from classmood.labels import FER2013_TO_INDEX, LABELS, label_index


def test_npz_and_csv_agree_and_map_codes_to_labels(fer_npz: Path, fer_csv: Path,
                                                   fer_arrays: dict[str, np.ndarray]) -> None:
    a, b = load_fer2013(fer_npz), load_fer2013(fer_csv.parent)
    assert np.array_equal(a.pixels, fer_arrays["pixels"]) and np.array_equal(b.pixels, fer_arrays["pixels"])
    expected = np.array([FER2013_TO_INDEX[int(c)] for c in fer_arrays["labels"]])
    assert np.array_equal(a.labels, expected) and np.array_equal(b.labels, expected)
    assert np.array_equal(a.usage, b.usage)
    assert [len(a.split(s)) for s in SPLITS] == [28, 28, 28]
    # FER2013 code 4 is Sad, code 6 Neutral; ClassMood orders alphabetically.
    assert LABELS[FER2013_TO_INDEX[4]] == "Sad" and LABELS[FER2013_TO_INDEX[6]] == "Neutral"


def test_folder_layout_reads_classes_and_makes_a_stratified_public_split(fer_folders: Path,
                                                                         fer_arrays: dict[str, np.ndarray]) -> None:
    data = load_fer2013(fer_folders)
    assert len(data) == len(fer_arrays["labels"])
    test = data.split("PrivateTest")
    assert len(test) == 28
    assert sorted(test.labels.tolist()) == sorted(FER2013_TO_INDEX[int(c)] for c in fer_arrays["labels"][56:])
    public = data.split("PublicTest")
    assert 0 < len(public) < len(data.split("Training"))
    # Every image survives the round trip through PNG unchanged.
    originals = {p.tobytes() for p in fer_arrays["pixels"]}
    assert all(p.tobytes() in originals for p in data.pixels)


def test_label_index_accepts_folder_names() -> None:
    assert label_index("happy") == LABELS.index("Happy")
    with pytest.raises(ValueError):
        label_index("contempt")


def test_bad_inputs_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_fer2013(tmp_path / "missing")
    bad = tmp_path / "fer2013.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a FER2013 CSV"):
        load_fer2013(bad)
    with pytest.raises(ValueError, match="unknown split"):
        load_fer2013(_tiny_npz(tmp_path)).split("Validation")


def _tiny_npz(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.npz"
    np.savez(path, pixels=np.zeros((3, 48, 48), np.uint8), labels=np.zeros(3, np.uint8),
             usage=np.arange(3, dtype=np.uint8))
    return path
