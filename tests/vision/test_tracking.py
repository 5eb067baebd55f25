"""The face tracker on hand-made detections, and through the analyzer on real frames."""

from __future__ import annotations

import numpy as np
import pytest

from classmood.vision.pipeline import EmotionAnalyzer, FaceResult
from classmood.vision.tracking import FaceTracker, iou

from .conftest import moving_face_frames


def face(x: float, y: float, size: float = 60.0, probs: list[float] | None = None) -> FaceResult:
    p = np.array(probs if probs is not None else [0, 0, 0, 1, 0, 0, 0], np.float32)
    return FaceResult((x, y, size, size), 0.9, p, "Happy", np.zeros((5, 2), np.float32))


def test_iou() -> None:
    a = np.array([0, 0, 10, 10.0])
    assert iou(a, a) == 1.0
    assert iou(a, np.array([20, 20, 5, 5.0])) == 0.0
    assert iou(a, np.array([5, 0, 10, 10.0])) == pytest.approx(1 / 3)


def test_ids_follow_two_moving_faces() -> None:
    tracker = FaceTracker()
    ids = []
    for step in range(20):
        # Listed in a varying order: ids must follow positions, not list order.
        faces = [face(10 + 8 * step, 50), face(500 - 8 * step, 300)]
        out = tracker.update(faces[::-1] if step % 2 else faces)
        ids.append(sorted((f.box[0] < 300, f.face_id) for f in out))
    assert all(pair == ids[0] for pair in ids)
    assert {i for _, i in ids[0]} == {0, 1}


def test_a_face_that_jumps_more_than_its_width_keeps_its_id() -> None:
    tracker = FaceTracker()
    first = tracker.update([face(0, 0)])[0].face_id
    assert [tracker.update([face(70 * k, 0)])[0].face_id for k in range(1, 6)] == [first] * 5


def test_short_absence_keeps_the_id_long_absence_does_not() -> None:
    tracker = FaceTracker(max_missed=3)
    assert tracker.update([face(100, 100)])[0].face_id == 0
    for _ in range(3):
        assert tracker.update([]) == []
    assert tracker.update([face(102, 100)])[0].face_id == 0
    for _ in range(4):
        tracker.update([])
    assert tracker.update([face(102, 100)])[0].face_id == 1


def test_a_new_person_gets_a_new_id() -> None:
    tracker = FaceTracker()
    tracker.update([face(0, 0)])
    out = tracker.update([face(2, 0), face(600, 400)])
    assert [f.face_id for f in out] == [0, 1]


def test_smoothing_averages_a_track_over_its_window() -> None:
    tracker = FaceTracker(window_s=3.0)
    happy, sad = [0, 0, 0, 1, 0, 0, 0], [0, 0, 0, 0, 0, 1, 0]
    tracker.update([face(0, 0, probs=happy)], time_s=0.0)
    tracker.update([face(0, 0, probs=happy)], time_s=1.0)
    out = tracker.update([face(0, 0, probs=sad)], time_s=2.0)[0]
    assert out.probs[3] == pytest.approx(2 / 3) and out.probs[5] == pytest.approx(1 / 3)
    assert out.label == "Happy"  # one sad frame does not flip a smoothed face
    out = tracker.update([face(0, 0, probs=sad)], time_s=3.0)[0]  # the reading at t=0 has left the window
    assert out.probs[3] == pytest.approx(1 / 3) and out.label == "Sad"
    out = tracker.update([face(0, 0, probs=sad)], time_s=10.0)[0]  # a long gap: only the newest reading
    assert out.probs.tolist() == sad


def test_each_track_is_smoothed_on_its_own() -> None:
    tracker = FaceTracker(window_s=5.0)
    happy, sad = [0, 0, 0, 1, 0, 0, 0], [0, 0, 0, 0, 0, 1, 0]
    tracker.update([face(0, 0, probs=happy), face(600, 400, probs=sad)], time_s=0.0)
    a, b = tracker.update([face(0, 0, probs=happy), face(600, 400, probs=sad)], time_s=1.0)
    assert a.probs.tolist() == happy and b.probs.tolist() == sad


def test_without_smoothing_probabilities_pass_through() -> None:
    tracker = FaceTracker(window_s=0)
    tracker.update([face(0, 0, probs=[0, 0, 0, 1, 0, 0, 0])])
    out = tracker.update([face(0, 0, probs=[0.5, 0, 0, 0.5, 0, 0, 0])])[0]
    assert out.probs.tolist() == [0.5, 0, 0, 0.5, 0, 0, 0]


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf")])
def test_bad_smoothing_window(bad: float) -> None:
    with pytest.raises(ValueError, match="smoothing window"):
        FaceTracker(window_s=bad)


def test_track_gives_a_moving_face_one_id(analyzer: EmotionAnalyzer, astronaut: np.ndarray) -> None:
    results = list(analyzer.track(moving_face_frames(astronaut), fps=10.0, window_s=0.5))
    assert [len(r.faces) for r in results] == [1] * len(results)
    assert {r.faces[0].face_id for r in results} == {0}
    xs = [r.faces[0].box[0] for r in results]
    assert xs == sorted(xs)
    assert results[3].time_s == pytest.approx(0.3)
