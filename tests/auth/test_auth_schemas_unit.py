"""Auth, user and project request models: what they accept and what they refuse."""

import pytest
from pydantic import ValidationError

from gati.auth.schemas import LoginRequest, LogoutRequest, RegisterRequest
from gati.projects.schemas import ApiKeyCreated, ProjectCreate, ProjectUpdate
from gati.users.schemas import UserUpdate


def _fields(exc: ValidationError) -> set[str]:
    out = set()
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        if not loc and ": " in err["msg"]:
            loc = err["msg"].removeprefix("Value error, ").split(": ", 1)[0]
        out.add(loc)
    return out


def test_register() -> None:
    req = RegisterRequest(email="a@example.com", password="correct horse")
    assert req.full_name is None
    for bad, field in [
        ({"email": "nope", "password": "correct horse"}, "email"),
        ({"email": "a@example.com", "password": "short"}, "password"),
        ({"email": "a@example.com", "password": " " * 10}, "password"),
        ({"email": "a@example.com", "password": "x" * 1025}, "password"),
        ({"email": "a@example.com", "password": "correct horse", "is_admin": True}, "is_admin"),
    ]:
        with pytest.raises(ValidationError) as info:
            RegisterRequest.model_validate(bad)
        assert field in _fields(info.value)


def test_login_does_not_check_strength() -> None:
    # An old account's short password must still be able to log in (and fail normally).
    assert LoginRequest(email="a@example.com", password="x").password == "x"


def test_logout_defaults() -> None:
    assert LogoutRequest().refresh_token is None and not LogoutRequest().all_sessions


def test_user_update_needs_current_password_for_email_and_password() -> None:
    assert UserUpdate(full_name="Ada").full_name == "Ada"
    with pytest.raises(ValidationError) as info:
        UserUpdate(password="new password 1")
    assert "current_password" in _fields(info.value)
    with pytest.raises(ValidationError) as info:
        UserUpdate(email="b@example.com")
    assert "current_password" in _fields(info.value)
    with pytest.raises(ValidationError) as info:
        UserUpdate(password="short", current_password="old password")
    assert "password" in _fields(info.value)
    ok = UserUpdate(password="new password 1", current_password="old password")
    assert ok.password == "new password 1"


@pytest.mark.parametrize("slug", ["shop", "my-project", "a.b_c-1", "0abc"])
def test_good_slugs(slug: str) -> None:
    assert ProjectCreate(name="x", slug=slug).slug == slug


@pytest.mark.parametrize("slug", ["", "Shop", "-a", "a b", "x" * 101, "123", "a/b"])
def test_bad_slugs(slug: str) -> None:
    with pytest.raises(ValidationError) as info:
        ProjectCreate(name="x", slug=slug)
    assert "slug" in _fields(info.value)
    with pytest.raises(ValidationError):
        ProjectUpdate(slug=slug)


def test_project_name() -> None:
    assert ProjectCreate(name="  Shop  ").name == "Shop"
    with pytest.raises(ValidationError):
        ProjectCreate(name="   ")


def test_created_key_shows_secret() -> None:
    assert "key" in ApiKeyCreated.model_fields
