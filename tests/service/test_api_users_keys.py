"""Users and access keys over HTTP: admin rights, the secret shown once, revocation, expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from governor.store.db import Store
from governor.store.models import AccessKey
from tests.service.conftest import Caller


def test_admin_creates_and_lists_users(client: TestClient, admin: Caller) -> None:
    response = client.post(
        "/api/v1/users", json={"email": "New@Example.org", "name": "New", "role": "member"}, headers=admin.headers
    )
    assert response.status_code == 201
    created = response.json()
    assert created["email"] == "new@example.org" and created["role"] == "member" and created["active"] is True
    assert created["created_at"].endswith("Z")
    duplicate = client.post("/api/v1/users", json={"email": "new@example.org", "name": "x"}, headers=admin.headers)
    assert duplicate.status_code == 409 and "already exists" in duplicate.json()["message"]
    bad = client.post("/api/v1/users", json={"email": "nobody", "name": "x"}, headers=admin.headers)
    assert bad.status_code == 422 and bad.json()["message"].startswith("email:")
    bad_role = client.post(
        "/api/v1/users", json={"email": "r@example.org", "name": "x", "role": "god"}, headers=admin.headers
    )
    assert bad_role.status_code == 422 and bad_role.json()["message"].startswith("role:")
    listed = client.get("/api/v1/users", headers=admin.headers).json()
    assert [u["email"] for u in listed] == ["admin@example.org", "new@example.org"]
    assert client.get(f"/api/v1/users/{created['id']}", headers=admin.headers).json() == created


def test_key_secret_is_shown_once_and_works(client: TestClient, member: Caller, store: Store) -> None:
    response = client.post("/api/v1/keys", json={"name": "ci"}, headers=member.headers)
    assert response.status_code == 201
    created = response.json()
    key_id, secret = created["key"].split(":")
    assert key_id == created["key_id"] and created["user_id"] == member.user_id
    assert len(secret) >= 43 and created["expires_at"] is None and created["revoked"] is False
    assert client.get("/api/v1/me", headers={"X-Access-Key": created["key"]}).status_code == 200

    for response in (
        client.get("/api/v1/keys", headers=member.headers),
        client.get(f"/api/v1/keys/{key_id}", headers=member.headers),
    ):
        assert response.status_code == 200
        assert secret not in response.text and '"key"' not in response.text
    listed = client.get("/api/v1/keys", headers=member.headers).json()
    assert [k["key_id"] for k in listed] == [member.key.split(":")[0], key_id]
    assert listed[1]["last_used_at"] is not None
    with store.session() as session:
        stored = session.query(AccessKey).filter_by(key_id=key_id).one()
        assert secret not in stored.secret_hash


def test_revoke(client: TestClient, member: Caller) -> None:
    created = client.post("/api/v1/keys", json={"name": "temp"}, headers=member.headers).json()
    revoked = client.post(f"/api/v1/keys/{created['key_id']}/revoke", headers=member.headers)
    assert revoked.status_code == 200 and revoked.json()["revoked"] is True
    assert client.get("/api/v1/me", headers={"X-Access-Key": created["key"]}).status_code == 401
    again = client.post(f"/api/v1/keys/{created['key_id']}/revoke", headers=member.headers)
    assert again.status_code == 409 and "already revoked" in again.json()["message"]
    assert client.post("/api/v1/keys/unknown/revoke", headers=member.headers).status_code == 404


def test_expiry(client: TestClient, member: Caller) -> None:
    soon = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    created = client.post("/api/v1/keys", json={"name": "day", "expires_at": soon}, headers=member.headers)
    assert created.status_code == 201 and created.json()["expires_at"].endswith("Z")
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    response = client.post("/api/v1/keys", json={"name": "late", "expires_at": past}, headers=member.headers)
    assert response.status_code == 422 and response.json()["message"] == "expires_at: must be in the future"
    naive = client.post(
        "/api/v1/keys", json={"name": "naive", "expires_at": "2999-01-01T00:00:00"}, headers=member.headers
    )
    assert naive.status_code == 422 and naive.json()["message"].startswith("expires_at:")


def test_expiry_is_kept_in_utc_and_beyond_year_9999_is_bad_input(client: TestClient, member: Caller) -> None:
    far = {"name": "far", "expires_at": "2999-01-01T10:00:00+14:00"}
    created = client.post("/api/v1/keys", json=far, headers=member.headers).json()
    assert created["expires_at"] == "2998-12-31T20:00:00Z"
    listed = client.get(f"/api/v1/keys/{created['key_id']}", headers=member.headers).json()
    assert listed["expires_at"] == created["expires_at"]
    too_far = {"name": "too far", "expires_at": "9999-12-31T23:59:59-14:00"}
    response = client.post("/api/v1/keys", json=too_far, headers=member.headers)
    assert response.status_code == 422 and response.json()["message"].startswith("expires_at:")


def test_keys_of_other_users_need_admin(client: TestClient, member: Caller, admin: Caller) -> None:
    admin_key_id = admin.key.split(":")[0]
    assert (
        client.post("/api/v1/keys", json={"name": "x", "user_id": admin.user_id}, headers=member.headers).status_code
        == 403
    )
    assert client.get(f"/api/v1/keys?user_id={admin.user_id}", headers=member.headers).status_code == 403
    assert client.get(f"/api/v1/keys/{admin_key_id}", headers=member.headers).status_code == 403
    assert client.post(f"/api/v1/keys/{admin_key_id}/revoke", headers=member.headers).status_code == 403
    assert client.get("/api/v1/me", headers=admin.headers).status_code == 200  # still valid

    for_member = client.post("/api/v1/keys", json={"name": "given", "user_id": member.user_id}, headers=admin.headers)
    assert for_member.status_code == 201 and for_member.json()["user_id"] == member.user_id
    assert client.post("/api/v1/keys", json={"name": "x", "user_id": 424242}, headers=admin.headers).status_code == 404
    everyone = client.get("/api/v1/keys", headers=admin.headers).json()
    assert {k["user_id"] for k in everyone} == {admin.user_id, member.user_id}
    mine = client.get("/api/v1/keys", headers=member.headers).json()
    assert {k["user_id"] for k in mine} == {member.user_id} and len(mine) == 2
    revoked = client.post(f"/api/v1/keys/{member.key.split(':')[0]}/revoke", headers=admin.headers)
    assert revoked.status_code == 200
    assert client.get("/api/v1/me", headers=member.headers).status_code == 401


def test_admin_changes_roles_and_deactivates(client: TestClient, member: Caller, admin: Caller) -> None:
    promoted = client.patch(
        f"/api/v1/users/{member.user_id}", json={"role": "admin", "name": "Promoted"}, headers=admin.headers
    )
    assert promoted.status_code == 200 and promoted.json()["role"] == "admin"
    assert client.get("/api/v1/users", headers=member.headers).status_code == 200
    assert client.patch("/api/v1/users/4242", json={"active": False}, headers=admin.headers).status_code == 404
