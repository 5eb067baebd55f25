"""Report charts from a DataFrame, and the building blocks of `classmood bench pipeline`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from classmood.benchmarks.pipeline import (
    box_crop,
    crop_study,
    fer_tile,
    format_pipeline_bench,
    gallery,
    score_frame,
    webcam_frame,
)
from classmood.labels import LABELS
from classmood.vision.pipeline import ROW_COLUMNS, EmotionAnalyzer
from classmood.vision.report import label_shares, write_report

FER2013_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "fer2013"


def table(rows: list[tuple[str, int, float, int | None, str]]) -> pd.DataFrame:
    records = []
    for source, frame, time_s, face_id, label in rows:
        probs = {name: float(name == label) for name in LABELS}
        records.append({"source": source, "frame": frame, "time_s": time_s, "face_id": face_id, "box_x": 0.0,
                        "box_y": 0.0, "box_w": 10.0, "box_h": 10.0, "score": 0.9, "label": label, **probs})
    return pd.DataFrame(records, columns=list(ROW_COLUMNS)).astype({"face_id": "Int64"})


def test_label_shares() -> None:
    df = table([("a", 0, 0.0, None, "Happy"), ("a", 1, 0.0, None, "Happy"), ("b", 0, 0.0, None, "Sad")])
    assert label_shares(df).tolist() == pytest.approx([0, 0, 0, 2 / 3, 0, 1 / 3, 0])
    assert label_shares(df.iloc[:0]).tolist() == [0.0] * 7


def test_report_per_person_and_timeline(tmp_path: Path) -> None:
    df = table([("v.mp4", i, i / 2, i % 2, "Happy" if i < 6 else "Sad") for i in range(12)])
    written = write_report(df, tmp_path / "r")
    names = sorted(str(p.relative_to(tmp_path / "r")) for p in written)
    assert names == ["histogram.png", "people/v.mp4-face0.png", "people/v.mp4-face1.png", "table.csv",
                     "timeline.png"]
    assert all(p.stat().st_size > 1000 for p in written if p.suffix == ".png")
    assert len(pd.read_csv(tmp_path / "r" / "table.csv")) == 12


def test_report_without_faces(tmp_path: Path) -> None:
    written = write_report(table([]), tmp_path / "empty")
    assert {p.name for p in written} == {"table.csv", "histogram.png", "timeline.png"}


def test_gallery_and_scoring() -> None:
    tiles = [np.full((100, 80, 3), i * 10, np.uint8) for i in range(25)]
    frame, regions = gallery(tiles, size=(1280, 720))
    assert frame.shape == (720, 1280, 3) and len(regions) == 25 and regions[6] == (256, 144, 256, 144)
    probs = np.eye(7, dtype=np.float32)
    found = [((10.0, 10.0, 20.0, 20.0), probs[3]), ((300.0, 10.0, 20.0, 20.0), probs[0]),
             ((12.0, 12.0, 20.0, 20.0), probs[3])]
    assert score_frame(found, regions[:2], [3, 5]) == (2, 1, 1)


def test_frame_builders() -> None:
    photo = np.zeros((512, 512, 3), np.uint8)
    frame, region = webcam_frame(photo, (100, 50, 100, 120))
    assert frame.shape == (480, 640, 3) and region == (174, 47, 94, 112)
    assert fer_tile(np.zeros((48, 48), np.uint8), side=96).shape == (164, 164, 3)
    grey = np.arange(100 * 100, dtype=np.uint32).reshape(100, 100).astype(np.uint8)
    assert box_crop(grey, np.array([-10, -10, 30, 40, 1, *[0] * 10], np.float32)).shape == (48, 48)


@pytest.mark.fer2013
@pytest.mark.slow
@pytest.mark.skipif(not (FER2013_DIR / "fer2013.npz").is_file(), reason="FER2013 not in ../shared/data/fer2013")
def test_crop_study_on_a_few_faces(analyzer: EmotionAnalyzer) -> None:
    study = crop_study(analyzer, FER2013_DIR, limit=40)
    for split in ("PublicTest", "PrivateTest"):
        res = study[split]
        assert res["faces"] == 40 and res["recall"] > 0.8
        for key in ("raw_found", "naive_box", "unaligned", "aligned"):
            assert 0.0 <= res[key] <= 1.0
    assert len(study["PublicTest"]["sweep"]) == 10
    assert study["tilted"]["recall"] > 0.7 and 0.0 <= study["tilted"]["aligned"] <= 1.0
    result = {"classmood": dict.fromkeys(("webcam_ms", "gallery_ms", "faces_per_s", "webcam_recall",
                                          "gallery_recall", "fer_gallery_recall", "fer_gallery_accuracy",
                                          "false_detections"), 1.0), "fer": None, "crop_study": study}
    text = format_pipeline_bench(result)
    assert "fer peer unavailable" in text and "measured margin, eyes aligned" in text
