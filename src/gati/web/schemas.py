"""Request and response models of the web analytics endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, StringConstraints, field_validator

MAX_PROPERTIES = 30
MAX_PROPERTY_KEY = 300
MAX_PROPERTY_VALUE = 2000
MAX_URL = 2048

PropertyValue = str | int | float | bool | None
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
UrlText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_URL)]


class Attribution(BaseModel):
    """``attribution`` of a /collect event. Only ``utmParams`` is read; other keys are kept in
    the raw event."""

    model_config = ConfigDict(extra="allow")

    utm_params: dict[str, str | None] | None = Field(default=None, alias="utmParams")


class CollectIn(BaseModel):
    """The seed-003 /collect event."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    event_type: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)
    ] = Field(default="pageview", alias="eventType")
    site_id: ShortText = Field(alias="siteId")
    session_id: ShortText | None = Field(default=None, alias="sessionId")
    visitor_id: ShortText | None = Field(default=None, alias="visitorId")
    timestamp: datetime | None = None
    url: UrlText | None = None
    path: UrlText | None = None
    referrer: UrlText | None = None
    title: Annotated[str, StringConstraints(strip_whitespace=True, max_length=1024)] | None = None
    attribution: Attribution | None = None
    properties: dict[str, Any] | None = Field(
        default=None, validation_alias=AliasChoices("properties", "props")
    )

    @field_validator("properties")
    @classmethod
    def _check_properties(cls, value: dict[str, Any] | None) -> dict[str, PropertyValue] | None:
        if value is None:
            return None
        if len(value) > MAX_PROPERTIES:
            raise ValueError(f"at most {MAX_PROPERTIES} properties are allowed, got {len(value)}")
        for key, item in value.items():
            if not key or len(key) > MAX_PROPERTY_KEY:
                raise ValueError(f"property names must be 1 to {MAX_PROPERTY_KEY} characters")
            if not isinstance(item, str | int | float | bool) and item is not None:
                raise ValueError(
                    f"property {key!r} must be a string, number, boolean or null, "
                    f"not {type(item).__name__}"
                )
            if isinstance(item, str) and len(item) > MAX_PROPERTY_VALUE:
                raise ValueError(f"property {key!r} is longer than {MAX_PROPERTY_VALUE} characters")
        return value


class CollectAccepted(BaseModel):
    """The seed's success response."""

    status: str = "success"
    message: str = "Event received and stored"
    event_id: str
    timestamp: datetime


class RecentEvent(BaseModel):
    event_id: str
    event_type: str
    site_id: str
    session_id: str | None
    visitor_id: str | None
    timestamp: datetime
    url: str | None
    path: str | None
    referrer: str | None
    title: str | None
    properties: dict[str, Any] | None


class SiteSettingsRead(BaseModel):
    site_id: str
    timezone: str
    hostnames: list[str]
    ip_mode: str


class SiteSettingsUpdate(BaseModel):
    """Fields left out are not changed."""

    model_config = ConfigDict(extra="forbid")

    timezone: str | None = Field(default=None, max_length=64, examples=["Europe/Berlin"])
    hostnames: list[Annotated[str, StringConstraints(max_length=255)]] | None = Field(
        default=None, max_length=100, examples=[["example.com"]]
    )
    ip_mode: Literal["full", "truncated", "none"] | None = None
