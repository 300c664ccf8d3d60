"""Authentication by access key (``X-Access-Key``) and the role checks built on it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader

from governor.store.keys import verify_key
from governor.store.models import AccessKey, Role

HEADER = "X-Access-Key"
access_key_header = APIKeyHeader(name=HEADER, auto_error=False, description="An access key, as `<key_id>:<secret>`.")
ADMIN_ROLES = (Role.ADMIN, Role.OWNER)


def current_key(request: Request, presented: Annotated[str | None, Security(access_key_header)]) -> AccessKey:
    """The caller's valid key (its ``user`` loaded), or 401.

    Checked in a transaction of its own, committed at once: recording the key's use must not hold
    a lock on the key's row for the whole request.
    """
    if not presented:
        raise HTTPException(401, f"missing {HEADER} header")
    with request.app.state.store.session() as session:
        key = verify_key(session, presented)
    if key is None:
        raise HTTPException(401, "access key is unknown, expired or revoked")
    return key


def require_admin(key: Annotated[AccessKey, Depends(current_key)]) -> AccessKey:
    if key.user.role not in ADMIN_ROLES:
        raise HTTPException(403, "this needs the admin role")
    return key


CurrentKey = Annotated[AccessKey, Depends(current_key)]
AdminKey = Annotated[AccessKey, Depends(require_admin)]
