"""The class histogram's own accuracy: simulated classes against the crowd, counted as the server counts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from classmood.cli import app
from classmood.evaluation.classes import server_shares, simulate
from classmood.labels import LABELS
from classmood.server.analytics.queries import counts_from

NEUTRAL, SAD, HAPPY = LABELS.index("Neutral"), LABELS.index("Sad"), LABELS.index("Happy")


def test_the_histogram_is_the_servers() -> None:
    labels = np.array([HAPPY, HAPPY, NEUTRAL, SAD, HAPPY])
    shares = counts_from([(HAPPY, 3), (NEUTRAL, 1), (SAD, 1)]).shares()
    assert server_shares(labels).tolist() == [shares[label] for label in LABELS]


def test_a_perfect_model_scores_zero_and_a_gloomy_one_scores_one_on_calm_classes() -> None:
    crowd = np.array([NEUTRAL] * 40 + [HAPPY] * 30 + [SAD] * 30 + [-1] * 10)
    perfect = simulate(np.where(crowd >= 0, crowd, 0), crowd, kind="random", students=10, classes=200)
    assert perfect.total_variation == 0.0 and perfect.negative_share_error == 0.0
    assert 0.2 < perfect.negative_share_crowd < 0.4  # about 30 of the 100 faces with a majority are Sad
    gloomy = simulate(np.full(len(crowd), SAD), crowd, kind="calm", students=5, classes=50)
    assert gloomy.total_variation == 1.0 and gloomy.negative_share_error == 1.0
    assert gloomy.negative_share_crowd == 0.0 and gloomy.negative_share_shown == 1.0
    # Half the calm faces read Sad: on average half the histogram is wrong, and so is the negative share.
    half = np.where(np.arange(len(crowd)) % 2 == 0, SAD, NEUTRAL)
    mixed = simulate(half, crowd, kind="calm", students=10, classes=500, seed=3)
    assert mixed.total_variation == pytest.approx(0.5, abs=0.05)
    assert mixed.negative_share_error == mixed.negative_share_shown == mixed.total_variation
    with pytest.raises(ValueError, match="cannot draw"):
        simulate(half, crowd, kind="calm", students=41)


def test_evaluate_classes_reports_every_kind_and_size(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 120
    data = tmp_path / "fer2013.npz"
    np.savez(data, pixels=rng.integers(0, 256, (n, 48, 48), dtype=np.uint8),
             labels=(np.arange(n) % 7).astype(np.uint8), usage=np.full(n, 2, np.uint8))
    votes = np.zeros((n, 10), np.int64)
    votes[np.arange(n), np.arange(n) % 3] = 8  # FER+ columns: neutral, happiness, surprise
    np.save(tmp_path / "ferplus_votes.npy", votes)
    out = tmp_path / "classes.json"
    result = CliRunner().invoke(app, ["evaluate", "--classes", "--data", str(data), "--json", str(out)])
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())["rows"]
    assert [(r["kind"], r["students"]) for r in rows] == [(k, s) for k in ("random", "calm") for s in (5, 10, 30)]
    assert all(r["classes"] == 3000 and 0.0 <= r["total_variation"] <= 1.0 for r in rows)
    assert all(r["negative_share_crowd"] == 0.0 for r in rows)  # no crowd majority here is negative
    assert "TV distance" in result.output
