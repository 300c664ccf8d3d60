"""The management API (``/api/v1``): what the CLI and a UI need, one module per resource."""

from __future__ import annotations

from fastapi import APIRouter

from governor.api.management import datasources, keys, runs, users, workflows

router = APIRouter()
for module in (users, keys, datasources, workflows, runs):
    router.include_router(module.router)
