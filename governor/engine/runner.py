"""Execute a plan: stream every table source -> transformers -> target, parents first.

Memory stays bounded by the batch size: batches flow through a generator from the source reader
into the target writer, and the stop request is checked between two batches.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import pyarrow as pa

from governor.engine.config import Mode, WorkflowConfig, parse_config
from governor.engine.connectors import open_connector
from governor.engine.connectors.base import Connector
from governor.engine.cycles import Restorer
from governor.engine.errors import EngineError, RunStopped, SchemaError
from governor.engine.generation import Generation
from governor.engine.plan import Plan, TablePlan, build_plan, check_not_same_database
from governor.engine.safety import check_target_is_not_source
from governor.engine.schema import Schema
from governor.engine.sql_text import split_statements
from governor.engine.subset import TableRows, select_for

EventKind = Literal["plan", "table_started", "rows", "table_finished", "log"]


@dataclass(frozen=True)
class RunEvent:
    kind: EventKind
    table: str | None = None
    rows: int = 0
    total: int | None = None
    message: str = ""


@dataclass
class TableReport:
    table: str
    mode: str
    rows_read: int = 0
    rows_written: int = 0
    seconds: float = 0.0
    source_rows: int = 0  # rows of the source table, before any filter or subsetting
    ratio: float | None = None  # rows_written / source_rows: the achieved subsetting ratio


@dataclass
class RunReport:
    tables: list[TableReport] = field(default_factory=list)
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _never() -> bool:
    return False


def _ignore(event: RunEvent) -> None:
    pass


def prepare(config: WorkflowConfig, source: Connector, seed: int) -> Plan:
    """Reflect the source and plan the run (also what ``--dry-run`` shows).

    A source without tables is refused: a run would copy nothing and report success, which is
    what a mistyped database name or schema looks like.
    """
    metadata = source.reflect(config.schemas)
    if not metadata.tables:
        where = f"schema {', '.join(config.schemas)}" if config.schemas else "its default schema"
        raise SchemaError(f"the source has no tables in {where}")
    schema = Schema(metadata, source.default_schema(), config.metadata)
    return build_plan(config, schema, source.arrow_schema, seed)


def run_workflow(
    config: str | WorkflowConfig,
    source_url: str,
    target_url: str,
    on_event: Callable[[RunEvent], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> RunReport:
    """Run a workflow config from source to target; raise ``EngineError`` for what a user can fix."""
    if isinstance(config, str):
        config = parse_config(config)
    emit = on_event or _ignore
    stop = should_stop or _never
    seed = config.global_seed if config.global_seed is not None else secrets.randbits(63)

    source = open_connector(source_url)
    try:
        target = open_connector(target_url)
    except EngineError:
        source.close()
        raise
    try:
        check_not_same_database(source_url, target_url)  # both URLs parse: open_connector checked them
        plan = prepare(config, source, seed)
        check_target_is_not_source(source, target, [t.table for t in plan.tables])
        selection = select_for(plan, source, config.default_config.insert_batch_size, stop)
        emit(RunEvent("plan", total=len(plan.tables), message=f"{len(plan.tables)} tables to load"))
        _run_scripts(target, config.scripts.before, "before", emit)
        target.prepare(
            [t.table for t in plan.tables],
            config.schema_creation_mode,
            config.table_truncation_mode,
        )
        report = RunReport(seed=seed)
        generation = Generation(plan, source, config.default_config.insert_batch_size, transform_batch, selection)
        restorer = Restorer(
            plan.cycles.breaks if plan.cycles else [], {t.name: t.table for t in plan.tables}, selection.points_at_kept
        )
        try:
            for table_plan in plan.tables:
                if stop():
                    raise RunStopped("stopped before all tables were loaded")
                table_report = TableReport(table=str(table_plan.name), mode=table_plan.mode.value)
                report.tables.append(table_report)
                _load_table(
                    table_plan,
                    table_report,
                    source,
                    target,
                    config.default_config.insert_batch_size,
                    emit,
                    stop,
                    generation,
                    selection.rows(table_plan.name),
                    restorer,
                )
            restored = restorer.restore(target)
            if restored:
                emit(RunEvent("log", message=f"{restored} references restored where cycles were broken"))
            _run_scripts(target, config.scripts.after, "after", emit)
        except EngineError as exc:
            exc.report = report
            raise
        return report
    finally:
        source.close()
        target.close()


def _load_table(
    plan: TablePlan,
    report: TableReport,
    source: Connector,
    target: Connector,
    batch_size: int,
    emit: Callable[[RunEvent], None],
    stop: Callable[[], bool],
    generation: Generation,
    rows: TableRows,
    restorer: Restorer,
) -> None:
    name = str(plan.name)
    started = time.perf_counter()
    report.source_rows = source.count(plan.table)
    total = report.source_rows if rows.expected is None else rows.expected
    generated = plan.mode is Mode.GENERATION
    if generated:
        total = generation.rows(plan)
    emit(RunEvent("table_started", table=name, total=total))
    generation.bind(plan)

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in generation.batches(plan) if generated else source.read(plan.table, batch_size, where=rows.where):
            if stop():
                raise RunStopped(f"stopped while loading {name}")
            report.rows_read += batch.num_rows
            kept = batch if generated else rows.keep(batch)  # generated rows are all kept: they are the target
            yield restorer.detach(plan.name, kept, kept if generated else transform_batch(plan, kept))
            emit(RunEvent("rows", table=name, rows=report.rows_read, total=total))

    stream = batches()
    try:
        report.rows_written = target.write(plan.table, stream)
    finally:
        # A failed load leaves the stream suspended: close it (and the source read under it)
        # now, while the source connection is still open.
        stream.close()
    report.seconds = round(time.perf_counter() - started, 3)
    report.ratio = round(report.rows_written / report.source_rows, 4) if report.source_rows else None
    emit(RunEvent("table_finished", table=name, rows=report.rows_written, total=total))


def _run_scripts(target: Connector, scripts: list[str], when: str, emit: Callable[[RunEvent], None]) -> None:
    statements = [statement for script in scripts for statement in split_statements(script)]
    if statements:
        target.execute_script(statements)
        emit(RunEvent("log", message=f"{len(statements)} script statements run on the target {when} the load"))


def transform_batch(plan: TablePlan, batch: pa.RecordBatch) -> pa.RecordBatch:
    """Apply the table's transformers to one batch; untouched columns are passed along zero-copy."""
    if not plan.transforms:
        return batch
    columns: list[pa.Array] = list(batch.columns)
    index = {name: i for i, name in enumerate(batch.schema.names)}
    for transform in plan.transforms:
        reads = [batch.column(index[c]) for c in transform.transformer.reads]  # source values, as read
        outputs = transform.transformer.apply([columns[index[c]] for c in transform.columns] + reads)
        for column, output in zip(transform.columns, outputs, strict=True):
            columns[index[column]] = output
    return pa.RecordBatch.from_arrays(columns, schema=batch.schema)
