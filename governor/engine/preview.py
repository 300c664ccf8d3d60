"""The plan preview: what a run would do to each table, read from the source but writing nothing."""

from __future__ import annotations

from typing import Any

from governor.engine.config import WorkflowConfig
from governor.engine.connectors import open_connector
from governor.engine.plan import Plan
from governor.engine.runner import prepare
from governor.engine.subset import estimate_rows


def preview_plan(config: WorkflowConfig, source_url: str) -> Plan:
    """Tables in load order with mode, estimated rows, transformers per column and cycle breaks.

    Counting rows costs one ``count(*)`` per table (with the filter, for filtered tables); no
    data leaves the source.
    """
    source = open_connector(source_url)
    try:
        plan = prepare(config, source, config.global_seed or 0)
        estimate_rows(plan, source)
        return plan
    finally:
        source.close()


def plan_document(plan: Plan) -> dict[str, Any]:
    return {"seed": plan.seed, "tables": plan.describe()}
