"""The issue-4 transformers (sequences, continuous, finance, conditional, JSON pointer, defaults,
date-time unique hashing) and person_generator's unique emails, on realistic columns and, where
the schema matters, through real SQLite runs."""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pytest
from faker import Faker

from governor.engine.config import TransformerParams, parse_config
from governor.engine.errors import ConfigError, SchemaError
from governor.engine.runner import run_workflow
from governor.engine.transformers import ColumnContext, TransformContext, Transformer, build

ROWS = 10_000


@pytest.fixture(scope="module")
def data() -> dict[str, pa.Array]:
    """Realistic columns with a NULL every 97th row, drawn from pools of Faker values (Faker is slow)."""
    fake = Faker("en_US")
    fake.seed_instance(4711)
    picks = np.random.default_rng(4711).integers(0, 1_000, size=ROWS)

    def column(make, kind=pa.string()) -> pa.Array:
        pool = [make(i) for i in range(1_000)]
        return pa.array([None if i % 97 == 0 else pool[picks[i]] for i in range(ROWS)], kind)

    return {
        "email": pa.array([None if i % 97 == 0 else f"user{i}@{fake.free_email_domain()}" for i in range(ROWS)]),
        "status": column(lambda i: fake.random_element(["VIP", "basic", "closed"])),
        "amount": column(lambda i: Decimal(fake.pydecimal(4, 2, positive=True)), pa.decimal128(12, 2)),
        "quantity": column(lambda i: fake.random_int(1, 500), pa.int32()),
        "birth_date": column(lambda i: fake.date_of_birth(), pa.date32()),
        "created_at": column(lambda i: fake.date_time_between("-5y", "now", tzinfo=UTC), pa.timestamp("us", tz="UTC")),
        "card": column(lambda i: fake.credit_card_number()),
        "profile": column(
            lambda i: json.dumps({"name": fake.name(), "email": fake.email(), "tags": [fake.word()], "age": i % 90})
        ),
    }


def make(type_: str, columns: list[pa.Array], seed: int = 7, unique: bool = False, **options) -> Transformer:
    contexts = tuple(ColumnContext(f"c{i}", column.type, unique=unique) for i, column in enumerate(columns))
    return build(TransformerParams(type=type_, **options), TransformContext(seed=seed, columns=contexts))


def run(type_: str, columns: list[pa.Array], seed: int = 7, **options) -> list[pa.Array]:
    return make(type_, columns, seed, **options).apply(columns)


