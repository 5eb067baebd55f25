"""Every `classmood` command has help, and the model commands work end to end on small files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from classmood.cli import app

runner = CliRunner()


def _command_paths(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = []
    for name, cmd in group.commands.items():
        paths.append((*prefix, name))
        if getattr(cmd, "commands", None):  # a group (Typer may not use click's classes)
            paths.extend(_command_paths(cmd, (*prefix, name)))
    return paths


COMMANDS = _command_paths(typer.main.get_command(app))


def test_the_expected_commands_exist() -> None:
    names = {" ".join(p) for p in COMMANDS}
    assert {"train", "evaluate", "export", "bench", "bench model"} <= names


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p))
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output and len(result.output.strip().splitlines()) > 3


def test_evaluate_prints_and_saves_metrics(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    data = tmp_path / "fer2013.npz"
    np.savez(data, pixels=rng.integers(0, 256, (21, 48, 48), dtype=np.uint8),
             labels=(np.arange(21) % 7).astype(np.uint8), usage=np.full(21, 2, np.uint8))
    out = tmp_path / "metrics.json"
    result = runner.invoke(app, ["evaluate", "--data", str(data), "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.output.lower() and "macro" in result.output.lower()
    saved = json.loads(out.read_text())
    assert saved["count"] == 21
    for head in saved["heads"].values():  # without FER+ votes beside the data only FER2013's labels are scored
        assert set(head["scores"]) == {"fer2013"}
        assert len(head["scores"]["fer2013"]["confusion_matrix"]) == 7
    np.save(tmp_path / "ferplus_votes.npy", np.tile([[6, 1, 1, 1, 1, 0, 0, 0, 0, 0]], (21, 1)))
    result = runner.invoke(app, ["evaluate", "--data", str(data), "--json", str(out)])
    assert result.exit_code == 0, result.output
    saved = json.loads(out.read_text())
    assert saved["crowd_faces"]["scored"] == 21
    head = saved["heads"][saved["default_head"]]
    assert head["scores"]["crowd"]["count"] == 21 and "ece_uncalibrated" in head["scores"]["crowd"]


def test_console_script_runs_without_torch_imported() -> None:
    code = ("import sys; from classmood import EmotionClassifier; import numpy as np; "
            "EmotionClassifier().predict(np.zeros((1, 48, 48), np.uint8)); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
