"""The second-generation model's pieces: FER+ targets, the contract in the ONNX file, heads, calibration."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from classmood.evaluation.calibration import (
    expected_calibration_error,
    fit_temperature,
    softmax,
    tta_probs,
    uncalibrate,
)
from classmood.evaluation.datasets import MIN_EMOTION_VOTES, NO_MAJORITY, crowd_majority, crowd_targets
from classmood.labels import LABELS
from classmood.vision.classifier import EmotionClassifier, default_model_path
from classmood.vision.contract import CONTRACT_KEY, ContractError, ModelContract, example_contract

# FER+ columns: neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, not-a-face.
VOTES = np.array([
    [7, 0, 0, 3, 0, 0, 0, 0, 0, 0],  # mostly neutral, some sad
    [0, 10, 0, 0, 0, 0, 0, 0, 0, 0],  # all happy
    [0, 0, 0, 0, 2, 2, 0, 1, 5, 0],  # half unknown: only 4 emotion votes -> no crowd target
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 10],  # not a face
    [5, 0, 0, 0, 0, 0, 0, 5, 0, 0],  # neutral tied with contempt
    [1, 0, 3, 0, 0, 0, 3, 0, 0, 0],  # surprise tied with fear
    [2, 0, 0, 0, 6, 0, 0, 2, 0, 0],  # anger with two contempt votes (dropped)
])
LAB = {name: i for i, name in enumerate(LABELS)}


def test_crowd_targets_follow_the_votes_in_label_order() -> None:
    targets, ok = crowd_targets(VOTES)
    assert ok.tolist() == [True, True, False, False, True, True, True]
    assert targets[0, LAB["Neutral"]] == pytest.approx(0.7) and targets[0, LAB["Sad"]] == pytest.approx(0.3)
    assert targets[1, LAB["Happy"]] == 1.0
    assert targets[2].sum() == 0 and targets[3].sum() == 0  # rows without a target are all zero
    assert targets[4, LAB["Neutral"]] == 1.0  # contempt votes are dropped, the rest renormalised
    assert targets[5, LAB["Surprise"]] == pytest.approx(3 / 7) and targets[5, LAB["Fear"]] == pytest.approx(3 / 7)
    assert targets[6, LAB["Angry"]] == pytest.approx(0.75) and targets[6, LAB["Neutral"]] == pytest.approx(0.25)
    np.testing.assert_allclose(targets[ok].sum(axis=1), 1.0, rtol=1e-6)
    assert MIN_EMOTION_VOTES == 5


def test_crowd_majority_leaves_out_ties_unknown_and_not_a_face() -> None:
    majority = crowd_majority(VOTES)
    assert majority.tolist() == [LAB["Neutral"], LAB["Happy"], NO_MAJORITY, NO_MAJORITY, NO_MAJORITY, NO_MAJORITY,
                                 LAB["Angry"]]


def test_contract_round_trip_and_validation() -> None:
    contract = example_contract()
    again = ModelContract.from_json(contract.to_json())
    assert again == contract
    assert again.head().name == "crowd" and again.head("fer2013").output == "fer2013"
    with pytest.raises(ValueError, match="unknown head"):
        contract.head("happiness")
    data = json.loads(contract.to_json())
    for change, message in (({"default_head": "nope"}, "default head"), ({"labels": list(reversed(LABELS))}, "labels"),
                            ({"input_size": 64}, "input"), ({"schema": 99}, "schema"), ({"tta": "ten-crop"}, "tta")):
        with pytest.raises(ContractError, match=message):
            ModelContract.from_dict({**data, **change})
    with pytest.raises(ContractError, match="malformed"):
        ModelContract.from_dict({k: v for k, v in data.items() if k != "heads"})
    with pytest.raises(ContractError, match="not JSON"):
        ModelContract.from_json("{nope")


def test_shipped_model_carries_its_contract() -> None:
    clf = EmotionClassifier()
    raw = onnx.load(str(default_model_path())).metadata_props
    document = next(p.value for p in raw if p.key == CONTRACT_KEY)
    assert ModelContract.from_json(document) == clf.contract
    assert clf.head == clf.contract.default_head
    assert clf.flip_tta == (clf.contract.tta == "mirror")


def test_a_file_without_a_contract_is_refused(tmp_path: Path) -> None:
    model = onnx.load(str(default_model_path("fp32")))
    kept = [p for p in model.metadata_props if p.key != CONTRACT_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    onnx.save(model, str(tmp_path / "bare.onnx"))
    with pytest.raises(ContractError, match="not a ClassMood model"):
        EmotionClassifier(tmp_path / "bare.onnx")


def test_a_contract_naming_a_missing_output_is_refused(tmp_path: Path) -> None:
    model = onnx.load(str(default_model_path("fp32")))
    for prop in model.metadata_props:
        if prop.key == CONTRACT_KEY:
            data = json.loads(prop.value)
            data["heads"][0]["output"] = "no_such_output"
            prop.value = json.dumps(data)
    onnx.save(model, str(tmp_path / "wrong.onnx"))
    with pytest.raises(ContractError, match="missing outputs"):
        EmotionClassifier(tmp_path / "wrong.onnx")


def test_head_selection() -> None:
    faces = np.random.default_rng(0).integers(0, 256, (4, 48, 48), dtype=np.uint8)
    default = EmotionClassifier()
    every = default.predict_heads(faces)
    assert set(every) == set(default.contract.head_names)
    for name in default.contract.head_names:
        clf = EmotionClassifier(head=name)
        assert clf.head == name
        np.testing.assert_allclose(clf.predict(faces), every[name], atol=1e-6)
    with pytest.raises(ValueError, match="unknown head"):
        EmotionClassifier(head="happiness")


def test_temperature_scaling_lowers_ece_on_a_miscalibrated_set() -> None:
    rng = np.random.default_rng(3)
    n = 6000
    labels = rng.integers(0, 7, n)
    clean = np.eye(7)[labels] * 2.0 + rng.normal(0.0, 1.0, (n, 7))
    over, under = 3.0 * clean, 0.3 * clean  # over-confident and under-confident copies of the same scores
    for logits, expect_above_one in ((over, True), (under, False)):
        mirror = logits + rng.normal(0.0, 0.3, logits.shape)
        t = fit_temperature([logits, mirror], labels)
        assert (t > 1.0) == expect_above_one
        before = expected_calibration_error(tta_probs([logits, mirror]), labels)
        after = expected_calibration_error(tta_probs([logits, mirror], t), labels)
        assert after < 0.5 * before and after < 0.03, (t, before, after)


def test_uncalibrate_undoes_the_temperature_inside_the_graph() -> None:
    logits = np.random.default_rng(1).normal(0, 2, (5, 7))
    np.testing.assert_allclose(uncalibrate(softmax(logits, 1.7), 1.7), softmax(logits), atol=1e-9)
