"""Users: administered by admins; anyone may read their own record (``/me``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from governor.api.auth import AdminKey, CurrentKey
from governor.api.deps import IdPath, SessionDep
from governor.api.management.schemas import UserOut
from governor.store.models import AccessKey, Role
from governor.store.users import create_user, get_user, list_users

router = APIRouter(tags=["users"])

Name = Annotated[str, Field(min_length=1, max_length=200)]


class UserCreate(BaseModel):
    email: Annotated[str, Field(min_length=3, max_length=320)]
    name: Name
    role: Role = Role.MEMBER


class UserUpdate(BaseModel):
    name: Name | None = None
    role: Role | None = None
    active: bool | None = None


def _may_grant(caller: AccessKey, role: Role | None) -> None:
    """Only an owner makes or unmakes owners: admins cannot raise themselves above admin."""
    if role == Role.OWNER and caller.user.role != Role.OWNER:
        raise HTTPException(403, "only an owner can grant the owner role")


@router.get("/me", response_model=UserOut, summary="The user behind the calling key")
def me(key: CurrentKey, session: SessionDep) -> UserOut:
    return UserOut.model_validate(get_user(session, key.user_id))


@router.post("/users", response_model=UserOut, status_code=201)
def create(body: UserCreate, key: AdminKey, session: SessionDep) -> UserOut:
    _may_grant(key, body.role)
    return UserOut.model_validate(create_user(session, body.email, body.name, body.role))


@router.get("/users", response_model=list[UserOut])
def list_all(key: AdminKey, session: SessionDep) -> list[UserOut]:
    return [UserOut.model_validate(user) for user in list_users(session)]


@router.get("/users/{user_id}", response_model=UserOut)
def read(user_id: IdPath, key: AdminKey, session: SessionDep) -> UserOut:
    return UserOut.model_validate(get_user(session, user_id))


@router.patch("/users/{user_id}", response_model=UserOut, summary="Rename, change the role, (de)activate")
def update(user_id: IdPath, body: UserUpdate, key: AdminKey, session: SessionDep) -> UserOut:
    user = get_user(session, user_id)
    _may_grant(key, body.role)
    if user.role == Role.OWNER:
        _may_grant(key, Role.OWNER)
    if body.name is not None:
        user.name = body.name
    if body.role is not None:
        user.role = body.role
    if body.active is not None:
        user.active = body.active
    return UserOut.model_validate(user)
