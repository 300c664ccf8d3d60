"""Data sources (credentials encrypted, never shown) and workflows (validated, versioned) over HTTP."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from governor.store.db import Store
from governor.store.models import DataSource
from tests.servers import free_port
from tests.service.conftest import Caller

SECRET_URL = "postgresql://reader:hunter2-s3cret@127.0.0.1:{port}/prod"
KEEP_CONFIG = "default_config:\n  mode: KEEP\ntables:\n  - table_name_with_schema: customers\n    mode: KEEP\n"
BAD_CONFIG = "tables:\n  - table_name_with_schema: customers\n    mode: SHRED\n    colour: red\n"


def _sqlite_source(tmp_path: Path, name: str) -> str:
    path = tmp_path / f"{name}.sqlite"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT)")
    return f"sqlite:///{path}"


def _add(client: TestClient, caller: Caller, name: str, url: str, access: str = "read-write") -> dict:  # type: ignore[type-arg]
    response = client.post(
        "/api/v1/datasources", json={"name": name, "url": url, "access": access}, headers=caller.headers
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_data_source_credentials_are_encrypted_and_masked(
    client: TestClient, member: Caller, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    url = SECRET_URL.format(port=port)
    with caplog.at_level(logging.DEBUG):
        created = _add(client, member, "prod", url, "read-only")
        listed = client.get("/api/v1/datasources", headers=member.headers)
        read = client.get(f"/api/v1/datasources/{created['id']}", headers=member.headers)
        tested = client.post(f"/api/v1/datasources/{created['id']}/test", headers=member.headers)
    assert created["kind"] == "postgresql" and created["access"] == "read-only"
    assert created["url"] == f"postgresql://reader:***@127.0.0.1:{port}/prod"
    assert created["worker_group"] == "default" and created["created_by"] == member.user_id
    assert tested.status_code == 200 and tested.json()["ok"] is False and tested.json()["message"]
    for response in (listed, read, tested):
        assert response.status_code == 200
        assert "hunter2" not in response.text
    assert "hunter2" not in caplog.text
    with store.engine.connect() as connection:
        for row in connection.execute(sa.select(DataSource.__table__)):
            assert all("hunter2" not in str(value) for value in row)


def test_a_password_in_the_query_string_is_masked_too(
    client: TestClient, member: Caller, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    with caplog.at_level(logging.DEBUG):
        created = _add(client, member, "q", f"postgresql://alice@127.0.0.1:{port}/db?password=S3cretPW")
        tested = client.post(f"/api/v1/datasources/{created['id']}/test", headers=member.headers)
    assert created["url"] == f"postgresql://alice@127.0.0.1:{port}/db?password=***"
    assert tested.json()["ok"] is False
    assert tested.json()["message"].startswith(f"cannot connect to postgresql://alice@127.0.0.1:{port}/db?password=***")
    assert "S3cretPW" not in tested.text + caplog.text


def test_connection_test_succeeds_on_a_real_database(client: TestClient, member: Caller, tmp_path: Path) -> None:
    created = _add(client, member, "local", _sqlite_source(tmp_path, "local"))
    assert created["kind"] == "sqlite"
    response = client.post(f"/api/v1/datasources/{created['id']}/test", headers=member.headers)
    assert response.json() == {"ok": True, "message": "connected"}
    assert client.post("/api/v1/datasources/999/test", headers=member.headers).status_code == 404


def test_connection_test_on_postgresql(client: TestClient, member: Caller, pg_url_factory) -> None:  # type: ignore[no-untyped-def]
    created = _add(client, member, "pg", pg_url_factory())
    response = client.post(f"/api/v1/datasources/{created['id']}/test", headers=member.headers)
    assert response.json() == {"ok": True, "message": "connected"}


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "url: not a database URL"),
        ("postgresql://u:pw@h:notaport/db", "url: not a database URL"),
        ("postgresql://u:pw@[::1/db", "url: not a database URL"),
        ("oracle://u:p@h/db", "url: unsupported database kind 'oracle'"),
        ("", "url: "),
    ],
)
def test_bad_data_source_urls(client: TestClient, member: Caller, url: str, message: str) -> None:
    response = client.post("/api/v1/datasources", json={"name": "x", "url": url}, headers=member.headers)
    assert response.status_code == 422
    assert response.json()["message"].startswith(message)


def test_data_source_names_are_unique(client: TestClient, member: Caller, tmp_path: Path) -> None:
    url = _sqlite_source(tmp_path, "a")
    _add(client, member, "same", url)
    response = client.post("/api/v1/datasources", json={"name": "same", "url": url}, headers=member.headers)
    assert response.status_code == 409


@pytest.fixture
def sources(client: TestClient, member: Caller, tmp_path: Path) -> dict[str, int]:
    return {
        name: _add(client, member, name, _sqlite_source(tmp_path, name), access)["id"]
        for name, access in (("src", "read-only"), ("dst", "read-write"), ("dst2", "read-write"))
    }


def test_workflow_create_update_and_versions(
    client: TestClient, member: Caller, admin: Caller, sources: dict[str, int]
) -> None:
    body = {"name": "mask", "source_id": sources["src"], "target_id": sources["dst"], "config_yaml": KEEP_CONFIG}
    created = client.post("/api/v1/workflows", json=body, headers=member.headers)
    assert created.status_code == 201
    workflow = created.json()
    assert workflow["version"] == 1 and workflow["config_yaml"] == KEEP_CONFIG
    path = f"/api/v1/workflows/{workflow['id']}"

    new_config = KEEP_CONFIG.replace("mode: KEEP\n", "mode: KEEP\nglobal_seed: 7\n", 1)
    updated = client.patch(path, json={"config_yaml": new_config}, headers=admin.headers)
    assert updated.status_code == 200 and updated.json()["version"] == 2
    moved = client.patch(path, json={"name": "mask2", "target_id": sources["dst2"]}, headers=member.headers)
    assert moved.json()["version"] == 3 and moved.json()["target_id"] == sources["dst2"]
    unchanged = client.patch(path, json={"name": "mask2"}, headers=member.headers)
    assert unchanged.json()["version"] == 3

    versions = client.get(f"{path}/versions", headers=member.headers).json()
    assert [(v["version"], v["summary"], v["author_id"]) for v in versions] == [
        (1, "created", member.user_id),
        (2, "config", admin.user_id),
        (3, "name, target", member.user_id),
    ]
    assert all(v["created_at"].endswith("Z") for v in versions)
    assert versions[0]["created_at"] <= versions[1]["created_at"] <= versions[2]["created_at"]
    first = client.get(f"{path}/versions/1", headers=member.headers).json()
    assert first["config_yaml"] == KEEP_CONFIG
    assert client.get(f"{path}/versions/9", headers=member.headers).status_code == 404
    assert client.get(path, headers=member.headers).json()["config_yaml"] == new_config
    assert [w["id"] for w in client.get("/api/v1/workflows", headers=member.headers).json()] == [workflow["id"]]


def test_bad_configs_are_422_naming_the_path(client: TestClient, member: Caller, sources: dict[str, int]) -> None:
    body = {"name": "bad", "source_id": sources["src"], "target_id": sources["dst"], "config_yaml": BAD_CONFIG}
    response = client.post("/api/v1/workflows", json=body, headers=member.headers)
    assert response.status_code == 422
    problems = response.json()["problems"]
    assert any(p.startswith("tables[0].mode: 'SHRED'") for p in problems)
    assert "tables[0].colour: unknown key" in problems
    assert response.json()["message"].startswith("invalid config: ")

    yaml_error = client.post("/api/v1/workflows/validate", json={"config_yaml": "tables: [\n"}, headers=member.headers)
    assert yaml_error.status_code == 422 and "not valid YAML" in yaml_error.json()["message"]
    good = client.post("/api/v1/workflows/validate", json={"config_yaml": KEEP_CONFIG}, headers=member.headers)
    assert good.json() == {"valid": True, "tables": 1}

    body["config_yaml"] = KEEP_CONFIG
    workflow = client.post("/api/v1/workflows", json=body, headers=member.headers).json()
    patched = client.patch(
        f"/api/v1/workflows/{workflow['id']}", json={"config_yaml": BAD_CONFIG}, headers=member.headers
    )
    assert patched.status_code == 422
    assert client.get(f"/api/v1/workflows/{workflow['id']}/versions", headers=member.headers).json()[-1]["version"] == 1


def test_workflow_sources_must_exist_and_target_be_writable(
    client: TestClient, member: Caller, sources: dict[str, int]
) -> None:
    def create(source_id: int, target_id: int):  # type: ignore[no-untyped-def]
        body = {"name": "w", "source_id": source_id, "target_id": target_id, "config_yaml": KEEP_CONFIG}
        return client.post("/api/v1/workflows", json=body, headers=member.headers)

    assert create(999, sources["dst"]).json()["message"] == "source_id: data source 999 not found"
    assert create(sources["src"], 999).json()["message"] == "target_id: data source 999 not found"
    read_only = create(sources["dst"], sources["src"])
    assert read_only.status_code == 422
    assert read_only.json()["message"] == "target_id: data source 'src' is read-only; a target must be read-write"
    assert create(sources["src"], 0).status_code == 422
    workflow = create(sources["src"], sources["dst"]).json()
    response = client.patch(
        f"/api/v1/workflows/{workflow['id']}", json={"target_id": sources["src"]}, headers=member.headers
    )
    assert response.status_code == 422
    assert client.patch("/api/v1/workflows/999", json={"name": "x"}, headers=member.headers).status_code == 404


def test_management_openapi_and_docs(client: TestClient) -> None:
    document = client.get("/api/v1/openapi.json")
    assert document.status_code == 200
    paths = document.json()["paths"]
    assert {"/api/v1/users", "/api/v1/keys", "/api/v1/datasources", "/api/v1/workflows"} <= set(paths)
    assert all(path.startswith("/api/v1/") for path in paths)
    assert "X-Access-Key" in document.text
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200 and "/api/v1/openapi.json" in docs.text
    assert client.get("/docs").status_code == 200
    assert "/external/api/v1/healthy" in client.get("/openapi.json").json()["paths"]
