"""The workflow config, in the style of Synthesized TDK, parsed into typed models.

Users bring configs written for TDK, so field names and enum values follow it. Every problem is
reported with the path of the offending value (``tables[2].transformations[0].params.type``) so
that a user can find it in a long YAML file.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, field_validator
from pydantic_core import ErrorDetails

from governor.engine.errors import ConfigError


class Mode(StrEnum):
    KEEP = "KEEP"
    MASKING = "MASKING"
    GENERATION = "GENERATION"


class SchemaCreationMode(StrEnum):
    CREATE_IF_NOT_EXISTS = "CREATE_IF_NOT_EXISTS"
    DO_NOT_CREATE = "DO_NOT_CREATE"
    CREATE = "CREATE"
    DROP_AND_CREATE = "DROP_AND_CREATE"


class TableTruncationMode(StrEnum):
    DO_NOT_TRUNCATE = "DO_NOT_TRUNCATE"
    TRUNCATE = "TRUNCATE"
    IGNORE = "IGNORE"


class SafetyMode(StrEnum):
    STRICT = "STRICT"
    RELAXED = "RELAXED"


class CycleResolutionStrategy(StrEnum):
    FAIL = "FAIL"
    DELETE_NOT_REQUIRED = "DELETE_NOT_REQUIRED"


def _distinct(names: list[str]) -> list[str]:
    """A column named twice would be transformed (or referenced) twice, which no config means."""
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"{', '.join(map(repr, repeated))} listed more than once")
    return names


ColumnNames = Annotated[list[str], Field(min_length=1), AfterValidator(_distinct)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)


class TransformerParams(BaseModel):
    """``params`` of a transformation: ``type`` names the transformer, the rest are its own.

    The transformer's typed params model validates the rest (see ``governor.engine.transformers``).
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    type: str

    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class Transformation(_Strict):
    columns: ColumnNames
    mode: Mode | None = None
    params: TransformerParams


class DefaultConfig(_Strict):
    mode: Mode = Mode.KEEP
    target_ratio: float = Field(default=1.0, gt=0)  # above 1 only in GENERATION mode (checked in parse_config)
    insert_batch_size: int = Field(default=10_000, gt=0, le=1_000_000)
    target_row_number: int | None = Field(default=None, ge=0)  # generated tables only; wins over target_ratio
    use_text_column_heuristics: bool | None = None  # unset: the top-level use_text_column_heuristics


class CycleBreakerReference(_Strict):
    """A nullable reference of the table to load as NULL and restore afterwards, breaking a cycle."""

    columns: ColumnNames  # the referencing columns of this table
    referenced_table: str | None = None


class Scripts(_Strict):
    """SQL run on the target: ``before`` anything is written to it, ``after`` every table is loaded."""

    before: list[str] = []
    after: list[str] = []


class TableConfig(_Strict):
    table_name_with_schema: str = Field(min_length=1)
    mode: Mode | None = None
    target_ratio: float | None = Field(default=None, gt=0)
    target_row_number: int | None = Field(default=None, ge=0)  # GENERATION only (checked in parse_config)
    use_text_column_heuristics: bool | None = None
    filter: str | None = Field(default=None, min_length=1)  # an SQL condition over this source table
    cycle_breaker_references: list[CycleBreakerReference] = []
    transformations: list[Transformation] = []


@dataclass(frozen=True)
class VirtualForeignKey:
    """A virtual foreign key, whichever of its two config shapes it was written in.

    ``*_key`` are the keys under ``path`` naming the referenced table and each side's columns, so
    that a problem points at what the user wrote.
    """

    path: str
    referencing_columns: tuple[str, ...]
    referenced_table: str
    referenced_columns: tuple[str, ...]
    table_key: str
    referencing_key: str  # a format with the column's index: "referencing_columns[{}]"
    referenced_key: str


class ForeignKeyConfig(_Strict):
    """A virtual foreign key: a relation the database does not declare but the data has."""

    name: str | None = None
    referencing_columns: ColumnNames
    referenced_table: str = Field(min_length=1)
    referenced_columns: ColumnNames

    def virtual(self, path: str) -> VirtualForeignKey:
        return VirtualForeignKey(
            path,
            tuple(self.referencing_columns),
            self.referenced_table,
            tuple(self.referenced_columns),
            "referenced_table",
            "referencing_columns[{}]",
            "referenced_columns[{}]",
        )


class ColumnPair(_Strict):
    column: str = Field(min_length=1)
    referred_column: str = Field(min_length=1)


class NamedForeignKey(_Strict):
    """A virtual foreign key in TDK's documented shape: named by its key, its columns in pairs."""

    referred_schema: str | None = None
    referred_table: str = Field(min_length=1)
    columns: list[ColumnPair] = Field(min_length=1)

    @field_validator("columns")
    @classmethod
    def _distinct_columns(cls, columns: list[ColumnPair]) -> list[ColumnPair]:
        _distinct([pair.column for pair in columns])
        return columns

    def virtual(self, path: str) -> VirtualForeignKey:
        table = f"{self.referred_schema}.{self.referred_table}" if self.referred_schema else self.referred_table
        return VirtualForeignKey(
            path,
            tuple(pair.column for pair in self.columns),
            table,
            tuple(pair.referred_column for pair in self.columns),
            "referred_table",
            "columns[{}].column",
            "columns[{}].referred_column",
        )


def _foreign_keys_shape(value: Any) -> str:
    return "named" if isinstance(value, dict) else "list"