def luhn_valid(number: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = int(char) * (2 if position % 2 else 1)
        total += digit - 9 if digit > 9 else digit
    return total % 10 == 0


def iban_valid(iban: str) -> bool:
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


MASKING_CASES = [
    ("continuous_generator", ["amount", "quantity"], {"mean": 250, "std": 80, "min": 1, "max": 500}),
    ("date_time_unique_hashing", ["birth_date", "created_at"], {}),
    ("json_pointer_transformer", ["profile"], {"pointer": "/email", "params": {"type": "format_preserving_hashing"}}),
    (
        "finance_generator",
        ["card", "email"],
        {"column_templates": ["${credit_card_number}", "${iban}"]},
    ),
]


@pytest.mark.parametrize("case", MASKING_CASES, ids=lambda case: case[0])
def test_masking_transformers_keep_the_engine_promises(case: tuple, data: dict[str, pa.Array]) -> None:
    type_, names, options = case
    columns = [data[name] for name in names]
    first, again, other = (run(type_, columns, seed=seed, **options) for seed in (7, 7, 8))
    for original, output, repeat, reseeded in zip(columns, first, again, other, strict=True):
        assert output.type == original.type and len(output) == ROWS
        assert output.is_null().to_pylist() == original.is_null().to_pylist()
        assert output.equals(repeat) and not output.equals(reseeded)
        unchanged = sum(a == b for a, b in zip(original.to_pylist(), output.to_pylist(), strict=True) if a is not None)
        assert unchanged < ROWS * 0.01


def test_unique_person_emails_stay_unique_over_100000_rows() -> None:
    count = 100_000
    emails = pa.array([f"person{i}@example.net" for i in range(count)])
    usernames = pa.array([f"user{i}" for i in range(count)])
    templates = ["${email}", "${username}"]
    email, username = make("person_generator", [emails, usernames], unique=True, column_templates=templates).apply(
        [emails, usernames]
    )
    assert len(email.unique()) == count and len(username.unique()) == count
    assert len(set(value.lower() for value in email.to_pylist())) == count  # unique case-insensitively too
    sample = email.to_pylist()[:1000]
    assert all(re.fullmatch(r"[a-z0-9._]+\.[0-9a-v]{13}@example\.(com|org|net)", value) for value in sample)
    # Not unique: the short, natural form.
    (plain,) = run("person_generator", [emails.slice(0, 1000)], column_templates=["${email}"])
    assert not any(re.search(r"\.[0-9a-v]{13}@", value) for value in plain.to_pylist())


def test_sequences_number_rows_in_load_order_across_batches() -> None:
    ids = pa.array([10, None, 30, 40, 50], pa.int32())
    sequence = make("int_sequence_generator", [ids], start_from=100, step=5)
    first, second = sequence.apply([ids.slice(0, 3)])[0], sequence.apply([ids.slice(3)])[0]
    assert first.to_pylist() + second.to_pylist() == [100, None, 105, 110, 115]
    assert first.type == pa.int32()
    codes = make("string_sequence_generator", [pa.array(["a"] * 3)], prefix="INV-", digits=5, suffix="/X")
    assert codes.apply([pa.array(["a", None, "b"])])[0].to_pylist() == ["INV-00001/X", None, "INV-00002/X"]
    with pytest.raises(SchemaError, match="does not fit column 'c0'"):
        make("int_sequence_generator", [pa.array([1], pa.int8())], start_from=1000).apply([pa.array([1], pa.int8())])


def test_continuous_generator_follows_its_distribution(data: dict[str, pa.Array]) -> None:
    values = pa.array(np.arange(50_000, dtype=np.int64))
    (normal,) = run("continuous_generator", [values.cast(pa.float64())], mean=100.0, std=15.0, round=1)
    drawn = normal.to_numpy()
    assert abs(drawn.mean() - 100) < 0.5 and abs(drawn.std() - 15) < 0.5
    assert np.allclose(drawn, np.round(drawn, 1))
    (bounded,) = run("continuous_generator", [data["quantity"]], mean=10, std=50, min=0, max=20)
    assert set(bounded.drop_null().to_pylist()) <= set(range(21)) and bounded.type == pa.int32()
    (uniform,) = run("continuous_generator", [data["amount"]], min=5, max=6)
    assert all(Decimal(5) <= v <= Decimal(6) for v in uniform.drop_null().to_pylist())


def test_finance_generator_makes_valid_cards_and_ibans(data: dict[str, pa.Array]) -> None:
    templates = ["${credit_card_number}", "${credit_card_provider}", "${iban}", "${credit_card_expire}"]
    columns = [data["card"], data["email"], data["status"], data["card"]]
    cards, providers, ibans, expiry = run("finance_generator", columns, column_templates=templates)
    lengths = {"Visa": 16, "Mastercard": 16, "American Express": 15, "Discover": 16, "JCB": 16, "Diners Club": 14}
    for card, provider in zip(cards.drop_null().to_pylist(), providers.drop_null().to_pylist(), strict=True):
        assert luhn_valid(card) and len(card) == lengths[provider]
    countries = {iban[:2] for iban in ibans.drop_null().to_pylist()}
    assert countries == {"DE", "GB", "FR", "NL", "BE"}
    assert all(iban_valid(iban) for iban in ibans.drop_null().to_pylist())
    for iban in ibans.drop_null().to_pylist():
        if iban.startswith("BE"):  # the national check: the first ten BBAN digits mod 97
            assert int(iban[4:14]) % 97 in (int(iban[14:16]), int(iban[14:16]) % 97)
    assert all(re.fullmatch(r"(0[1-9]|1[0-2])/\d\d", value) for value in expiry.drop_null().to_pylist())
    visa, uk = run(
        "finance_generator",
        [data["card"], data["email"]],
        column_templates=["${credit_card_number}", "${iban}"],
        card_schemes=["VISA"],
        iban_countries=["GB"],
    )
    assert all(v.startswith("4") and len(v) == 16 for v in visa.drop_null().to_pylist())
    assert all(re.fullmatch(r"GB\d\d[A-Z]{4}\d{14}", v) for v in uk.drop_null().to_pylist())


def test_date_time_unique_hashing_is_one_to_one_within_a_year() -> None:
    days = pa.array(np.arange(-30_000, 30_000, dtype=np.int32)).view(pa.date32())
    (masked,) = run("date_time_unique_hashing", [days])
    before, after = days.view(pa.int32()).to_numpy(), masked.view(pa.int32()).to_numpy()
    assert len(np.unique(after)) == len(after) and not (before == after).any()
    assert np.abs(after - before).max() < 365
    moments = pa.array([datetime(2021, 3, 4, 5, 6, 7, 8, tzinfo=UTC), None], pa.timestamp("us", tz="UTC"))
    (shifted,) = run("date_time_unique_hashing", [moments])
    assert shifted[1].as_py() is None and abs(shifted[0].as_py() - moments[0].as_py()) < timedelta(days=365)


def test_json_pointer_rewrites_only_the_value_at_the_pointer(data: dict[str, pa.Array]) -> None:
    documents = pa.array(
        [
            '{"name": "Ann", "email": "ann@corp.com", "tags": ["x"]}',
            '{"other":   1}',
            "not json",
            None,
            '{"name": "Bob", "email": "ann@corp.com", "age": 3}',
        ]
    )
    (output,) = run(
        "json_pointer_transformer",
        [documents],
        pointers=[
            {"pointer": "/email", "params": {"type": "format_preserving_hashing"}},
            {"pointer": "/tags/0", "params": {"type": "constant_string", "value": "hidden"}},
            {"pointer": "/age", "params": {"type": "noising", "noise_type": "ABSOLUTE", "scale": 100}},
        ],
    )
    first, other, text, null, last = output.to_pylist()
    assert (other, text, null) == ('{"other":   1}', "not json", None)  # untouched, byte for byte
    first, last = json.loads(first), json.loads(last)
    assert first["name"] == "Ann" and first["tags"] == ["hidden"] and first["email"] != "ann@corp.com"
    assert first["email"] == last["email"]  # same value, same mask
    assert re.fullmatch(r"[a-z]{3}@[a-z]{4}\.[a-z]{3}", first["email"]) and isinstance(last["age"], int)
    (profiles,) = run("json_pointer_transformer", [data["profile"]], pointer="/name", params={"type": "redaction"})
    for before, after in zip(data["profile"].to_pylist(), profiles.to_pylist(), strict=True):
        if before is not None:
            old, new = json.loads(before), json.loads(after)
            assert set(new["name"]) <= {"x", " "} and {**new, "name": old["name"]} == old


def test_conditions_choose_the_first_matching_branch(data: dict[str, pa.Array]) -> None:
    columns = (ColumnContext("email", pa.string()),)
    table = (*columns, ColumnContext("status", pa.string()), ColumnContext("quantity", pa.int32()))
    conditional = build(
        TransformerParams(
            type="conditional_generator",
            conditions=[
                {"condition": "status = 'VIP' AND quantity >= 250", "params": {"type": "null_generator"}},
                {"condition": "status IN ('VIP', 'closed') OR email LIKE '%9@%'", "params": {"type": "redaction"}},
            ],
            default={"type": "passthrough"},
        ),
        TransformContext(seed=1, columns=columns, table=table),
    )
    assert conditional.reads == ("quantity", "status")
    (output,) = conditional.apply([data["email"], data["quantity"], data["status"]])
    rows = zip(
        data["email"].to_pylist(),
        data["status"].to_pylist(),
        data["quantity"].to_pylist(),
        output.to_pylist(),
        strict=True,
    )
    for email, status, quantity, masked in rows:
        if status == "VIP" and quantity >= 250:
            assert masked is None
        elif status in ("VIP", "closed") or (email is not None and re.search(r"9@", email)):
            assert masked is not None and set(masked) == {"x"} and len(masked) == len(email)
        else:
            assert masked == email


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("n > 1 AND NOT (s = 'b')", [False, False, True, False]),
        ("s IS NULL OR n = 1", [True, False, False, True]),
        ("s NOT IN ('a') AND d < '2020-06-01'", [False, True, False, False]),
        ("\"s\" <> 'a' OR flag", [False, True, True, False]),
    ],
)
def test_condition_syntax(condition: str, expected: list[bool]) -> None:
    from governor.engine.transformers.conditions import compile_condition

    columns = {
        "n": pa.array([1, 2, 3, None]),
        "s": pa.array(["a", "b", "c", None]),
        "d": pa.array([date(2020, 1, 1), date(2020, 2, 1), date(2021, 1, 1), None]),
        "flag": pa.array([False, False, True, None]),
    }
    assert compile_condition(condition).matches(columns, 4).tolist() == expected


