"""The HTTP application: External API, management API, and one error shape for both.

Every error leaves as JSON ``{"message": ...}`` (plus ``problems`` for input with several),
never as a stack trace: unexpected errors are logged here, with credentials masked, and the
client only learns that something went wrong on the server.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy.exc import DataError, IntegrityError
from starlette.exceptions import HTTPException

import governor
from governor.api import external
from governor.api.management.router import router as management_router
from governor.engine.config import format_path
from governor.engine.errors import ConfigError
from governor.runs.executor import Executor
from governor.settings import Settings
from governor.store.crypto import redact
from governor.store.db import Store
from governor.store.errors import Conflict, Invalid, NotFound, StoreError

log = logging.getLogger(__name__)

EXTERNAL_PREFIX = "/external/api/v1"
MANAGEMENT_PREFIX = "/api/v1"


def _error(status: int, message: str, problems: list[str] | None = None, headers: Any = None) -> JSONResponse:
    body: dict[str, Any] = {"message": message}
    if problems is not None:
        body["problems"] = problems
    return JSONResponse(body, status_code=status, headers=headers)


def _validation_problems(exc: RequestValidationError) -> list[str]:
    problems = []
    for error in exc.errors():
        # ("path", "workflow_id") -> "workflow_id"; ("body", "tables", 0) -> "tables[0]"
        location = tuple(error.get("loc", ()))[1:] or ("request",)
        problems.append(f"{format_path(location)}: {error.get('msg', 'invalid')}")
    return problems


async def _on_http_error(request: Request, exc: HTTPException) -> JSONResponse:
    return _error(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))


async def _on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = _validation_problems(exc)
    return _error(422, "; ".join(problems), problems)


async def _on_config_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ConfigError)
    return _error(422, f"invalid config: {'; '.join(exc.problems)}", exc.problems)


async def _on_store_error(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, NotFound):
        return _error(404, str(exc))
    if isinstance(exc, Conflict):
        return _error(409, str(exc))
    if isinstance(exc, Invalid):
        return _error(422, str(exc), exc.problems)
    return _error(400, str(exc))


async def _on_integrity_error(request: Request, exc: Exception) -> JSONResponse:
    # A concurrent request created the same name or version first.
    return _error(409, "the change conflicts with data saved meanwhile; retry")


async def _on_data_error(request: Request, exc: Exception) -> JSONResponse:
    return _error(422, "a value cannot be stored: out of range or containing invalid characters")


async def _on_unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    details = redact("".join(traceback.format_exception(exc)))
    log.error("internal error on %s %s\n%s", request.method, request.url.path, details)
    return _error(500, "internal error")


def _add_management_api(app: FastAPI) -> None:
    """Mount the management API, with an OpenAPI document of its own (the External API has the
    seed's spec)."""
    api = APIRouter(prefix=MANAGEMENT_PREFIX)
    api.include_router(management_router)
    app.include_router(api)
    document: dict[str, Any] = {}

    @app.get(f"{MANAGEMENT_PREFIX}/openapi.json", include_in_schema=False)
    def management_openapi() -> dict[str, Any]:
        if not document:
            document.update(
                get_openapi(
                    title="Governor management API",
                    version=governor.__version__,
                    description="Users, access keys, data sources, workflows and runs. "
                    "Authenticate with the `X-Access-Key` header.",
                    routes=api.routes,
                )
            )
        return document

    @app.get(f"{MANAGEMENT_PREFIX}/docs", include_in_schema=False)
    def management_docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=f"{MANAGEMENT_PREFIX}/openapi.json", title="Governor management API")


def create_app(settings: Settings, store: Store, executor: Executor | None) -> FastAPI:
    """The whole HTTP surface; ``executor`` None serves the APIs without running anything."""
    app = FastAPI(
        title="Governor",
        version=governor.__version__,
        description="Test-data workflows as a service. External API under "
        f"`{EXTERNAL_PREFIX}`, management API under `{MANAGEMENT_PREFIX}` "
        f"(its own document: `{MANAGEMENT_PREFIX}/openapi.json`, `{MANAGEMENT_PREFIX}/docs`).",
    )
    app.state.settings = settings
    app.state.store = store
    app.state.executor = executor
    app.include_router(external.router, prefix=EXTERNAL_PREFIX)
    _add_management_api(app)
    app.add_exception_handler(HTTPException, _on_http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _on_validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(ConfigError, _on_config_error)
    app.add_exception_handler(StoreError, _on_store_error)
    app.add_exception_handler(IntegrityError, _on_integrity_error)
    app.add_exception_handler(DataError, _on_data_error)
    app.add_exception_handler(Exception, _on_unexpected_error)
    return app
