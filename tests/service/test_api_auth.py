"""Keys and roles over HTTP, and the one JSON error shape of every failure."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from governor.store.db import Store
from governor.store.models import AccessKey, Role, utcnow
from tests.service.conftest import Caller


def _only_message(response) -> str:  # type: ignore[no-untyped-def]
    body = response.json()
    assert isinstance(body["message"], str) and body["message"]
    assert "Traceback" not in response.text
    return body["message"]


def test_good_key_reaches_the_api(client: TestClient, member: Caller) -> None:
    response = client.get("/api/v1/me", headers=member.headers)
    assert response.status_code == 200
    assert response.json()["email"] == member.email
    assert response.json()["role"] == "member"


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-Access-Key": ""}, {"X-Access-Key": "nonsense"}, {"X-Access-Key": "0123456789abcdef:wrong"}],
    ids=["missing", "empty", "malformed", "unknown"],
)
def test_missing_or_unknown_key_is_401(client: TestClient, member: Caller, headers: dict[str, str]) -> None:
    for path in ("/api/v1/me", "/api/v1/workflows", "/api/v1/datasources"):
        response = client.get(path, headers=headers)
        assert response.status_code == 401
        _only_message(response)


def test_wrong_secret_of_a_real_key_is_401(client: TestClient, member: Caller) -> None:
    key_id, secret = member.key.split(":")
    response = client.get("/api/v1/me", headers={"X-Access-Key": f"{key_id}:{secret[:-1]}x"})
    assert response.status_code == 401


def test_expired_revoked_and_deactivated_keys_are_401(
    client: TestClient,
    store: Store,
    make_caller,
    admin: Caller,  # type: ignore[no-untyped-def]
) -> None:
    expired, revoked, inactive = (make_caller(f"{n}@example.org") for n in ("expired", "revoked", "inactive"))
    with store.session() as session:
        key = session.query(AccessKey).filter_by(key_id=expired.key.split(":")[0]).one()
        key.expires_at = utcnow() - timedelta(seconds=1)
    response = client.post(f"/api/v1/keys/{revoked.key.split(':')[0]}/revoke", headers=revoked.headers)
    assert response.status_code == 200 and response.json()["revoked"] is True
    response = client.patch(f"/api/v1/users/{inactive.user_id}", json={"active": False}, headers=admin.headers)
    assert response.status_code == 200 and response.json()["active"] is False
    for caller in (expired, revoked, inactive):
        response = client.get("/api/v1/me", headers=caller.headers)
        assert response.status_code == 401, caller.email
        assert "unknown, expired or revoked" in _only_message(response)


def test_member_gets_403_on_user_administration(client: TestClient, member: Caller) -> None:
    for method, path, body in (
        ("GET", "/api/v1/users", None),
        ("POST", "/api/v1/users", {"email": "x@example.org", "name": "X"}),
        ("GET", f"/api/v1/users/{member.user_id}", None),
        ("PATCH", f"/api/v1/users/{member.user_id}", {"role": "admin"}),
    ):
        response = client.request(method, path, json=body, headers=member.headers)
        assert response.status_code == 403, path
        assert _only_message(response) == "this needs the admin role"


@pytest.mark.parametrize(
    ("path", "status", "message_start"),
    [
        ("/api/v1/users/abc", 422, "user_id: "),
        ("/api/v1/users/0", 422, "user_id: "),
        ("/api/v1/users/-5", 422, "user_id: "),
        ("/api/v1/users/99999999999999999999999", 422, "user_id: "),
        ("/api/v1/users/9223372036854775807", 404, "user 9223372036854775807 not found"),
        ("/api/v1/workflows/1.5", 422, "workflow_id: "),
        ("/api/v1/workflows/77", 404, "workflow 77 not found"),
        ("/api/v1/datasources/77", 404, "data source 77 not found"),
        ("/api/v1/keys/nope", 404, "access key 'nope' not found"),
        ("/api/v1/no-such-route", 404, "Not Found"),
    ],
)
def test_bad_and_unknown_ids(client: TestClient, admin: Caller, path: str, status: int, message_start: str) -> None:
    response = client.get(path, headers=admin.headers)
    assert response.status_code == status
    assert _only_message(response).startswith(message_start)


def test_malformed_json_body_is_422(client: TestClient, admin: Caller) -> None:
    response = client.post(
        "/api/v1/users", content=b"{not json", headers={**admin.headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 422
    _only_message(response)


def test_unexpected_error_is_500_without_details_and_logged_without_secrets(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    @client.app.get("/boom")  # type: ignore[attr-defined]
    def boom() -> None:
        raise RuntimeError("cannot reach postgresql://bob:hunter2@db/prod")

    with caplog.at_level(logging.ERROR):
        response = client.get("/boom")
    assert response.status_code == 500
    assert response.json() == {"message": "internal error"}
    assert "hunter2" not in caplog.text
    assert "postgresql://bob:***@db/prod" in caplog.text


def test_owner_role_is_granted_only_by_owners(client: TestClient, admin: Caller, make_caller) -> None:  # type: ignore[no-untyped-def]
    body = {"email": "boss@example.org", "name": "Boss", "role": "owner"}
    assert client.post("/api/v1/users", json=body, headers=admin.headers).status_code == 403
    owner = make_caller("owner@example.org", Role.OWNER)
    response = client.post("/api/v1/users", json=body, headers=owner.headers)
    assert response.status_code == 201 and response.json()["role"] == "owner"
    response = client.patch(f"/api/v1/users/{owner.user_id}", json={"active": False}, headers=admin.headers)
    assert response.status_code == 403
