"""HTTP layer of the signed-in user's account: ``/api/v1/users/me``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from gati.auth.deps import CurrentUserPrincipal, forget_keys
from gati.deps import AfterCommitDep, ReadSessionDep, SessionDep
from gati.json import ORJSONResponse
from gati.users import service
from gati.users.schemas import UserRead, UserUpdate

router = APIRouter(prefix="/users", tags=["users"])


def _user_id(principal: CurrentUserPrincipal) -> int:
    assert principal.user_id is not None
    return principal.user_id


@router.get("/me", response_model=UserRead, summary="The signed-in user")
async def get_me(principal: CurrentUserPrincipal, session: ReadSessionDep) -> Response:
    return ORJSONResponse(service.user_dict(await service.get_user(session, _user_id(principal))))


@router.put(
    "/me",
    response_model=UserRead,
    summary="Change your name, email or password",
    description=(
        "Only the fields sent change. A new email or password needs `current_password`. "
        "A new password signs out every other session of the account (this one stays)."
    ),
)
async def update_me(
    changes: UserUpdate, principal: CurrentUserPrincipal, session: SessionDep
) -> Response:
    user = await service.update_user(
        session, user_id=_user_id(principal), session_id=principal.session_id, changes=changes
    )
    return ORJSONResponse(service.user_dict(user))


@router.delete(
    "/me",
    status_code=204,
    summary="Delete your account",
    description=(
        "Deletes the account, every project you are the only owner of (with all its data), and "
        "your memberships elsewhere; every token of the account stops working. Projects that "
        "have another owner are kept."
    ),
)
async def delete_me(
    request: Request, principal: CurrentUserPrincipal, session: SessionDep, after: AfterCommitDep
) -> Response:
    if await service.delete_user(session, user_id=_user_id(principal)):

        async def forget() -> None:  # keys of the deleted projects stop working at once
            forget_keys(request.app)

        after.add(forget)
    return Response(status_code=204)
