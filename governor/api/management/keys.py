"""Access keys: everyone manages their own; admins manage anyone's."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy.orm import Session

from governor.api.auth import ADMIN_ROLES, CurrentKey
from governor.api.deps import MAX_ID, SessionDep
from governor.api.management.schemas import KeyCreated, KeyOut
from governor.store.keys import create_key, get_key, list_keys, revoke_key
from governor.store.models import AccessKey
from governor.store.users import get_user

router = APIRouter(tags=["access keys"])

KeyIdPath = Annotated[str, Path(min_length=1, max_length=32)]


class KeyCreate(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    user_id: Annotated[int | None, Field(ge=1, le=MAX_ID, description="Default: the caller")] = None
    expires_at: AwareDatetime | None = None


def _check_owner(caller: AccessKey, user_id: int) -> None:
    if user_id != caller.user_id and caller.user.role not in ADMIN_ROLES:
        raise HTTPException(403, "only admins manage other users' keys")


def _own_key(session: Session, caller: AccessKey, key_id: str) -> AccessKey:
    key = get_key(session, key_id)
    _check_owner(caller, key.user_id)
    return key


@router.post("/keys", response_model=KeyCreated, status_code=201, summary="Create a key (its secret is shown once)")
def create(body: KeyCreate, caller: CurrentKey, session: SessionDep) -> KeyCreated:
    user_id = body.user_id or caller.user_id
    _check_owner(caller, user_id)
    key, presented = create_key(session, get_user(session, user_id), body.name, body.expires_at)
    return KeyCreated.of(key, presented)


@router.get("/keys", response_model=list[KeyOut], summary="List keys (the caller's, or a user's for admins)")
def list_all(
    caller: CurrentKey,
    session: SessionDep,
    user_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Admins: omit for all keys")] = None,
) -> list[KeyOut]:
    if caller.user.role not in ADMIN_ROLES:
        _check_owner(caller, user_id or caller.user_id)
        user_id = caller.user_id
    return [KeyOut.model_validate(key) for key in list_keys(session, user_id)]


@router.get("/keys/{key_id}", response_model=KeyOut)
def read(key_id: KeyIdPath, caller: CurrentKey, session: SessionDep) -> KeyOut:
    return KeyOut.model_validate(_own_key(session, caller, key_id))


@router.post("/keys/{key_id}/revoke", response_model=KeyOut)
def revoke(key_id: KeyIdPath, caller: CurrentKey, session: SessionDep) -> KeyOut:
    _own_key(session, caller, key_id)
    return KeyOut.model_validate(revoke_key(session, key_id))
