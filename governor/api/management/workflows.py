"""Workflows: configs validated on every save, each save kept as a version with author and time."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path
from pydantic import BaseModel, Field

from governor.api.auth import CurrentKey
from governor.api.deps import MAX_ID, IdPath, SessionDep, SettingsDep
from governor.api.management.schemas import ConfigValidOut, VersionOut, WorkflowOut
from governor.engine.config import parse_config
from governor.engine.errors import ConfigError, ConnectionFailed, EngineError
from governor.engine.preview import plan_document, preview_plan
from governor.store.datasources import connection_url
from governor.store.workflows import create_workflow, get_version, get_workflow, list_workflows, update_workflow

router = APIRouter(tags=["workflows"])

Name = Annotated[str, Field(min_length=1, max_length=200)]
SourceId = Annotated[int, Field(ge=1, le=MAX_ID)]
ConfigYaml = Annotated[str, Field(max_length=1_000_000, description="The TDK-style workflow config, as YAML")]


class WorkflowCreate(BaseModel):
    name: Name
    source_id: SourceId
    target_id: SourceId
    config_yaml: ConfigYaml


class WorkflowUpdate(BaseModel):
    name: Name | None = None
    source_id: SourceId | None = None
    target_id: SourceId | None = None
    config_yaml: ConfigYaml | None = None


class ConfigIn(BaseModel):
    config_yaml: ConfigYaml


@router.post("/workflows/validate", response_model=ConfigValidOut, summary="Validate a config without saving it")
def validate(body: ConfigIn, key: CurrentKey) -> ConfigValidOut:
    return ConfigValidOut(valid=True, tables=len(parse_config(body.config_yaml).tables))


@router.post("/workflows", response_model=WorkflowOut, status_code=201)
def create(body: WorkflowCreate, key: CurrentKey, session: SessionDep) -> WorkflowOut:
    workflow = create_workflow(session, body.name, body.source_id, body.target_id, body.config_yaml, key.user)
    return WorkflowOut.of(workflow)


@router.get("/workflows", response_model=list[WorkflowOut])
def list_all(key: CurrentKey, session: SessionDep) -> list[WorkflowOut]:
    return [WorkflowOut.of(workflow) for workflow in list_workflows(session)]


@router.get("/workflows/{workflow_id}", response_model=WorkflowOut)
def read(workflow_id: IdPath, key: CurrentKey, session: SessionDep) -> WorkflowOut:
    return WorkflowOut.of(get_workflow(session, workflow_id))


@router.patch("/workflows/{workflow_id}", response_model=WorkflowOut, summary="Change a workflow: a new version")
def update(workflow_id: IdPath, body: WorkflowUpdate, key: CurrentKey, session: SessionDep) -> WorkflowOut:
    workflow = update_workflow(
        session,
        get_workflow(session, workflow_id),
        key.user,
        name=body.name,
        source_id=body.source_id,
        target_id=body.target_id,
        config_yaml=body.config_yaml,
    )
    return WorkflowOut.of(workflow)


@router.get("/workflows/{workflow_id}/versions", response_model=list[VersionOut])
def versions(workflow_id: IdPath, key: CurrentKey, session: SessionDep) -> list[VersionOut]:
    return [VersionOut.model_validate(version) for version in get_workflow(session, workflow_id).versions]


@router.get("/workflows/{workflow_id}/versions/{version}", response_model=VersionOut)
def version(
    workflow_id: IdPath,
    version: Annotated[int, Path(ge=1, le=2**31 - 1)],
    key: CurrentKey,
    session: SessionDep,
) -> VersionOut:
    return VersionOut.model_validate(get_version(get_workflow(session, workflow_id), version))


class PlanOut(BaseModel):
    workflow_id: int
    version: int
    seed: int
    tables: list[dict[str, Any]] = Field(
        description="In load order: table, mode, rows (how they are chosen), estimated_rows, "
        "cycle_breaks, and per column what is done to it"
    )


@router.get(
    "/workflows/{workflow_id}/plan",
    response_model=PlanOut,
    summary="What a run of the current version would do, table by table, without running it",
)
def plan(workflow_id: IdPath, key: CurrentKey, session: SessionDep, settings: SettingsDep) -> PlanOut:
    workflow = get_workflow(session, workflow_id)
    version = workflow.current
    try:
        described = plan_document(
            preview_plan(parse_config(version.config_yaml), connection_url(workflow.source, settings))
        )
    except ConfigError:
        raise
    except ConnectionFailed as exc:
        raise HTTPException(409, f"cannot read the source data source: {exc}") from None
    except EngineError as exc:
        raise HTTPException(422, str(exc)) from None
    return PlanOut(workflow_id=workflow.id, version=version.version, **described)
