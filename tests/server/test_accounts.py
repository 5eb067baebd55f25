"""Login with cookies and CSRF, bearer tokens, /api/me and user management."""

from __future__ import annotations

from fastapi.testclient import TestClient

from .conftest import PASSWORD, World


def test_cookie_login_requires_csrf_header_on_unsafe_methods(world: World) -> None:
    client = world.client
    response = client.post("/api/auth/login", json={"email": "A@Test.org", "password": PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert body["user"] == {"id": world.teacher_a_id, "email": "a@test.org", "name": "Teacher A", "role": "teacher"}
    assert client.cookies.get("cm_csrf") == body["csrf_token"]
    set_cookie = response.headers.get_list("set-cookie")
    assert any("cm_session=" in c and "HttpOnly" in c and "SameSite=lax" in c for c in set_cookie)
    assert client.get("/api/courses").status_code == 200  # safe method: no header needed
    assert client.post("/api/courses", json={"title": "Chem"}).status_code == 403
    wrong = client.post("/api/courses", json={"title": "Chem"}, headers={"X-CSRF-Token": "forged"})
    assert wrong.status_code == 403
    ok = client.post("/api/courses", json={"title": "Chem"}, headers={"X-CSRF-Token": body["csrf_token"]})
    assert ok.status_code == 201 and ok.json()["teacher_id"] == world.teacher_a_id
    assert client.get("/api/me").json()["email"] == "a@test.org"
    client.post("/api/auth/logout", headers={"X-CSRF-Token": body["csrf_token"]})
    assert client.get("/api/me").status_code == 401


def test_cookies_are_secure_outside_dev(app_factory_secure: TestClient) -> None:
    response = app_factory_secure.post("/api/auth/login", json={"email": "admin@test.org", "password": PASSWORD})
    assert all("Secure" in c for c in response.headers.get_list("set-cookie"))


def test_wrong_password_and_unknown_user_are_401(world: World) -> None:
    for email, password in (("a@test.org", "nope"), ("nobody@test.org", PASSWORD)):
        assert world.client.post("/api/auth/token", json={"email": email, "password": password}).status_code == 401
        assert world.client.post("/api/auth/login", json={"email": email, "password": password}).status_code == 401
    assert world.client.post("/api/auth/token", json={"email": "not-an-email", "password": "x"}).status_code == 422


def test_bearer_token_and_me(world: World) -> None:
    me = world.client.get("/api/me", headers=world.admin).json()
    assert me["role"] == "admin"
    student = world.client.get("/api/me", headers=world.student).json()
    assert student["participant"]["display_name"] == "Ann"
    assert student["participant"]["session_id"] == world.session_id
    bad = world.client.get("/api/me", headers={"Authorization": "Bearer forged.token"})
    assert bad.status_code == 401 and bad.headers["www-authenticate"] == "Bearer"


def test_admin_creates_users_others_cannot(world: World) -> None:
    new = {"email": "c@test.org", "password": "long enough", "name": "Teacher C", "role": "teacher"}
    assert world.client.post("/api/users", json=new, headers=world.teacher_a).status_code == 403
    created = world.client.post("/api/users", json=new, headers=world.admin)
    assert created.status_code == 201 and created.json()["role"] == "teacher" and "password" not in created.text
    assert world.client.post("/api/users", json=new, headers=world.admin).status_code == 409
    short = {**new, "email": "d@test.org", "password": "short"}
    assert world.client.post("/api/users", json=short, headers=world.admin).status_code == 422
    login = world.client.post("/api/auth/token", json={"email": "c@test.org", "password": "long enough"})
    assert login.status_code == 200
    emails = [u["email"] for u in world.client.get("/api/users", headers=world.admin).json()]
    assert "c@test.org" in emails


def test_logout_revokes_the_login_on_the_server(world: World) -> None:
    client = world.client
    body = client.post("/api/auth/login", json={"email": "a@test.org", "password": PASSWORD}).json()
    stolen = client.cookies.get("cm_session")
    assert client.get("/api/me").status_code == 200
    assert client.post("/api/auth/logout", headers={"X-CSRF-Token": body["csrf_token"]}).status_code == 204
    # someone who kept the cookie (or a browser that ignored the deletion) is logged out too
    replay = client.get("/api/me", cookies={"cm_session": stolen})
    assert replay.status_code == 401
    assert client.get("/api/courses", cookies={"cm_session": stolen}).status_code == 401
    # other logins of the same user live on
    client.cookies.clear()
    client.post("/api/auth/login", json={"email": "a@test.org", "password": PASSWORD})
    assert client.get("/api/me").status_code == 200


def test_failed_logins_are_throttled_per_account(world: World) -> None:
    client = world.client
    wrong = {"email": "a@test.org", "password": "wrong password"}
    statuses = [client.post("/api/auth/token", json=wrong).status_code for _ in range(5)]
    assert statuses == [401] * 5
    for endpoint in ("/api/auth/token", "/api/auth/login"):
        refused = client.post(endpoint, json=wrong)
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert "try again" in refused.json()["detail"]
    # while throttled, even the right password waits: guessing gains nothing
    assert client.post("/api/auth/token", json={"email": "a@test.org", "password": PASSWORD}).status_code == 429
    # other accounts are not locked by it
    assert client.post("/api/auth/token", json={"email": "b@test.org", "password": PASSWORD}).status_code == 200


def test_failed_logins_are_throttled_per_address(world: World) -> None:
    client = world.client
    statuses = [client.post("/api/auth/token", json={"email": f"u{i}@test.org", "password": "x"}).status_code
                for i in range(25)]
    assert statuses[:20] == [401] * 20 and set(statuses[20:]) == {429}
    refused = client.post("/api/auth/login", json={"email": "new@test.org", "password": "x"})
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1


def test_a_success_forgets_the_accounts_failures(world: World) -> None:
    client = world.client
    for _ in range(4):
        assert client.post("/api/auth/token", json={"email": "a@test.org", "password": "nope"}).status_code == 401
    assert client.post("/api/auth/token", json={"email": "a@test.org", "password": PASSWORD}).status_code == 200
    statuses = [client.post("/api/auth/token", json={"email": "a@test.org", "password": "nope"}).status_code
                for _ in range(5)]
    assert statuses == [401] * 5