class TableMetadata(_Strict):
    table_name_with_schema: str = Field(min_length=1)
    # TDK documents a mapping of named foreign keys; the list is this engine's older shape. Both stay valid.
    foreign_keys: Annotated[
        Annotated[list[ForeignKeyConfig], Tag("list")] | Annotated[dict[str, NamedForeignKey], Tag("named")],
        Discriminator(_foreign_keys_shape),
    ] = []

    def virtual_foreign_keys(self, path: str) -> list[VirtualForeignKey]:
        """Each foreign key with its config path, ``path.foreign_keys[0]`` or ``path.foreign_keys.NAME``."""
        if isinstance(self.foreign_keys, dict):
            return [fk.virtual(f"{path}.foreign_keys.{name}") for name, fk in self.foreign_keys.items()]
        return [fk.virtual(f"{path}.foreign_keys[{f}]") for f, fk in enumerate(self.foreign_keys)]


class Metadata(_Strict):
    tables: list[TableMetadata] = []


class WorkflowConfig(_Strict):
    default_config: DefaultConfig = DefaultConfig()
    tables: list[TableConfig] = []
    schema_creation_mode: SchemaCreationMode = SchemaCreationMode.CREATE_IF_NOT_EXISTS
    table_truncation_mode: TableTruncationMode = TableTruncationMode.DO_NOT_TRUNCATE
    safety_mode: SafetyMode = SafetyMode.RELAXED
    cycle_resolution_strategy: CycleResolutionStrategy = CycleResolutionStrategy.FAIL
    global_seed: int | None = None
    schemas: list[str] | None = None
    metadata: Metadata = Metadata()
    scripts: Scripts = Scripts()
    # TDK's switch for picking person, address and finance generators by column name in GENERATION mode.
    use_text_column_heuristics: bool = False
    flags: list[str] = []  # TDK's feature flags: accepted as a key, but this engine implements none of them
    # For the service, not the engine: how many times a run whose ``governor worker`` was lost
    # (killed, or cut off from the metadata database) starts again before it ends FAILED.
    worker_lost_retries: int = Field(default=0, ge=0, le=10)


def format_path(loc: tuple[int | str, ...]) -> str:
    """``('tables', 2, 'mode')`` -> ``tables[2].mode``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path or "(config)"


def _user_loc(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """The error's location as the user wrote it: without validator names and union shape tags."""
    kept: list[int | str] = []
    for part in loc:
        if isinstance(part, str) and part.startswith("function-"):
            continue
        if kept and kept[-1] == "foreign_keys" and part in ("list", "named"):
            continue
        kept.append(part)
    return tuple(kept)


def error_message(item: ErrorDetails, unknown: str = "unknown key") -> str:
    """One pydantic error as a user reads it: with the value they wrote, when it is a plain one."""
    message = item["msg"].removeprefix("Value error, ")
    if item["type"] == "extra_forbidden":
        return unknown
    if item["type"] == "enum":
        return f"{item['input']!r} is not one of {item['ctx']['expected']}"
    if "input" in item and not isinstance(item["input"], dict | list):
        return f"{message} (got {item['input']!r})"
    return message


def _problems(error: ValidationError) -> list[str]:
    return [f"{format_path(_user_loc(item['loc']))}: {error_message(item)}" for item in error.errors()]


def _mode_settings(config: WorkflowConfig) -> list[str]:
    """Settings that only make sense in some modes.

    Row targets above the source's size, or as a count, need generated tables; a ``filter`` chooses
    source rows to copy, and a generated table copies none (its rows are learned from all of them).
    """
    problems = []
    default = config.default_config
    if default.target_ratio > 1.0 and default.mode is not Mode.GENERATION:
        problems.append("default_config.target_ratio: above 1 only in GENERATION mode")
    generated = [(table.mode or default.mode) is Mode.GENERATION for table in config.tables]
    if default.target_row_number is not None and default.mode is not Mode.GENERATION and not any(generated):
        problems.append("default_config.target_row_number: only in GENERATION mode, and no table is generated")
    for t, table in enumerate(config.tables):
        if generated[t]:
            if table.filter is not None:
                problems.append(f"tables[{t}].filter: a GENERATION table copies no source rows to filter")
            continue
        if table.target_ratio is not None and table.target_ratio > 1.0:
            problems.append(f"tables[{t}].target_ratio: above 1 only in GENERATION mode")
        if table.target_row_number is not None:
            problems.append(f"tables[{t}].target_row_number: only in GENERATION mode")
    return problems


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load keeps the last of two equal keys, silently dropping the first (two ``tables:``, say).

    Only the keys written in the mapping itself count: a key overriding one merged in (``<<: *base``)
    is how YAML merges are meant to be used.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node)  # type: ignore[no-untyped-call]
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def parse_config(data: str | dict[str, Any]) -> WorkflowConfig:
    """Parse YAML text (or an already loaded mapping) and validate it fully.

    Transformer params are checked here too, so a config that parses is a config that can be
    planned against any schema that has its tables and columns.
    """
    if isinstance(data, str):
        try:
            data = yaml.load(data, _UniqueKeyLoader) if data.strip() else {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise ConfigError([f"(config): not valid YAML{where}: {getattr(exc, 'problem', exc)}"]) from None
        except RecursionError:
            raise ConfigError(["(config): nested too deeply to be a workflow config"]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([f"(config): expected a mapping at the top level, got {type(data).__name__}"])
    try:
        config = WorkflowConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_problems(exc)) from None

    from governor.engine.transformers import validate_params

    problems = _mode_settings(config)
    problems += [
        f"flags[{f}]: {flag!r} is a TDK flag this engine does not support" for f, flag in enumerate(config.flags)
    ]
    for t, table in enumerate(config.tables):
        for i, transformation in enumerate(table.transformations):
            path = f"tables[{t}].transformations[{i}].params"
            problems.extend(validate_params(transformation.params, len(transformation.columns), path))
    if problems:
        raise ConfigError(problems)
    return config
