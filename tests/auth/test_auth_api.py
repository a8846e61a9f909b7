"""Sign-up, sign-in, refresh rotation and reuse detection, sign-out, and every way a token can
be wrong: expired, tampered, wrong type, revoked, foreign. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import statistics
import time
from datetime import timedelta
from typing import Any

import jwt
import orjson
import pytest
from sqlalchemy import func, select

from gati.auth.models import AuthSession, RefreshToken, User
from gati.auth.security import issue_token
from gati.db.types import utcnow
from gati.settings import DEFAULT_SECRET_KEY, InsecureSettingsError, Settings
from tests.auth.helpers import PASSWORD, bearer, error_code, login, register, unique_email
from tests.conftest import PRODUCTION_SECRET

ME = "/api/v1/users/me"


@pytest.fixture
async def prod(make_app: Any, production_settings: dict[str, Any]) -> Any:
    async with make_app(**production_settings) as client:
        yield client


def _claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


# --- register / login -------------------------------------------------------------------------


async def test_register_signs_in_and_creates_a_personal_project(prod: Any, db: Any) -> None:
    email = unique_email("Ada")
    body = await register(prod, email, full_name="Ada Lovelace")
    assert body["token_type"] == "bearer" and body["expires_in"] > 0
    assert body["user"]["email"] == email.lower()
    assert body["user"]["full_name"] == "Ada Lovelace"
    me = (await prod.get(ME, headers=body["headers"])).json()
    assert me["id"] == body["user"]["id"]
    projects = (await prod.get("/api/v1/projects", headers=body["headers"])).json()
    assert len(projects) == 1
    assert projects[0]["role"] == "owner" and projects[0]["is_default"] is True
    assert projects[0]["id"] == me["default_project_id"]
    async with db.read_session() as session:
        user = (await session.execute(select(User).where(User.id == me["id"]))).scalar_one()
        assert user.password_hash.startswith("$argon2")
        assert PASSWORD not in user.password_hash


async def test_register_refuses_taken_email_case_insensitively(prod: Any) -> None:
    email = unique_email()
    await register(prod, email)
    response = await prod.post(
        "/api/v1/auth/register", json={"email": email.upper(), "password": PASSWORD}
    )
    assert response.status_code == 409 and error_code(response) == "email_taken"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"email": "not-an-email", "password": PASSWORD}, "email"),
        ({"email": "a@example.com", "password": "short"}, "password"),
        ({"email": "a@example.com"}, "password"),
        ({"email": "a@example.com", "password": PASSWORD, "role": "admin"}, "role"),
    ],
)
async def test_register_validation_names_the_field(
    prod: Any, payload: dict[str, Any], field: str
) -> None:
    response = await prod.post("/api/v1/auth/register", json=payload)
    assert response.status_code == 422
    assert response.json()["detail"].startswith(f"{field}:")


async def test_login_json_and_oauth2_form(prod: Any) -> None:
    user = await register(prod)
    by_json = await prod.post(
        "/api/v1/auth/login", json={"email": user["email"], "password": PASSWORD}
    )
    assert by_json.status_code == 200
    # What the docs page's Authorize button (OAuth2 password flow) sends.
    by_form = await prod.post(
        "/api/v1/auth/login",
        data={
            "grant_type": "password",
            "username": user["email"],
            "password": PASSWORD,
            "scope": "",
        },
    )
    assert by_form.status_code == 200, by_form.text
    for response in (by_json, by_form):
        assert (
            await prod.get(ME, headers=bearer(response.json()["access_token"]))
        ).status_code == 200
    assert (
        _claims(by_json.json()["access_token"])["sid"]
        != _claims(by_form.json()["access_token"])["sid"]
    )
    bad_grant = await prod.post(
        "/api/v1/auth/login",
        data={"grant_type": "client_credentials", "username": user["email"], "password": PASSWORD},
    )
    assert bad_grant.status_code == 400


async def test_login_failures_look_the_same(prod: Any) -> None:
    user = await register(prod)
    wrong = await prod.post(
        "/api/v1/auth/login", json={"email": user["email"], "password": "wrong password"}
    )
    unknown = await prod.post(
        "/api/v1/auth/login", json={"email": unique_email(), "password": "wrong password"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert error_code(wrong) == "invalid_credentials"


async def test_login_takes_as_long_for_unknown_emails(prod: Any) -> None:
    """An unknown email still runs one argon2 verification (against a dummy hash)."""
    user = await register(prod)

    async def timed(email: str) -> float:
        start = time.perf_counter()
        response = await prod.post(
            "/api/v1/auth/login", json={"email": email, "password": "wrong password"}
        )
        assert response.status_code == 401
        return time.perf_counter() - start

    known: list[float] = []
    unknown: list[float] = []
    for _ in range(5):  # interleaved, so that a burst of load on the machine hits both
        known.append(await timed(user["email"]))
        unknown.append(await timed(unique_email()))
    # Without the dummy verification an unknown email answers ~20x faster.
    assert statistics.median(unknown) > 0.6 * statistics.median(known), (known, unknown)


def test_production_refuses_the_default_secret_key() -> None:
    with pytest.raises(InsecureSettingsError, match="SECRET_KEY"):
        Settings(
            environment="production", secret_key=DEFAULT_SECRET_KEY, cors_origins=["https://x"]
        )
    Settings(environment="production", secret_key=PRODUCTION_SECRET, cors_origins=["https://x"])


# --- refresh ----------------------------------------------------------------------------------


async def _refresh(client: Any, token: str) -> Any:
    return await client.post("/api/v1/auth/refresh", json={"refresh_token": token})


async def test_refresh_rotates(prod: Any, db: Any) -> None:
    user = await register(prod)
    first = await _refresh(prod, user["refresh_token"])
    assert first.status_code == 200, first.text
    pair = first.json()
    assert pair["refresh_token"] != user["refresh_token"]
    assert _claims(pair["access_token"])["sid"] == _claims(user["access_token"])["sid"]
    assert (await prod.get(ME, headers=bearer(pair["access_token"]))).status_code == 200
    second = await _refresh(prod, pair["refresh_token"])
    assert second.status_code == 200
    async with db.read_session() as session:
        tokens = (
            (
                await session.execute(
                    select(RefreshToken).where(RefreshToken.user_id == user["user"]["id"])
                )
            )
            .scalars()
            .all()
        )
    assert len(tokens) == 3
    assert sum(t.used_at is None for t in tokens) == 1


async def test_refresh_reuse_revokes_the_whole_family(prod: Any, db: Any) -> None:
    user = await register(prod)
    other_session = await login(prod, user["email"])  # a separate sign-in, not in the family
    rotated = (await _refresh(prod, user["refresh_token"])).json()

    reused = await _refresh(prod, user["refresh_token"])
    assert reused.status_code == 401 and error_code(reused) == "refresh_token_reused"
    # Every token of the family is dead: the rotated refresh token and both access tokens.
    after = await _refresh(prod, rotated["refresh_token"])
    assert after.status_code == 401 and error_code(after) == "token_revoked"
    for token in (user["access_token"], rotated["access_token"]):
        response = await prod.get(ME, headers=bearer(token))
        assert response.status_code == 401 and error_code(response) == "token_revoked"
    # The revocation was committed although the request failed.
    async with db.read_session() as session:
        revoked = (
            await session.execute(
                select(AuthSession).where(AuthSession.id == _claims(user["access_token"])["sid"])
            )
        ).scalar_one()
    assert revoked.revoked_at is not None and revoked.revoked_reason == "refresh_token_reuse"
    # Another sign-in of the same user is untouched.
    assert (await prod.get(ME, headers=other_session["headers"])).status_code == 200


async def test_concurrent_refresh_with_one_token_wins_once(prod: Any) -> None:
    user = await register(prod)
    responses = await asyncio.gather(*[_refresh(prod, user["refresh_token"]) for _ in range(5)])
    codes = sorted(r.status_code for r in responses)
    assert codes.count(200) <= 1, codes
    assert any(error_code(r) == "refresh_token_reused" for r in responses)
    # The family is revoked, including whatever the winner got.
    for r in responses:
        if r.status_code == 200:
            assert (await prod.get(ME, headers=bearer(r.json()["access_token"]))).status_code == 401


# --- bad tokens -------------------------------------------------------------------------------


async def test_expired_access_and_refresh_tokens(prod: Any) -> None:
    user = await register(prod)
    claims = _claims(user["access_token"])
    past = utcnow() - timedelta(hours=2)
    expired_access, _ = issue_token(
        secret=PRODUCTION_SECRET,
        user_id=int(claims["sub"]),
        session_id=claims["sid"],
        token_type="access",
        ttl_seconds=60,
        now=past,
    )
    response = await prod.get(ME, headers=bearer(expired_access))
    assert response.status_code == 401 and error_code(response) == "token_expired"
    expired_refresh, _ = issue_token(
        secret=PRODUCTION_SECRET,
        user_id=int(claims["sub"]),
        session_id=claims["sid"],
        token_type="refresh",
        ttl_seconds=60,
        now=past,
    )
    response = await _refresh(prod, expired_refresh)
    assert response.status_code == 401 and error_code(response) == "token_expired"


def _tamper_payload(token: str, **changes: Any) -> str:
    header, payload, signature = token.split(".")
    data = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data.update(changes)
    encoded = base64.urlsafe_b64encode(orjson.dumps(data)).rstrip(b"=").decode()
    return f"{header}.{encoded}.{signature}"


async def test_tampered_and_foreign_tokens(prod: Any) -> None:
    victim = await register(prod)
    attacker = await register(prod)
    claims = _claims(attacker["access_token"])
    # Payload changed (become the victim), signature kept.
    forged = _tamper_payload(attacker["access_token"], sub=str(victim["user"]["id"]))
    # Signature changed.
    head, payload, sig = attacker["access_token"].split(".")
    bad_sig = f"{head}.{payload}.{sig[:-4]}{'AAAA' if sig[-4:] != 'AAAA' else 'BBBB'}"
    # Signed with another secret (e.g. the default development secret).
    other_secret, _ = issue_token(
        secret=DEFAULT_SECRET_KEY,
        user_id=victim["user"]["id"],
        session_id=claims["sid"],
        token_type="access",
        ttl_seconds=600,
    )
    # alg=none.
    unsigned = jwt.encode({**claims, "sub": str(victim["user"]["id"])}, key=None, algorithm="none")
    for token in (forged, bad_sig, other_secret, unsigned, "ey.not.a-token", "garbage"):
        response = await prod.get(ME, headers=bearer(token))
        assert response.status_code == 401, (token, response.text)
        assert error_code(response) in ("invalid_token", "invalid_key"), response.text
    # A valid token of the attacker's session with the victim's id in it is refused too:
    forged_session, _ = issue_token(
        secret=PRODUCTION_SECRET,
        user_id=victim["user"]["id"],
        session_id=claims["sid"],
        token_type="access",
        ttl_seconds=600,
    )
    response = await prod.get(ME, headers=bearer(forged_session))
    assert response.status_code == 401 and error_code(response) == "token_revoked"


async def test_wrong_token_type(prod: Any) -> None:
    user = await register(prod)
    # A refresh token used as an access token.
    response = await prod.get(ME, headers=bearer(user["refresh_token"]))
    assert response.status_code == 401 and error_code(response) == "wrong_token_type"
    response = await prod.get("/api/v1/events", headers=bearer(user["refresh_token"]))
    assert response.status_code == 401 and error_code(response) == "wrong_token_type"
    # An access token used as a refresh token.
    response = await _refresh(prod, user["access_token"])
    assert response.status_code == 401 and error_code(response) == "wrong_token_type"


async def test_no_credentials_in_production(prod: Any) -> None:
    for method, path in (("GET", ME), ("GET", "/api/v1/events"), ("GET", "/api/v1/projects")):
        response = await prod.request(method, path)
        assert response.status_code == 401, path
        assert response.headers.get("www-authenticate") == "Bearer"


# --- logout -----------------------------------------------------------------------------------


async def test_logout_with_access_token_revokes_that_session_only(prod: Any) -> None:
    user = await register(prod)
    other = await login(prod, user["email"])
    response = await prod.post("/api/v1/auth/logout", headers=user["headers"])
    assert response.status_code == 204
    revoked = await prod.get(ME, headers=user["headers"])
    assert revoked.status_code == 401 and error_code(revoked) == "token_revoked"
    refresh = await _refresh(prod, user["refresh_token"])
    assert refresh.status_code == 401 and error_code(refresh) == "token_revoked"
    assert (await prod.get(ME, headers=other["headers"])).status_code == 200


async def test_logout_with_refresh_token_and_everywhere(prod: Any) -> None:
    user = await register(prod)
    second = await login(prod, user["email"])
    third = await login(prod, user["email"])
    response = await prod.post(
        "/api/v1/auth/logout", json={"refresh_token": second["refresh_token"]}
    )
    assert response.status_code == 204
    assert (await prod.get(ME, headers=second["headers"])).status_code == 401
    assert (await prod.get(ME, headers=third["headers"])).status_code == 200
    response = await prod.post(
        "/api/v1/auth/logout", json={"all_sessions": True}, headers=third["headers"]
    )
    assert response.status_code == 204
    for session in (user, third):
        assert (await prod.get(ME, headers=session["headers"])).status_code == 401
    # Signing in again works.
    assert (
        await prod.get(ME, headers=(await login(prod, user["email"]))["headers"])
    ).status_code == 200


async def test_logout_needs_some_credential(prod: Any, db: Any) -> None:
    response = await prod.post("/api/v1/auth/logout")
    assert response.status_code == 401
    response = await prod.post("/api/v1/auth/logout", json={"refresh_token": "garbage"})
    assert response.status_code == 401
    async with db.read_session() as session:
        assert (
            await session.execute(
                select(func.count())
                .select_from(AuthSession)
                .where(AuthSession.revoked_at.is_not(None))
            )
        ).scalar_one() == 0


# --- interactive docs ---------------------------------------------------------------------------


async def test_docs_pages_and_authorize_button(prod: Any) -> None:
    for path in ("/api/v1/docs", "/docs"):
        page = await prod.get(path)
        assert page.status_code == 200 and "swagger-ui" in page.text
    schema = (await prod.get("/openapi.json")).json()
    flow = schema["components"]["securitySchemes"]["OAuth2Password"]["flows"]["password"]
    assert flow["tokenUrl"] == "/api/v1/auth/login"
    assert {"OAuth2Password": []} in schema["security"]
    login_body = schema["paths"]["/api/v1/auth/login"]["post"]["requestBody"]["content"]
    assert "application/x-www-form-urlencoded" in login_body
    for path in ("/api/v1/auth/register", "/api/v1/users/me", "/api/v1/projects", "/api/v1/events"):
        assert path in schema["paths"]
