"""Request and response models of ``/api/v1/users``."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationInfo, field_validator

from gati.auth.schemas import MAX_FULL_NAME_LENGTH, MAX_PASSWORD_LENGTH, check_password_strength


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: EmailStr
    full_name: str | None = None
    is_active: bool = True
    created_at: datetime
    default_project_id: int | None = Field(
        default=None, description="The personal project used when a request names none"
    )


class UserUpdate(BaseModel):
    """``PUT /api/v1/users/me``: only the fields sent change. Changing the email or the password
    needs ``current_password``; a new password revokes every other session."""

    model_config = ConfigDict(extra="forbid")

    email: EmailStr | None = None
    full_name: str | None = Field(default=None, max_length=MAX_FULL_NAME_LENGTH)
    password: str | None = Field(default=None, description="The new password")
    current_password: str | None = Field(
        default=None, max_length=MAX_PASSWORD_LENGTH, validate_default=True
    )

    @field_validator("password")
    @classmethod
    def _strength(cls, value: str | None) -> str | None:
        return None if value is None else check_password_strength(value)

    @field_validator("current_password")
    @classmethod
    def _needs_current_password(cls, value: str | None, info: ValidationInfo) -> str | None:
        for field in ("password", "email"):
            if info.data.get(field) is not None and not value:
                raise ValueError(f"required to change the {field}")
        return value
