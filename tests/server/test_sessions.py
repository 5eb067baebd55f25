"""Courses, the session life cycle and joining with consent."""

from __future__ import annotations

from .conftest import World


def test_session_life_cycle(world: World) -> None:
    c, ta = world.client, world.teacher_a
    created = c.post(f"/api/courses/{world.course_id}/sessions", json={"title": "Genes"}, headers=ta)
    assert created.status_code == 201
    session = created.json()
    assert session["status"] == "scheduled" and session["join_url"] == f"/join/{session['code']}"
    assert len(session["code"]) == 6 and session["aggregate_only"] is False
    started = c.post(f"/api/sessions/{session['id']}/start", headers=ta).json()
    assert started["status"] == "live" and started["started_at"]
    assert c.post(f"/api/sessions/{session['id']}/start", headers=ta).json()["started_at"] == started["started_at"]
    ended = c.post(f"/api/sessions/{session['id']}/end", headers=ta).json()
    assert ended["status"] == "ended" and ended["ended_at"]
    assert c.post(f"/api/sessions/{session['id']}/start", headers=ta).status_code == 409
    listed = c.get(f"/api/courses/{world.course_id}/sessions", headers=ta).json()
    assert [s["title"] for s in listed] == ["Cells", "Genes"]


def test_patch_session_settings(world: World) -> None:
    url = f"/api/sessions/{world.session_id}"
    patched = world.client.patch(url, json={"aggregate_only": True, "show_self_to_students": False},
                                 headers=world.teacher_a).json()
    assert patched["aggregate_only"] is True and patched["show_self_to_students"] is False
    info = world.client.get(f"/api/join/{world.code}").json()
    assert info["aggregate_only"] is True and info["show_self_to_students"] is False
    assert world.client.patch(url, json={"frame_interval_s": 0}, headers=world.teacher_a).status_code == 422


def test_join_info_is_public_and_code_is_forgiving(world: World) -> None:
    info = world.client.get(f"/api/join/{world.code.lower()}").json()
    assert info == {"session_id": world.session_id, "title": "Cells", "course_title": "Biology",
                    "teacher_name": "Teacher A", "status": "live", "frame_interval_s": 1.0,
                    "show_self_to_students": True, "aggregate_only": False, "analysis_mode": "server",
                    "allow_server_fallback": False}
    assert world.client.get("/api/join/NOPE99").status_code == 404


def test_join_needs_explicit_consent_and_a_name(world: World) -> None:
    for body in ({"code": world.code, "display_name": "Bo", "consent": False},
                 {"code": world.code, "display_name": "Bo"},
                 {"code": world.code, "display_name": "   ", "consent": True}):
        response = world.client.post("/api/join", json=body)
        assert response.status_code == 422, body
    refused = world.client.post("/api/join", json={"code": world.code, "display_name": "Bo", "consent": False})
    assert "consent" in refused.text
    ok = world.client.post("/api/join", json={"code": world.code, "display_name": "  Bo   Li ", "consent": True})
    assert ok.status_code == 201 and ok.json()["display_name"] == "Bo Li"


def test_join_ended_session_is_409(world: World) -> None:
    world.client.post(f"/api/sessions/{world.session_id}/end", headers=world.teacher_a)
    response = world.client.post("/api/join", json={"code": world.code, "display_name": "Late", "consent": True})
    assert response.status_code == 409


def test_teachers_see_only_their_courses(world: World) -> None:
    world.client.post("/api/courses", json={"title": "Physics"}, headers=world.teacher_b)
    mine = [c["title"] for c in world.client.get("/api/courses", headers=world.teacher_a).json()]
    theirs = [c["title"] for c in world.client.get("/api/courses", headers=world.teacher_b).json()]
    every = [c["title"] for c in world.client.get("/api/courses", headers=world.admin).json()]
    assert mine == ["Biology"] and theirs == ["Physics"] and every == ["Biology", "Physics"]
    assert world.client.get(f"/api/courses/{world.course_id}", headers=world.teacher_b).status_code == 403
    assert world.client.get("/api/courses/999", headers=world.teacher_a).status_code == 404
    assert world.client.post("/api/courses", json={"title": ""}, headers=world.teacher_a).status_code == 422