def _config(params: dict, columns: list[str]) -> dict:
    return {
        "tables": [{"table_name_with_schema": "public.t", "transformations": [{"columns": columns, "params": params}]}]
    }


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"type": "int_sequence_generator", "step": 0}, "params.step: "),
        ({"type": "continuous_generator", "mean": 1}, "give mean and std together"),
        ({"type": "continuous_generator"}, "give mean and std (normal), or min and max (uniform)"),
        ({"type": "finance_generator", "column_templates": ["${iban}"], "iban_countries": ["XX"]}, "iban_countries"),
        ({"type": "finance_generator", "column_templates": ["${pin}"]}, "unknown placeholder ${pin}"),
        (
            {"type": "conditional_generator", "conditions": [{"condition": "a =", "params": {"type": "redaction"}}]},
            "params.conditions[0].condition: expected a value but the condition ended",
        ),
        (
            {
                "type": "conditional_generator",
                "conditions": [{"condition": "a = 1", "params": {"type": "frob"}}],
                "default": {"type": "passthrough"},
            },
            "params: conditions[0].params.type: unknown transformer 'frob'",
        ),
        ({"type": "json_pointer_transformer", "pointer": "email", "params": {"type": "redaction"}}, "starts with '/'"),
        ({"type": "json_pointer_transformer", "pointer": "/a"}, "give pointer and params together"),
    ],
)
def test_bad_params_name_their_path(params: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(_config(params, ["a"]))
    assert any(expected in problem for problem in raised.value.problems), raised.value.problems


def _sqlite(url: str, script: str) -> None:
    with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
        connection.executescript(script)


SCHEMA = """
CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL DEFAULT 'active',
    tier INTEGER NOT NULL DEFAULT (0),
    created TEXT DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE payments (id INTEGER PRIMARY KEY, account_id INTEGER REFERENCES accounts (id), note TEXT);
"""


def _fill(url: str) -> None:
    rows = ",".join(
        f"({i}, 'user{i}@mail.com', '{'vip' if i % 3 == 0 else 'basic'}', {i % 5}, NULL)" for i in range(1, 301)
    )
    _sqlite(url, SCHEMA + f"INSERT INTO accounts VALUES {rows}; INSERT INTO payments VALUES (1, 3, 'x'), (2, 4, 'y');")


def _rows(url: str, sql: str) -> list[tuple]:
    with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
        return connection.execute(sql).fetchall()


def test_a_run_with_sequences_conditions_and_defaults(sqlite_url_factory) -> None:
    source, target = sqlite_url_factory(), sqlite_url_factory()
    _fill(source)
    config = """
global_seed: 5
default_config: {insert_batch_size: 64}
tables:
  - table_name_with_schema: accounts
    mode: MASKING
    transformations:
      - columns: [email]
        params:
          type: conditional_generator
          conditions:
            - condition: "status = 'vip' AND tier > 1"
              params: {type: person_generator, column_templates: ["${email}"]}
          default: {type: string_sequence_generator, prefix: "user", suffix: "@test.example", digits: 4}
      - columns: [status, tier]
        params: {type: default_value}
      - columns: [created]
        params: {type: default_value, value: "2020-01-01"}
"""
    run_workflow(config, source, target)
    rows = _rows(target, "SELECT id, email, status, tier, created FROM accounts ORDER BY id")
    assert len(rows) == 300 and len({row[1] for row in rows}) == 300
    numbered = [row for row in rows if not (row[0] % 3 == 0 and row[0] % 5 > 1)]
    assert [row[1] for row in numbered] == [f"user{n:04d}@test.example" for n in range(1, len(numbered) + 1)]
    assert all(row[1].endswith(("@example.com", "@example.org", "@example.net")) for row in rows if row not in numbered)
    assert {row[2:] for row in rows} == {("active", 0, "2020-01-01")}


def test_computed_defaults_and_sequences_on_referenced_keys_are_refused(sqlite_url_factory) -> None:
    source, target = sqlite_url_factory(), sqlite_url_factory()
    _fill(source)
    masking = "tables: [{{table_name_with_schema: accounts, mode: MASKING, transformations: [{}]}}]"
    computed = masking.format("{columns: [created], params: {type: default_value}}")
    with pytest.raises(
        ConfigError, match=r"transformations\[0\] on created: default_value on column 'created'.*computed"
    ):
        run_workflow(computed, source, target)
    sequence = masking.format("{columns: [id], params: {type: int_sequence_generator}}")
    with pytest.raises(ConfigError, match="maps each value on its own"):
        run_workflow(sequence, source, target)
    unknown = """
tables:
  - table_name_with_schema: accounts
    mode: MASKING
    transformations:
      - columns: [email]
        params:
          type: conditional_generator
          conditions: [{condition: "plan = 'x'", params: {type: redaction}}]
          default: {type: passthrough}
"""
    with pytest.raises(ConfigError, match=r"transformations\[0\]: .*the conditions name 'plan', which is not a column"):
        run_workflow(unknown, source, target)
