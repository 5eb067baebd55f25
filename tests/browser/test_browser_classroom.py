"""The whole class in a real browser: teacher sets up, a student streams the astronaut, dashboard, end, report."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from playwright.sync_api import expect

from .conftest import LiveServer, Teacher
from .flows import create_started_session, join, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]
LAPTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def test_teacher_sees_student_live_and_gets_report(live_server: LiveServer, teacher: Teacher, context_factory,
                                                   screenshots: Path) -> None:
    teacher_page = context_factory(viewport=LAPTOP).new_page()
    sign_in(teacher_page, teacher)
    session_id, join_url = create_started_session(teacher_page, "Physics 101", "Gravity")
    assert join_url.startswith(live_server.url) and "/join/" in join_url
    teacher_page.screenshot(path=str(screenshots / "teacher-courses.png"), full_page=True)
    teacher_page.get_by_role("link", name="Live view").first.click()
    expect(teacher_page).to_have_url(f"{live_server.url}/teacher/sessions/{session_id}")
    expect(teacher_page.locator("#conn")).to_have_text("live updates")

    with live_server.client(teacher.email, teacher.password) as api:  # a frame every 0.5 s (max_fps=2): readings
        api.patch(f"/api/sessions/{session_id}", json={"frame_interval_s": 0.5}).raise_for_status()  # sooner
    student = context_factory(viewport=PHONE, is_mobile=True).new_page()
    join(student, join_url, "Ada")
    expect(student.locator("#conn")).to_have_text("connected")
    student.wait_for_function("window.cmStudent.labels.length >= 3", timeout=30_000)
    assert student.evaluate("document.getElementById('preview').srcObject.active") is True

    # The dashboard shows the student's current expression: the astronaut smiles.
    tile = teacher_page.locator(".tile", has_text="Ada")
    expect(tile.locator(".state")).to_have_text("Happy", timeout=15_000)
    expect(teacher_page.locator("#top-label")).to_have_text("Happy")
    expect(teacher_page.locator("#present")).to_have_text("1")
    happy_now = teacher_page.locator("#hist-table tr[data-label=Happy] td").first
    expect(happy_now).not_to_have_text("0")
    teacher_page.wait_for_function("document.getElementById('timeline').data.some(t => t.y.some(y => y > 0))")
    teacher_page.screenshot(path=str(screenshots / "dashboard-live.png"), full_page=True)
    student.screenshot(path=str(screenshots / "student-phone.png"), full_page=True)

    teacher_page.get_by_role("button", name="End session").click()
    expect(teacher_page.locator("#status")).to_have_text("ended")
    expect(student.locator("#conn")).to_have_text("class ended", timeout=30_000)

    teacher_page.get_by_role("link", name="Report").click()
    expect(teacher_page).to_have_url(f"{live_server.url}/teacher/sessions/{session_id}/report")
    teacher_page.wait_for_selector("body[data-ready='1']")
    expect(teacher_page.locator("#students-table tbody tr", has_text="Ada")).to_contain_text("Happy")
    teacher_page.screenshot(path=str(screenshots / "report.png"), full_page=True)

    rows = _download_csv(teacher_page)
    assert rows, "the CSV export has no observation"
    labels = [r.get("label") for r in rows]
    assert labels.count("Happy") > len(labels) / 2, labels
    png = _download(teacher_page, "#download-png")
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000


def _download(page, selector: str) -> bytes:
    with page.expect_download() as info:
        page.locator(selector).click()
    return Path(info.value.path()).read_bytes()


def _download_csv(page) -> list[dict[str, str]]:
    text = _download(page, "#download-csv").decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))
