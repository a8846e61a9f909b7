"""``/api/v1/users/me``: read, update (email, name, password: other sessions signed out), delete
(projects owned alone go with all their data; nothing of anyone else's). Both databases."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from gati.auth.models import AuthSession, RefreshToken, User
from gati.events.models import Event
from gati.projects.models import ApiKey, Project, ProjectMember
from tests.auth.helpers import PASSWORD, error_code, login, register, unique_email

ME = "/api/v1/users/me"


@pytest.fixture
async def prod(make_app: Any, production_settings: dict[str, Any]) -> Any:
    async with make_app(**production_settings) as client:
        yield client


async def test_get_and_update_name(prod: Any) -> None:
    user = await register(prod, full_name="Ada")
    response = await prod.put(ME, json={"full_name": "Ada Lovelace"}, headers=user["headers"])
    assert response.status_code == 200 and response.json()["full_name"] == "Ada Lovelace"
    assert (await prod.get(ME, headers=user["headers"])).json()["full_name"] == "Ada Lovelace"
    # Fields not sent are kept; sending null clears the name.
    response = await prod.put(ME, json={}, headers=user["headers"])
    assert response.json()["full_name"] == "Ada Lovelace"
    response = await prod.put(ME, json={"full_name": None}, headers=user["headers"])
    assert response.json()["full_name"] is None


async def test_email_change_needs_the_password_and_a_free_address(prod: Any) -> None:
    user = await register(prod)
    other = await register(prod)
    response = await prod.put(ME, json={"email": unique_email()}, headers=user["headers"])
    assert response.status_code == 422 and response.json()["detail"].startswith("current_password:")
    response = await prod.put(
        ME,
        json={"email": unique_email(), "current_password": "not my password"},
        headers=user["headers"],
    )
    assert response.status_code == 403 and error_code(response) == "wrong_password"
    response = await prod.put(
        ME,
        json={"email": other["email"].upper(), "current_password": PASSWORD},
        headers=user["headers"],
    )
    assert response.status_code == 409 and error_code(response) == "email_taken"
    new_email = unique_email("New")
    response = await prod.put(
        ME, json={"email": new_email, "current_password": PASSWORD}, headers=user["headers"]
    )
    assert response.status_code == 200 and response.json()["email"] == new_email.lower()
    await login(prod, new_email)
    old = await prod.post("/api/v1/auth/login", json={"email": user["email"], "password": PASSWORD})
    assert old.status_code == 401


async def test_password_change_signs_out_other_sessions(prod: Any) -> None:
    user = await register(prod)
    other = await login(prod, user["email"])
    new_password = "a brand new passphrase"
    response = await prod.put(
        ME, json={"password": "short", "current_password": PASSWORD}, headers=user["headers"]
    )
    assert response.status_code == 422 and response.json()["detail"].startswith("password:")
    response = await prod.put(ME, json={"password": new_password}, headers=user["headers"])
    assert response.status_code == 422
    response = await prod.put(
        ME, json={"password": new_password, "current_password": PASSWORD}, headers=user["headers"]
    )
    assert response.status_code == 200, response.text
    # This session stays; the other is signed out (access and refresh).
    assert (await prod.get(ME, headers=user["headers"])).status_code == 200
    gone = await prod.get(ME, headers=other["headers"])
    assert gone.status_code == 401 and error_code(gone) == "token_revoked"
    refresh = await prod.post(
        "/api/v1/auth/refresh", json={"refresh_token": other["refresh_token"]}
    )
    assert refresh.status_code == 401
    assert (
        await prod.post("/api/v1/auth/login", json={"email": user["email"], "password": PASSWORD})
    ).status_code == 401
    await login(prod, user["email"], new_password)


async def _count(db: Any, model: Any, *where: Any) -> int:
    async with db.read_session() as session:
        stmt = select(func.count()).select_from(model)
        for clause in where:
            stmt = stmt.where(clause)
        return int((await session.execute(stmt)).scalar_one())


async def _event(client: Any, headers: dict[str, str], project: int, marker: str) -> None:
    response = await client.post(
        "/api/v1/events",
        json={"event_type": "e", "project": project, "properties": {"m": marker}},
        headers=headers,
    )
    assert response.status_code == 201, response.text


async def test_delete_account(prod: Any, db: Any) -> None:
    alice = await register(prod)
    bob = await register(prod)
    a_personal = alice["user"]["default_project_id"]
    b_personal = bob["user"]["default_project_id"]

    async def create(owner: dict[str, Any], name: str) -> dict[str, Any]:
        response = await prod.post(
            "/api/v1/projects", json={"name": name}, headers=owner["headers"]
        )
        assert response.status_code == 201
        return response.json()

    async def add(owner: dict[str, Any], project: int, who: dict[str, Any], role: str) -> None:
        response = await prod.post(
            f"/api/v1/projects/{project}/members",
            json={"email": who["email"], "role": role},
            headers=owner["headers"],
        )
        assert response.status_code == 201, response.text

    alone = await create(alice, "alice alone")  # alice sole owner, bob a plain member
    await add(alice, alone["id"], bob, "member")
    shared = await create(alice, "co-owned")  # alice and bob both owners
    await add(alice, shared["id"], bob, "owner")
    bobs = await create(bob, "bob's")  # bob owner, alice member
    await add(bob, bobs["id"], alice, "member")
    for project in (a_personal, alone["id"], shared["id"], bobs["id"]):
        await _event(prod, alice["headers"], project, "from-alice")
    await _event(prod, bob["headers"], b_personal, "from-bob")
    await _event(prod, bob["headers"], bobs["id"], "from-bob")

    response = await prod.delete(ME, headers=alice["headers"])
    assert response.status_code == 204

    # Alice, her sessions and refresh tokens are gone; her tokens stop working.
    assert await _count(db, User, User.id == alice["user"]["id"]) == 0
    assert await _count(db, AuthSession, AuthSession.user_id == alice["user"]["id"]) == 0
    assert await _count(db, RefreshToken, RefreshToken.user_id == alice["user"]["id"]) == 0
    assert (await prod.get(ME, headers=alice["headers"])).status_code == 401
    refresh = await prod.post(
        "/api/v1/auth/refresh", json={"refresh_token": alice["refresh_token"]}
    )
    assert refresh.status_code == 401
    assert (
        await prod.post("/api/v1/auth/login", json={"email": alice["email"], "password": PASSWORD})
    ).status_code == 401
    # Projects she alone owned are deleted with their events and keys.
    for project in (a_personal, alone["id"]):
        assert await _count(db, Project, Project.id == project) == 0
        assert await _count(db, Event, Event.project_id == project) == 0
        assert await _count(db, ApiKey, ApiKey.project_id == project) == 0
        assert await _count(db, ProjectMember, ProjectMember.project_id == project) == 0
    # Nothing of anyone else's: the co-owned and bob's projects keep all their events.
    assert await _count(db, Event, Event.project_id == shared["id"]) == 1
    assert await _count(db, Event, Event.project_id == bobs["id"]) == 2
    assert await _count(db, Event, Event.project_id == b_personal) == 1
    members = (
        await prod.get(f"/api/v1/projects/{shared['id']}/members", headers=bob["headers"])
    ).json()
    assert [(m["email"], m["role"]) for m in members] == [(bob["email"], "owner")]
    members = (
        await prod.get(f"/api/v1/projects/{bobs['id']}/members", headers=bob["headers"])
    ).json()
    assert [m["email"] for m in members] == [bob["email"]]
    assert (await prod.get(ME, headers=bob["headers"])).status_code == 200
    ids = {p["id"] for p in (await prod.get("/api/v1/projects", headers=bob["headers"])).json()}
    assert ids == {b_personal, shared["id"], bobs["id"]}


async def test_me_needs_a_user_token(prod: Any, make_project: Any) -> None:
    project = await make_project()
    response = await prod.get(ME, headers={"Authorization": f"Bearer {project['secret_key']}"})
    assert response.status_code == 401 and error_code(response) == "user_token_required"
    response = await prod.delete(ME, headers={"X-API-Key": project["secret_key"]})
    assert response.status_code == 401
