"""Projects over HTTP: CRUD, members (owner, member) and secret keys. Both databases."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from gati.events.models import Event
from gati.projects.models import ApiKey
from gati.tracing.models import TraceEvent
from tests.auth.helpers import bearer, error_code, register

P = "/api/v1/projects"


@pytest.fixture
async def prod(make_app: Any, production_settings: dict[str, Any]) -> Any:
    async with make_app(**production_settings) as client:
        yield client


async def _create(client: Any, user: dict[str, Any], **body: Any) -> dict[str, Any]:
    response = await client.post(P, json={"name": "Shop", **body}, headers=user["headers"])
    assert response.status_code == 201, response.text
    return response.json()


async def test_crud(prod: Any, db: Any) -> None:
    owner = await register(prod)
    created = await _create(prod, owner, name="Checkout service")
    assert created["role"] == "owner" and created["is_default"] is False
    assert created["slug"] == "checkout-service"
    assert created["secret_key"].startswith("sk_") and created["public_key"].startswith("pk_")
    assert created["dsn"].endswith(f"@testserver/{created['id']}")
    # The first secret key works at once (ingest and read), and is stored hashed only.
    key_headers = bearer(created["secret_key"])
    ingest = await prod.post("/api/v1/events", json={"event_type": "x"}, headers=key_headers)
    assert ingest.status_code == 201 and ingest.json()["project_id"] == created["id"]
    async with db.read_session() as session:
        hashes = (await session.execute(select(ApiKey.key_hash))).scalars().all()
    assert created["secret_key"] not in hashes

    listed = (await prod.get(P, headers=owner["headers"])).json()
    assert {p["id"] for p in listed} == {created["id"], owner["user"]["default_project_id"]}
    assert all("secret_key" not in p for p in listed)
    for ref in (created["id"], created["slug"]):
        got = await prod.get(f"{P}/{ref}", headers=owner["headers"])
        assert got.status_code == 200 and got.json()["id"] == created["id"]

    patched = await prod.patch(
        f"{P}/{created['id']}",
        json={"name": "Checkout", "slug": "checkout"},
        headers=owner["headers"],
    )
    assert patched.status_code == 200 and patched.json()["slug"] == "checkout"
    put = await prod.put(f"{P}/checkout", json={"name": "Checkout 2"}, headers=owner["headers"])
    assert put.status_code == 200 and put.json()["name"] == "Checkout 2"
    other = await _create(prod, owner, name="Other")
    clash = await prod.patch(
        f"{P}/{other['id']}", json={"slug": "checkout"}, headers=owner["headers"]
    )
    assert clash.status_code == 409
    dup = await prod.post(P, json={"name": "x", "slug": "checkout"}, headers=owner["headers"])
    assert dup.status_code == 409
    bad = await prod.post(P, json={"name": ""}, headers=owner["headers"])
    assert bad.status_code == 422 and bad.json()["detail"].startswith("name")

    deleted = await prod.delete(f"{P}/{created['id']}", headers=owner["headers"])
    assert deleted.status_code == 204
    assert (await prod.get(f"{P}/{created['id']}", headers=owner["headers"])).status_code == 404
    async with db.read_session() as session:
        left = (
            await session.execute(
                select(func.count()).select_from(Event).where(Event.project_id == created["id"])
            )
        ).scalar_one()
    assert left == 0
    # Its keys died with it.
    gone = await prod.get("/api/v1/events", headers=key_headers)
    assert gone.status_code == 401


async def test_members_and_roles(prod: Any) -> None:
    owner = await register(prod)
    member = await register(prod)
    outsider = await register(prod)
    project = await _create(prod, owner)
    url = f"{P}/{project['id']}"

    assert (await prod.get(url, headers=member["headers"])).status_code == 404
    added = await prod.post(
        f"{url}/members", json={"email": member["email"].upper()}, headers=owner["headers"]
    )
    assert added.status_code == 201 and added.json()["role"] == "member"
    again = await prod.post(
        f"{url}/members", json={"email": member["email"]}, headers=owner["headers"]
    )
    assert again.status_code == 409
    nobody = await prod.post(
        f"{url}/members", json={"email": "nobody@example.com"}, headers=owner["headers"]
    )
    assert nobody.status_code == 404 and error_code(nobody) == "user_not_found"
    bad_role = await prod.post(
        f"{url}/members",
        json={"email": outsider["email"], "role": "admin"},
        headers=owner["headers"],
    )
    assert bad_role.status_code == 422

    # A member reads, ingests, sees members and keys, but manages nothing.
    got = await prod.get(url, headers=member["headers"])
    assert got.status_code == 200 and got.json()["role"] == "member"
    assert project["id"] in {p["id"] for p in (await prod.get(P, headers=member["headers"])).json()}
    ingest = await prod.post(
        "/api/v1/events",
        json={"event_type": "x", "project": project["id"]},
        headers=member["headers"],
    )
    assert ingest.status_code == 201
    members = (await prod.get(f"{url}/members", headers=member["headers"])).json()
    assert {m["email"]: m["role"] for m in members} == {
        owner["email"]: "owner",
        member["email"]: "member",
    }
    assert (await prod.get(f"{url}/keys", headers=member["headers"])).status_code == 200
    for method, path, body in (
        ("PATCH", url, {"name": "mine now"}),
        ("DELETE", url, None),
        ("POST", f"{url}/members", {"email": outsider["email"]}),
        ("PATCH", f"{url}/members/{owner['user']['id']}", {"role": "member"}),
        ("DELETE", f"{url}/members/{owner['user']['id']}", None),
        ("POST", f"{url}/keys", {"name": "k"}),
    ):
        response = await prod.request(method, path, json=body, headers=member["headers"])
        assert response.status_code == 403, (method, path, response.text)
        assert error_code(response) == "owner_required"

    # The last owner cannot leave or be demoted.
    demote = await prod.patch(
        f"{url}/members/{owner['user']['id']}", json={"role": "member"}, headers=owner["headers"]
    )
    assert demote.status_code == 409 and error_code(demote) == "last_owner"
    leave = await prod.delete(f"{url}/members/{owner['user']['id']}", headers=owner["headers"])
    assert leave.status_code == 409
    # Promote the member; then the first owner may step down.
    promoted = await prod.patch(
        f"{url}/members/{member['user']['id']}", json={"role": "owner"}, headers=owner["headers"]
    )
    assert promoted.status_code == 200 and promoted.json()["role"] == "owner"
    demote = await prod.patch(
        f"{url}/members/{owner['user']['id']}", json={"role": "member"}, headers=owner["headers"]
    )
    assert demote.status_code == 200
    # A member may leave on their own.
    leave = await prod.delete(f"{url}/members/{owner['user']['id']}", headers=owner["headers"])
    assert leave.status_code == 204
    assert (await prod.get(url, headers=owner["headers"])).status_code == 404
    missing = await prod.delete(
        f"{url}/members/{outsider['user']['id']}", headers=member["headers"]
    )
    assert missing.status_code == 404


async def test_keys(prod: Any) -> None:
    owner = await register(prod)
    project = await _create(prod, owner)
    url = f"{P}/{project['id']}/keys"
    created = await prod.post(url, json={"name": "ci"}, headers=owner["headers"])
    assert created.status_code == 201
    key = created.json()
    assert key["key"].startswith("sk_") and key["prefix"] == key["key"][:10]
    default_name = await prod.post(url, headers=owner["headers"])
    assert default_name.status_code == 201 and default_name.json()["name"] == "default"
    listed = (await prod.get(url, headers=owner["headers"])).json()
    assert {k["name"] for k in listed} == {"default", "ci"}
    assert all("key" not in k for k in listed)
    assert key["key"] not in str(listed)

    headers = bearer(key["key"])
    assert (await prod.get("/api/v1/events", headers=headers)).status_code == 200
    # A key is not a user: it cannot manage projects.
    assert (await prod.get(url, headers=headers)).status_code == 403
    assert (await prod.post(url, headers=headers)).status_code in (401, 403)
    assert (await prod.post(P, json={"name": "x"}, headers=headers)).status_code == 401

    revoked = await prod.delete(f"{url}/{key['id']}", headers=owner["headers"])
    assert revoked.status_code == 204
    after = await prod.get("/api/v1/events", headers=headers)
    assert after.status_code == 401 and error_code(after) == "invalid_key"
    again = await prod.delete(f"{url}/{key['id']}", headers=owner["headers"])
    assert again.status_code == 404
    listed = {k["id"]: k for k in (await prod.get(url, headers=owner["headers"])).json()}
    assert listed[key["id"]]["revoked_at"] is not None


async def test_local_mode_without_credentials(client: Any) -> None:
    """The embedded single-user server: no credentials needed to manage projects."""
    created = await client.post(P, json={"name": "Local one"})
    assert created.status_code == 201 and created.json()["role"] is None
    slugs = {p["slug"] for p in (await client.get(P)).json()}
    assert {"default", "local-one"} <= slugs
    key = await client.post(f"{P}/local-one/keys", json={"name": "k"})
    assert key.status_code == 201
    # Members need real users.
    response = await client.post(f"{P}/local-one/members", json={"email": "x@example.com"})
    assert response.status_code == 404


async def test_dsn_uses_public_url_when_set(
    make_app: Any, production_settings: dict[str, Any]
) -> None:
    settings = {**production_settings, "public_url": "https://gati.example.com/ingest"}
    async with make_app(**settings) as client:
        owner = await register(client)
        created = await _create(client, owner)
        assert created["dsn"] == (
            f"https://{created['public_key']}@gati.example.com/ingest/{created['id']}"
        )
        fetched = (await client.get(f"{P}/{created['id']}", headers=owner["headers"])).json()
        assert fetched["dsn"] == created["dsn"]


async def test_deleting_a_project_deletes_its_trace_events(prod: Any, db: Any) -> None:
    """trace_events has no foreign key to projects (core_0002): the delete removes its rows, and
    leaves another project's alone."""
    owner = await register(prod)
    doomed, kept = (
        await _create(prod, owner, name="Doomed"),
        await _create(prod, owner, name="Kept"),
    )
    for project in (doomed, kept):
        batch = {
            "events": [
                {"event_type": "agent_start", "run_id": f"r-{project['id']}", "agent_name": "a"},
                {"event_type": "llm_call", "run_id": f"r-{project['id']}", "agent_name": "a"},
            ]
        }
        stored = await prod.post("/api/events", json=batch, headers=bearer(project["secret_key"]))
        assert stored.status_code == 200 and stored.json()["count"] == 2, stored.text

    async def trace_events(project_id: int) -> int:
        async with db.read_session() as session:
            query = select(func.count()).select_from(TraceEvent)
            return (
                await session.execute(query.where(TraceEvent.project_id == project_id))
            ).scalar_one()

    assert await trace_events(doomed["id"]) == 2
    deleted = await prod.delete(f"{P}/{doomed['id']}", headers=owner["headers"])
    assert deleted.status_code == 204
    assert await trace_events(doomed["id"]) == 0
    assert await trace_events(kept["id"]) == 2
