"""GET /api/v1/workflows/{id}/plan: the plan preview over HTTP, read from a real demo source."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from governor.demo.database import build_demo_database
from tests.service.conftest import Caller

SUBSET_CONFIG = """
global_seed: 3
default_config:
  target_ratio: 0.1
tables:
  - table_name_with_schema: customers
    mode: MASKING
    transformations:
      - columns: [id]
        params: {type: unique_hashing}
"""


def _workflow(client: TestClient, caller: Caller, tmp_path: Path, config: str) -> int:
    source = f"sqlite:///{tmp_path / 'demo.sqlite'}"
    build_demo_database(source, scale=0.2)
    ids = []
    for name, url, access in (
        ("demo", source, "read-only"),
        ("copy", f"sqlite:///{tmp_path / 'copy.sqlite'}", "read-write"),
    ):
        response = client.post(
            "/api/v1/datasources", json={"name": name, "url": url, "access": access}, headers=caller.headers
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    body = {"name": "subset", "source_id": ids[0], "target_id": ids[1], "config_yaml": config}
    response = client.post("/api/v1/workflows", json=body, headers=caller.headers)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_plan_shows_order_modes_rows_and_propagated_masking(client: TestClient, member: Caller, tmp_path: Path) -> None:
    workflow_id = _workflow(client, member, tmp_path, SUBSET_CONFIG)
    response = client.get(f"/api/v1/workflows/{workflow_id}/plan", headers=member.headers)
    assert response.status_code == 200, response.text
    plan = response.json()
    assert plan["workflow_id"] == workflow_id and plan["version"] == 1 and plan["seed"] == 3
    tables = {t["table"].rsplit(".", 1)[-1]: t for t in plan["tables"]}
    order = [t["table"].rsplit(".", 1)[-1] for t in plan["tables"]]
    assert order.index("customers") < order.index("orders") < order.index("order_items")
    assert tables["customers"]["rows"].startswith("drawn") and tables["customers"]["estimated_rows"] == 20
    assert tables["orders"]["rows"].startswith("rows whose references point at kept rows")
    assert tables["orders"]["mode"] == "MASKING"  # its customer_id follows the masked key
    assert tables["orders"]["columns"]["customer_id"].startswith("unique_hashing")
    assert all(t["cycle_breaks"] == [] for t in plan["tables"])


def test_plan_errors_are_json_with_a_message(client: TestClient, member: Caller, tmp_path: Path) -> None:
    workflow_id = _workflow(client, member, tmp_path, "tables:\n  - table_name_with_schema: nowhere\n")
    response = client.get(f"/api/v1/workflows/{workflow_id}/plan", headers=member.headers)
    assert response.status_code == 422 and "nowhere" in response.json()["message"]
    assert client.get("/api/v1/workflows/999/plan", headers=member.headers).status_code == 404
    assert client.get(f"/api/v1/workflows/{workflow_id}/plan").status_code == 401
