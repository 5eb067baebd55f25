"""Lesson topics in Chromium, with a real face on a student's camera: marked live, shown in the report, in its PDF."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from .conftest import LiveServer, Teacher
from .flows import acked, api_session, join, sign_in, sign_in_at

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]


def _wait_frames(student, more: int) -> None:
    """Until the server acknowledged `more` further frames of this student's camera."""
    target = acked(student) + more
    student.wait_for_function(f"Number(document.getElementById('acked').textContent) >= {target}", timeout=30_000)


def test_teacher_marks_two_topics_live_and_the_report_shows_them(live_server: LiveServer, teacher: Teacher,
                                                                 context_factory, tmp_path: Path,
                                                                 screenshots: Path) -> None:
    # a frame every 0.5 s (the fastest max_fps=2 allows): the topics fill with observations in half the time
    session = api_session(live_server, teacher, title="Fractions", frame_interval_s=0.5)
    dash = context_factory(viewport={"width": 1280, "height": 900}).new_page()
    sign_in_at(dash, teacher, f"/teacher/sessions/{session['id']}")
    expect(dash.locator("#conn")).to_have_text("live updates")
    student = context_factory().new_page()
    join(student, live_server.url + f"/join/{session['code']}", "Ada")
    _wait_frames(student, 2)
    dash.get_by_label("Now teaching").fill("Warm-up")
    dash.get_by_label("Now teaching").press("Enter")  # Enter starts the topic
    expect(dash.locator("#topic-now")).to_contain_text("Now: Warm-up")
    warm_up = time.monotonic()
    _wait_frames(student, 3)
    # two topics may not start within the same second: only what the frames did not already wait
    dash.wait_for_timeout(max(0.0, 1.1 - (time.monotonic() - warm_up)) * 1000)
    dash.get_by_label("Now teaching").fill("Quiz")
    dash.get_by_role("button", name="Start topic").click()
    expect(dash.locator("#topic-now")).to_contain_text("Now: Quiz")
    _wait_frames(student, 3)
    expect(dash.locator("#timeline .annotation-text", has_text="Quiz")).to_have_count(1, timeout=20_000)
    tile = dash.locator(".tile", has_text="Ada")
    tile.click()  # the student's own timeline, with the topics marked
    expect(dash.locator("#student-name")).to_have_text("Ada")
    expect(dash.locator("#student-chart .annotation-text")).to_have_text(["Warm-up", "Quiz"])
    dash.screenshot(path=str(screenshots / "live-topics.png"), full_page=True)
    student.get_by_role("button", name="Leave").click()
    with live_server.client(teacher.email, teacher.password) as api:
        api.post(f"/api/sessions/{session['id']}/end").raise_for_status()

    dash.goto(f"/teacher/sessions/{session['id']}/report")
    dash.wait_for_selector("body[data-ready='1']")
    rows = dash.locator("#topics-table tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.locator("th")).to_have_text(["Warm-up", "Quiz"])
    for k in range(2):
        assert int(rows.nth(k).locator("td").nth(3).inner_text()) > 0  # observations of the topic
    expect(dash.locator("#topics-chart .ytick text").first).to_contain_text("observation")
    dash.screenshot(path=str(screenshots / "report-topics.png"), full_page=True)
    answer = dash.request.get(dash.locator("#download-pdf").get_attribute("href") or "")  # with the page's cookie
    if answer.status == 404:
        pytest.skip("report.pdf is not served by this server yet")
    assert answer.ok and answer.headers["content-type"].startswith("application/pdf")
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(answer.body())
    assert pdf.read_bytes().startswith(b"%PDF")
    if shutil.which("pdftoppm") and shutil.which("pdftotext"):
        subprocess.run(["pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "page")],
                       check=True)
        assert list(tmp_path.glob("page*.png")), "pdftoppm rendered no page"
        text = subprocess.run(["pdftotext", "-l", "1", str(pdf), "-"], check=True, capture_output=True).stdout
        assert b"Fractions" in text


def test_png_exports_carry_their_title(live_server: LiveServer, teacher: Teacher, context_factory,
                                       tmp_path: Path) -> None:
    """Every chart's PNG says what it shows: course, session, date, students and observations."""
    from .test_browser_dashboard import _participant, _send_scores

    session = api_session(live_server, teacher, title="Export class")
    for name in ("Ana", "Ben", "Cy"):
        _send_scores(live_server, _participant(live_server, session, name), "Happy", n=8)
    page = context_factory(viewport={"width": 1280, "height": 900}).new_page()
    sign_in(page, teacher, f"/teacher/sessions/{session['id']}/report")
    page.wait_for_selector("body[data-ready='1']")
    with page.expect_download() as got:
        page.get_by_role("button", name="Whole-session chart (PNG)").click()
    png = tmp_path / "whole.png"
    got.value.save_as(png)
    assert png.read_bytes().startswith(b"\x89PNG")
    assert "Export_class" in got.value.suggested_filename
    title = page.evaluate("document.body.dataset.lastPngTitle")
    for part in ("Whole session", "Export class course", "Export class", "3 students", "24 observations"):
        assert part in title, (part, title)
    # the chart's own camera button downloads the same titled picture
    with page.expect_download():
        page.locator("#segments .modebar-btn[data-title='Download PNG with its title']").click(force=True)
    assert page.evaluate("document.body.dataset.lastPngTitle").startswith("Shares of emotions over time")
    assert page.locator(".modebar-btn[data-title='Share chart...']").count() == 0  # nothing goes to Plotly's cloud
