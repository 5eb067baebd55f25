"""The PDF report on both databases: it opens in poppler, and its first page carries the title and counts."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import World
from .lesson import CALM, UNHAPPY, send, spread, started_at

needs_poppler = pytest.mark.skipif(shutil.which("pdftoppm") is None or shutil.which("pdftotext") is None,
                                   reason="poppler-utils missing (scripts/ensure-services.sh installs it)")


@needs_poppler
def test_report_pdf_renders_with_its_title(world: World, app: Any, tmp_path: Path) -> None:
    t0 = (time.time() - 600) // 60 * 60
    started_at(app, world.session_id, t0)
    bob = world.join("Bob")[0]
    for k, header in enumerate((world.student, bob)):
        send(world, header, world.session_id, spread(t0, 60, CALM, k / 10) + spread(t0 + 60, 60, UNHAPPY, k / 10))
    for title, start in (("Warm-up", t0), ("Quiz", t0 + 60)):
        world.client.post(f"/api/sessions/{world.session_id}/topics", json={"title": title, "start": start},
                          headers=world.teacher_a)
    response = world.client.get(f"/api/sessions/{world.session_id}/report.pdf", headers=world.teacher_a,
                                params={"utc_offset_s": 3600})
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(response.content)
    subprocess.run(["pdftoppm", "-png", "-r", "40", "-f", "1", "-l", "2", str(pdf), str(tmp_path / "page")],
                   check=True, timeout=60)
    pages = sorted(tmp_path.glob("page*.png"))
    assert len(pages) == 2 and all(p.stat().st_size > 1000 for p in pages)
    text = subprocess.run(["pdftotext", "-raw", "-f", "1", "-l", "1", str(pdf), "-"], check=True,
                          capture_output=True, text=True, timeout=60).stdout
    assert "Biology — Cells" in text
    assert time.strftime("%Y-%m-%d", time.gmtime(t0 + 3600)) in text and "2 students, 240 observations" in text
    assert "Quiz: negative share 100 % against 0 % for the rest" in text and "Warm-up" in text
    assert world.client.get(f"/api/sessions/{world.session_id}/report.pdf", headers=world.teacher_b).status_code == 403


@needs_poppler
def test_report_pdf_of_an_aggregate_only_session_has_no_small_group(world: World, tmp_path: Path) -> None:
    made = world.client.post(f"/api/courses/{world.course_id}/sessions", headers=world.teacher_a,
                             json={"title": "Quiet", "aggregate_only": True}).json()
    world.client.post(f"/api/sessions/{made['id']}/start", headers=world.teacher_a)
    header = world.join("Hidden", code=made["code"])[0]
    send(world, header, made["id"], [(time.time(), "Fear")])
    response = world.client.get(f"/api/sessions/{made['id']}/report.pdf", headers=world.teacher_a)
    assert response.status_code == 200
    pdf = tmp_path / "quiet.pdf"
    pdf.write_bytes(response.content)
    text = subprocess.run(["pdftotext", "-raw", str(pdf), "-"], check=True, capture_output=True, text=True,
                          timeout=60).stdout
    assert "Biology — Quiet" in text and "too few students" in text and "Hidden" not in text
    assert "Fear 100" not in text
