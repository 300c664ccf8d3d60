"""Workflows and their versions: every saved change is a new version with its author and time."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from governor.engine.config import parse_config
from governor.store.errors import Invalid, NotFound
from governor.store.models import Access, DataSource, User, Workflow, WorkflowVersion, utcnow


def _endpoint(session: Session, field: str, source_id: int) -> DataSource:
    source = session.get(DataSource, source_id)
    if source is None:
        raise Invalid(f"{field}: data source {source_id} not found")
    return source


def _check_target(target: DataSource) -> None:
    if target.access != Access.READ_WRITE:
        raise Invalid(f"target_id: data source {target.name!r} is read-only; a target must be read-write")


def create_workflow(
    session: Session, name: str, source_id: int, target_id: int, config_yaml: str, author: User | None
) -> Workflow:
    """Raises ``ConfigError`` (path-named problems) for a bad config, ``Invalid`` for bad sources."""
    parse_config(config_yaml)
    source = _endpoint(session, "source_id", source_id)
    target = _endpoint(session, "target_id", target_id)
    _check_target(target)
    workflow = Workflow(name=name, source=source, target=target)
    session.add(workflow)
    _add_version(session, workflow, config_yaml, "created", author)
    return workflow


def update_workflow(
    session: Session,
    workflow: Workflow,
    author: User | None,
    name: str | None = None,
    source_id: int | None = None,
    target_id: int | None = None,
    config_yaml: str | None = None,
) -> Workflow:
    """Apply the given changes as one new version; a save that changes nothing adds none."""
    changed = []
    if config_yaml is not None and config_yaml != workflow.current.config_yaml:
        parse_config(config_yaml)
        changed.append("config")
    if name is not None and name != workflow.name:
        workflow.name = name
        changed.append("name")
    if source_id is not None and source_id != workflow.source_id:
        workflow.source = _endpoint(session, "source_id", source_id)
        changed.append("source")
    if target_id is not None and target_id != workflow.target_id:
        target = _endpoint(session, "target_id", target_id)
        _check_target(target)
        workflow.target = target
        changed.append("target")
    if changed:
        workflow.updated_at = utcnow()
        new_config = config_yaml if "config" in changed else workflow.current.config_yaml
        _add_version(session, workflow, new_config, ", ".join(changed), author)
    return workflow


def _add_version(session: Session, workflow: Workflow, config_yaml: str, summary: str, author: User | None) -> None:
    number = workflow.versions[-1].version + 1 if workflow.versions else 1
    version = WorkflowVersion(
        version=number, config_yaml=config_yaml, summary=summary, author_id=author.id if author else None
    )
    workflow.versions.append(version)
    session.flush()


def get_workflow(session: Session, workflow_id: int) -> Workflow:
    workflow = session.get(Workflow, workflow_id)
    if workflow is None:
        raise NotFound(f"workflow {workflow_id} not found")
    return workflow


def list_workflows(session: Session) -> list[Workflow]:
    return list(session.scalars(sa.select(Workflow).order_by(Workflow.id)))


def get_version(workflow: Workflow, number: int) -> WorkflowVersion:
    for version in workflow.versions:
        if version.version == number:
            return version
    raise NotFound(f"workflow {workflow.id} has no version {number}")
