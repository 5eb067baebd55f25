"""`classmood analyze` end to end: output formats, bad inputs, reports; `classmood bench pipeline --help`."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from classmood.cli import app
from classmood.labels import LABELS
from classmood.vision.pipeline import ROW_COLUMNS

runner = CliRunner()
FIELDS = {"source", "frame", "time_s", "face_id", "box", "label", "probs", "score"}


def run(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["analyze", *args])


def test_jsonl_for_an_image(media: dict[str, Path]) -> None:
    result = run(str(media["astronaut"]))
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 1 and set(rows[0]) >= FIELDS
    row = rows[0]
    assert row["source"] == str(media["astronaut"]) and row["frame"] == 0 and row["face_id"] is None
    assert len(row["box"]) == 4 and set(row["probs"]) == set(LABELS)
    assert sum(row["probs"].values()) == pytest.approx(1.0, abs=1e-4)
    assert row["label"] == max(row["probs"], key=row["probs"].get) == "Happy"


def test_csv_for_a_video_to_a_file(media: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "faces.csv"
    result = run(str(media["avi"]), "--format", "csv", "--output", str(out), "--every", "6", "--smooth", "1.0")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == list(ROW_COLUMNS)
    assert [int(r["frame"]) for r in rows] == [0, 6, 12, 18]
    assert {r["face_id"] for r in rows} == {"0"}
    assert [float(r["time_s"]) for r in rows] == pytest.approx([0.0, 0.6, 1.2, 1.8])
    for r in rows:
        assert sum(float(r[name]) for name in LABELS) == pytest.approx(1.0, abs=1e-4)


def test_bad_inputs_are_reported_and_the_rest_analysed(media: dict[str, Path], tmp_path: Path) -> None:
    missing = tmp_path / "missing.jpg"
    args = [str(media["corrupt"]), str(missing), str(media["astronaut"]), str(media["truncated_mp4"]),
            str(media["text"]), str(media["truncated_avi"]), str(media["noface"]), "--every", "4"]
    result = run(*args)
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 5, result.stderr
    joined = "\n".join(errors)
    assert f"{missing}: no such file" in joined
    assert f"{media['corrupt']}: not a readable image" in joined
    assert f"{media['truncated_mp4']}: cannot open as a video" in joined
    assert f"{media['text']}: not an image or a video" in joined
    assert f"{media['truncated_avi']}: truncated or corrupt video" in joined
    sources = [json.loads(line)["source"] for line in result.stdout.splitlines()]
    assert str(media["astronaut"]) in sources
    # Frames decoded before the truncation are kept, once each.
    frames = [json.loads(line)["frame"] for line in result.stdout.splitlines()
              if json.loads(line)["source"] == str(media["truncated_avi"])]
    assert frames and frames == sorted(set(frames))


def test_a_folder_is_searched(media: dict[str, Path]) -> None:
    result = run(str(media["astronaut"].parent), "--every", "12", "--format", "csv")
    assert result.exit_code == 1  # the folder holds the corrupt and truncated files too
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    names = {Path(r["source"]).name for r in rows}
    assert {"astronaut.jpg", "moving.avi", "moving.mp4"} <= names
    assert "error:" in result.stderr and "corrupt.jpg" in result.stderr


def test_report_folder(media: dict[str, Path], tmp_path: Path) -> None:
    report = tmp_path / "report"
    result = run(str(media["mp4"]), str(media["astronaut"]), "--every", "3", "--report", str(report),
                 "-o", str(tmp_path / "out.jsonl"))
    assert result.exit_code == 0, result.output
    for name in ("histogram.png", "timeline.png", "table.csv"):
        assert (report / name).read_bytes()[:4] in (b"\x89PNG", b"sour"), name
    people = sorted(p.name for p in (report / "people").iterdir())
    assert people == ["moving.mp4-face0.png"]
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    table = list(csv.DictReader((report / "table.csv").open()))
    assert len(table) == len(lines) == 9


def test_usage_errors() -> None:
    assert run().exit_code == 2
    assert run("x.jpg", "--format", "xml").exit_code == 2
    assert run("x.jpg", "--every", "soon").exit_code == 2


def test_missing_camera_is_an_error() -> None:
    result = run("--camera", "97", "--duration", "1")
    assert result.exit_code == 1 and "camera 97: cannot open" in result.stderr


@pytest.mark.parametrize("command", [["analyze", "--help"], ["bench", "pipeline", "--help"]])
def test_help(command: list[str]) -> None:
    result = runner.invoke(app, command)
    assert result.exit_code == 0 and "Usage" in result.output
