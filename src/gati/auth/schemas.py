"""Request and response models of ``/api/v1/auth``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

MIN_PASSWORD_LENGTH = 8
# argon2 hashes any length, but hashing megabytes per login attempt is a denial of service.
MAX_PASSWORD_LENGTH = 1024
MAX_FULL_NAME_LENGTH = 200


def check_password_strength(value: str) -> str:
    if len(value) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(value) > MAX_PASSWORD_LENGTH:
        raise ValueError(f"must be at most {MAX_PASSWORD_LENGTH} characters")
    if not value.strip():
        raise ValueError("must not be only whitespace")
    return value


class RegisterRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    password: str = Field(description=f"At least {MIN_PASSWORD_LENGTH} characters")
    full_name: str | None = Field(default=None, max_length=MAX_FULL_NAME_LENGTH)

    @field_validator("password")
    @classmethod
    def _strength(cls, value: str) -> str:
        return check_password_strength(value)


class LoginRequest(BaseModel):
    """JSON login. ``POST /api/v1/auth/login`` also takes the OAuth2 password form
    (``username`` = email, ``password``), which the docs page's Authorize button sends."""

    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    password: str = Field(max_length=MAX_PASSWORD_LENGTH)


class TokenResponse(BaseModel):
    """OAuth2 token response (RFC 6749 section 5.1) plus the refresh token's lifetime."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires")
    refresh_token: str
    refresh_expires_in: int = Field(description="Seconds until the refresh token expires")


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str = Field(min_length=1, max_length=4096)


class LogoutRequest(BaseModel):
    """Logout revokes the session (refresh-token family) of ``refresh_token`` or, without it,
    the session of the access token that authenticates the request. ``all_sessions`` revokes
    every session of the user."""

    model_config = ConfigDict(extra="forbid")

    refresh_token: str | None = Field(default=None, min_length=1, max_length=4096)
    all_sessions: bool = False
