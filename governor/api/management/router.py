"""All management resources on one router, mounted by the app under ``/api/v1``."""

from __future__ import annotations

from fastapi import APIRouter

from governor.api.management import datasources, keys, runs, users, workflows

router = APIRouter()
for module in (users, keys, datasources, workflows, runs):
    router.include_router(module.router)
