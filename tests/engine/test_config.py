"""Config parsing: TDK-style YAML in, typed models out, and every problem named by its path."""

from __future__ import annotations

from pathlib import Path

import pytest

from governor.engine.config import Mode, SafetyMode, SchemaCreationMode, TableTruncationMode, parse_config
from governor.engine.errors import ConfigError

FULL = """
default_config:
  mode: MASKING
  target_ratio: 1.0
  insert_batch_size: 5000
global_seed: 42
safety_mode: STRICT
schema_creation_mode: DROP_AND_CREATE
table_truncation_mode: TRUNCATE
schemas: [public]
tables:
  - table_name_with_schema: public.customers
    mode: MASKING
    transformations:
      - columns: [first_name, last_name, email]
        params:
          type: person_generator
          column_templates: ["${first_name}", "${last_name}", "${email}"]
      - columns: [id]
        params:
          type: unique_hashing
  - table_name_with_schema: public.orders
    mode: KEEP
metadata:
  tables:
    - table_name_with_schema: public.orders
      foreign_keys:
        - referencing_columns: [customer_ref]
          referenced_table: public.customers
          referenced_columns: [id]
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    return caught.value.problems


def test_full_config_parses_into_typed_models() -> None:
    config = parse_config(FULL)
    assert config.default_config.mode is Mode.MASKING
    assert config.default_config.insert_batch_size == 5000
    assert config.global_seed == 42
    assert config.safety_mode is SafetyMode.STRICT
    assert config.schema_creation_mode is SchemaCreationMode.DROP_AND_CREATE
    assert config.table_truncation_mode is TableTruncationMode.TRUNCATE
    assert config.tables[0].transformations[0].params.type == "person_generator"
    assert config.tables[0].transformations[0].params.options() == {
        "column_templates": ["${first_name}", "${last_name}", "${email}"]
    }
    assert config.tables[1].mode is Mode.KEEP
    assert config.metadata.tables[0].foreign_keys[0].referenced_columns == ["id"]


def test_defaults_of_an_empty_config() -> None:
    config = parse_config("")
    assert config.default_config.mode is Mode.KEEP
    assert config.schema_creation_mode is SchemaCreationMode.CREATE_IF_NOT_EXISTS
    assert config.table_truncation_mode is TableTruncationMode.DO_NOT_TRUNCATE
    assert config.global_seed is None


def test_unknown_transformer_names_the_path_and_the_known_ones() -> None:
    text = FULL.replace("type: unique_hashing", "type: foo")
    [problem] = problems_of(text)
    assert problem.startswith("tables[0].transformations[1].params.type: unknown transformer 'foo'; known: ")
    assert "person_generator" in problem


def test_unknown_key_and_bad_enum_are_both_reported_with_paths() -> None:
    text = FULL.replace("    mode: KEEP", "    mode: KEPT\n    colour: blue")
    problems = problems_of(text)
    assert any(p.startswith("tables[1].mode: 'KEPT' is not one of") for p in problems), problems
    assert "tables[1].colour: unknown key" in problems


def test_bad_transformer_param_is_named() -> None:
    text = FULL.replace("type: unique_hashing", "type: unique_hashing\n          nonsense: 1")
    [problem] = problems_of(text)
    assert problem.startswith("tables[0].transformations[1].params.nonsense: ")


def test_ratio_must_be_positive() -> None:
    assert parse_config(FULL.replace("target_ratio: 1.0", "target_ratio: 0.5")).default_config.target_ratio == 0.5
    [problem] = problems_of(FULL.replace("target_ratio: 1.0", "target_ratio: 0"))
    assert problem.startswith("default_config.target_ratio: ")
    assert "greater than 0" in problem


def test_not_yaml_and_not_a_mapping() -> None:
    [problem] = problems_of("tables: [unclosed")
    assert problem.startswith("(config): not valid YAML at line")
    [problem] = problems_of("- just\n- a list\n")
    assert "expected a mapping" in problem


def test_empty_columns_list_is_refused() -> None:
    text = FULL.replace("      - columns: [id]", "      - columns: []")
    [problem] = problems_of(text)
    assert problem.startswith("tables[0].transformations[1].columns: ")


def test_deeply_nested_yaml_is_a_config_error_not_a_recursion_error() -> None:
    [problem] = problems_of("tables: " + "[" * 5000 + "]" * 5000)
    assert problem == "(config): nested too deeply to be a workflow config"


def test_a_key_written_twice_is_refused_with_its_line() -> None:
    text = FULL + "tables:\n  - table_name_with_schema: public.orders\n"
    [problem] = problems_of(text)
    line = text.splitlines().index("tables:", 20) + 1
    assert problem == f"(config): not valid YAML at line {line}, column 1: duplicate key 'tables'"


def test_a_key_overriding_a_merged_one_is_no_duplicate() -> None:
    text = "tables:\n  - &base {table_name_with_schema: a, mode: KEEP}\n  - {<<: *base, mode: MASKING}\n"
    assert [table.mode for table in parse_config(text).tables] == [Mode.KEEP, Mode.MASKING]


def test_a_column_listed_twice_is_refused_with_its_path() -> None:
    text = FULL.replace("      - columns: [id]", "      - columns: [id, id]")
    assert problems_of(text) == ["tables[0].transformations[1].columns: 'id' listed more than once"]


def test_a_filter_on_a_generated_table_is_refused_not_ignored() -> None:
    text = "default_config: {mode: GENERATION}\ntables:\n  - {table_name_with_schema: a, filter: 'id > 3'}\n"
    assert problems_of(text) == ["tables[0].filter: a GENERATION table copies no source rows to filter"]
    masked = text.replace("filter:", "mode: MASKING, filter:")
    assert parse_config(masked).tables[0].filter == "id > 3"


def test_the_readme_config_example_parses() -> None:
    """The config a reader copies from the README is one the engine takes."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    example = readme.split("## Workflow configs", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    config = parse_config(example)
    assert [table.mode for table in config.tables] == [Mode.MASKING, Mode.GENERATION]
    assert config.metadata.tables and config.scripts.after == ["ANALYZE"]
