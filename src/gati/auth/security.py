"""Passwords (argon2), JWT access/refresh tokens, and API key generation and hashing."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from gati.db.types import utcnow
from gati.exceptions import AppError

_hasher = PasswordHasher()
# Verified when the email is unknown, so that login takes the same time either way.
DUMMY_PASSWORD_HASH = _hasher.hash("gati-dummy-password-for-timing")

JWT_ALGORITHM = "HS256"
TokenType = Literal["access", "refresh"]

PUBLIC_KEY_PREFIX = "pk_"
SECRET_KEY_PREFIX = "sk_"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant-shape check: always runs one argon2 verification."""
    try:
        return _hasher.verify(password_hash or DUMMY_PASSWORD_HASH, password) and (
            password_hash is not None
        )
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    session_id: str
    token_id: str
    token_type: TokenType
    expires_at: datetime


def issue_token(
    *,
    secret: str,
    user_id: int,
    session_id: str,
    token_type: TokenType,
    ttl_seconds: int,
    now: datetime | None = None,
) -> tuple[str, TokenClaims]:
    now = now or utcnow()
    expires = now + timedelta(seconds=ttl_seconds)
    token_id = secrets.token_hex(16)
    payload = {
        "sub": str(user_id),
        "sid": session_id,
        "jti": token_id,
        "typ": token_type,
        "iat": int(now.timestamp()),
        "exp": int(expires.timestamp()),
    }
    token = jwt.encode(payload, secret, algorithm=JWT_ALGORITHM)
    return token, TokenClaims(user_id, session_id, token_id, token_type, expires)


def decode_token(token: str, *, secret: str, expected_type: TokenType) -> TokenClaims:
    """Verify signature, expiry and type. Raises AppError(401) saying what is wrong."""
    try:
        payload: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=[JWT_ALGORITHM],
            options={"require": ["exp", "sub", "sid", "jti", "typ"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise AppError(
            401, "token_expired", "The token has expired; refresh it or sign in again"
        ) from exc
    except jwt.InvalidTokenError as exc:
        raise AppError(401, "invalid_token", f"The token is not valid: {exc}") from exc
    if payload.get("typ") != expected_type:
        raise AppError(
            401,
            "wrong_token_type",
            f"A {payload.get('typ')} token was given where an {expected_type} token is required",
        )
    try:
        user_id = int(payload["sub"])
    except (TypeError, ValueError) as exc:
        raise AppError(401, "invalid_token", "The token's subject is not a user id") from exc
    return TokenClaims(
        user_id=user_id,
        session_id=str(payload["sid"]),
        token_id=str(payload["jti"]),
        token_type=expected_type,
        expires_at=datetime.fromtimestamp(int(payload["exp"]), tz=utcnow().tzinfo),
    )


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("ey")


def new_public_key() -> str:
    return PUBLIC_KEY_PREFIX + secrets.token_hex(16)


def new_secret_key() -> str:
    return SECRET_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    """Keys are 256-bit random strings, so one SHA-256 is the right hash (no stretching needed)."""
    return hashlib.sha256(key.encode()).hexdigest()
