"""HTTP layer of sign-up, sign-in, token refresh and sign-out (``/api/v1/auth``), and the
interactive API docs (``/api/v1/docs`` and ``/docs``) with a working Authorize button."""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ValidationError

from gati.auth import service
from gati.auth.deps import credentials_from, verify_access_token
from gati.auth.schemas import (
    LoginRequest,
    LogoutRequest,
    RefreshRequest,
    RegisterRequest,
    TokenResponse,
)
from gati.deps import SessionDep, SettingsDep
from gati.exceptions import AppError, error_response
from gati.ingest.decode import parse_json, read_body
from gati.json import ORJSONResponse
from gati.ratelimit.deps import enforce, rate_key
from gati.users.schemas import UserRead
from gati.users.service import user_dict

router = APIRouter(prefix="/auth", tags=["auth"])

M = TypeVar("M", bound=BaseModel)

TOKEN_URL = "/api/v1/auth/login"
_MAX_AUTH_BODY = 64 * 1024


class RegisterResponse(TokenResponse):
    user: UserRead


def _validation_error(exc: ValidationError) -> AppError:
    errors = []
    for err in exc.errors(include_url=False):
        field = ".".join(str(p) for p in err.get("loc", ())) or "body"
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if field == "body" and ": " in message:
            field, message = message.split(": ", 1)
        errors.append({"field": field, "message": message})
    first = errors[0]
    return AppError(
        422, "validation_error", f"{first['field']}: {first['message']}", extra={"errors": errors}
    )


async def _json_model(request: Request, model: type[M], *, optional: bool = False) -> M:
    raw = await read_body(request, max_bytes=_MAX_AUTH_BODY)
    if optional and not raw.strip():
        return model()
    data = parse_json(raw)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _validation_error(exc) from None


async def _limit(request: Request) -> None:
    """Sign-in endpoints are limited per client address (guessing passwords costs time)."""
    realtime = getattr(request.app.state, "realtime", None)
    if realtime is not None:
        await enforce(realtime, "read", "auth:" + rate_key(request, None))


def _body(model: type[BaseModel], *, form: bool = False) -> dict[str, Any]:
    content: dict[str, Any] = {"application/json": {"schema": model.model_json_schema()}}
    if form:
        content["application/x-www-form-urlencoded"] = {
            "schema": {
                "type": "object",
                "required": ["username", "password"],
                "properties": {
                    "grant_type": {"type": "string", "enum": ["password"]},
                    "username": {"type": "string", "description": "Your email"},
                    "password": {"type": "string", "format": "password"},
                    "scope": {"type": "string"},
                },
            }
        }
    return {"requestBody": {"required": True, "content": content}}


@router.post(
    "/register",
    status_code=201,
    response_model=RegisterResponse,
    openapi_extra=_body(RegisterRequest),
    summary="Create an account (with a personal project) and sign in",
)
async def register(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    await _limit(request)
    body = await _json_model(request, RegisterRequest)
    user, pair = await service.register(
        session, settings, email=body.email, password=body.password, full_name=body.full_name
    )
    return ORJSONResponse({**pair.as_dict(), "user": user_dict(user)}, status_code=201)


@router.post(
    "/login",
    response_model=TokenResponse,
    openapi_extra=_body(LoginRequest, form=True),
    summary="Sign in with email and password (JSON, or the OAuth2 password form)",
)
async def login(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    await _limit(request)
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form()
        grant_type = form.get("grant_type")
        if grant_type not in (None, "", "password"):
            raise AppError(
                400, "unsupported_grant_type", "grant_type: only 'password' is supported"
            )
        data = {
            "email": form.get("username") or form.get("email"),
            "password": form.get("password"),
        }
        try:
            body = LoginRequest.model_validate(data)
        except ValidationError as exc:
            raise _validation_error(exc) from None
    else:
        body = await _json_model(request, LoginRequest)
    pair = await service.login(session, settings, email=body.email, password=body.password)
    return ORJSONResponse(pair.as_dict())


@router.post(
    "/refresh",
    response_model=TokenResponse,
    openapi_extra=_body(RefreshRequest),
    summary="Trade a refresh token for a new pair (the old one is used up)",
    description=(
        "Refresh tokens rotate: each works once. Presenting one that was already used revokes "
        "every token of that sign-in (401 `refresh_token_reused`)."
    ),
)
async def refresh(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    await _limit(request)
    body = await _json_model(request, RefreshRequest)
    outcome = await service.refresh(session, settings, token=body.refresh_token)
    if outcome.error is not None:
        # Returned, not raised: the family's revocation must be committed.
        err = outcome.error
        return error_response(err.status, err.code, err.detail, {"WWW-Authenticate": "Bearer"})
    assert outcome.tokens is not None
    return ORJSONResponse(outcome.tokens.as_dict())


@router.post(
    "/logout",
    status_code=204,
    openapi_extra={
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": LogoutRequest.model_json_schema()}},
        }
    },
    summary="Sign out: revoke this sign-in (or all of them)",
    description=(
        "Revokes the sign-in of `refresh_token` (body) or of the access token (Authorization); "
        "`all_sessions: true` revokes every sign-in of the user. Access tokens of a revoked "
        "sign-in stop working at once."
    ),
)
async def logout(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    body = await _json_model(request, LogoutRequest, optional=True)
    user_id: int | None = None
    session_id: str | None = None
    if body.refresh_token is None:
        credential = credentials_from(request)
        if credential is not None:
            claims, user = await verify_access_token(session, credential, settings=settings)
            user_id, session_id = user.id, claims.session_id
    await service.logout(
        session,
        settings,
        refresh_token=body.refresh_token,
        user_id=user_id,
        session_id=session_id,
        all_sessions=body.all_sessions,
    )
    return Response(status_code=204)


# --- interactive docs ---------------------------------------------------------------------

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "OAuth2Password": {
        "type": "oauth2",
        "description": "Sign in with your email (as username) and password",
        "flows": {"password": {"tokenUrl": TOKEN_URL, "scopes": {}}},
    },
    "ApiKeyBearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "A project key (sk_... or pk_...) or an access token",
    },
    "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}


def install_api_docs(app: FastAPI) -> None:
    """OpenAPI with an OAuth2 password flow (the Authorize button signs in through
    ``/api/v1/auth/login``) and API-key schemes, applied to every operation; Swagger UI at
    ``/docs`` (FastAPI's) and ``/api/v1/docs``."""

    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()  # FastAPI's, cached until routes change
        components = schema.setdefault("components", {})
        components.setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
        # Any one of them, or none (local mode, public endpoints).
        schema["security"] = [{name: []} for name in SECURITY_SCHEMES] + [{}]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]

    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API docs",
            oauth2_redirect_url=app.swagger_ui_oauth2_redirect_url,
            swagger_ui_parameters={"persistAuthorization": True},
        )

    app.add_api_route("/api/v1/docs", swagger_ui, include_in_schema=False, methods=["GET"])
