"""Request and response models of ``/api/v1/projects`` (projects, members, API keys)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

Role = Literal["owner", "member"]
SLUG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")


def check_slug(value: str) -> str:
    if not SLUG_PATTERN.match(value):
        raise ValueError(
            "must be 1 to 100 lowercase letters, digits, '-', '_' or '.', starting with a "
            "letter or digit"
        )
    if value.isdigit():
        raise ValueError("must not be only digits (numbers are project ids)")
    return value


class ProjectCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, examples=["Checkout service"])
    slug: str | None = Field(
        default=None,
        description="URL-safe unique name, also the seed-002 project_key and seed-003 siteId; "
        "derived from the name when omitted",
    )

    @field_validator("slug")
    @classmethod
    def _slug(cls, value: str | None) -> str | None:
        return None if value is None else check_slug(value)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()


class ProjectUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    slug: str | None = None

    @field_validator("slug")
    @classmethod
    def _slug(cls, value: str | None) -> str | None:
        return None if value is None else check_slug(value)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be blank")
        return None if value is None else value.strip()


class ProjectRead(BaseModel):
    id: int
    slug: str
    name: str
    public_key: str = Field(description="Ingest-only key, safe to embed in browsers and DSNs")
    dsn: str = Field(description="Sentry DSN: <scheme>://<public key>@<host>/<project id>")
    role: Role | None = Field(description="Your role in this project (null for keys)")
    is_default: bool = Field(
        description="The project your requests use when they name none (your personal project)"
    )
    created_at: datetime


class ProjectCreated(ProjectRead):
    secret_key: str | None = Field(
        description="The project's first secret key. Shown only in this response: store it now"
    )


class MemberAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr = Field(description="An existing user's email")
    role: Role = "member"


class MemberUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role


class MemberRead(BaseModel):
    user_id: int
    email: str
    full_name: str | None = None
    role: Role
    created_at: datetime


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="default", min_length=1, max_length=200)


class ApiKeyRead(BaseModel):
    id: int
    project_id: int
    name: str
    prefix: str = Field(description="The key's first characters, to recognise it")
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(description="The secret key. Shown only in this response: store it now")
