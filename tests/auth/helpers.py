"""Helpers for the PulseBoard account tests (users, tokens, projects over HTTP)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

PASSWORD = "correct horse battery staple"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}@example.com"


async def register(
    client: httpx.AsyncClient, email: str | None = None, password: str = PASSWORD, **extra: Any
) -> dict[str, Any]:
    """Register; returns the response body plus ``headers`` (Authorization) and ``email``."""
    email = email or unique_email()
    response = await client.post(
        "/api/v1/auth/register", json={"email": email, "password": password, **extra}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    body["headers"] = bearer(body["access_token"])
    body["email"] = email
    return body


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    body = response.json()
    body["headers"] = bearer(body["access_token"])
    return body


def error_code(response: httpx.Response) -> str:
    return str(response.json().get("error"))
