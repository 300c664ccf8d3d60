"""The transformers on realistic 10,000-row columns: types, NULLs, determinism, masking, formats."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pytest
from faker import Faker

from governor.engine.config import TransformerParams, parse_config
from governor.engine.errors import ConfigError, SchemaError
from governor.engine.hashing import hash_array
from governor.engine.transformers import REGISTRY, ColumnContext, TransformContext, Transformer, build

ROWS = 10_000


def _faker() -> Faker:
    fake = Faker("en_US")
    fake.seed_instance(20240601)
    return fake


@pytest.fixture(scope="module")
def people() -> dict[str, pa.Array]:
    """Realistic columns, with a NULL every 97th row."""
    fake = _faker()

    def column(make, kind=pa.string()) -> pa.Array:
        return pa.array([None if i % 97 == 0 else make(i) for i in range(ROWS)], kind)

    return {
        "first_name": column(lambda i: fake.first_name()),
        "last_name": column(lambda i: fake.last_name()),
        "email": column(lambda i: f"{fake.user_name()}{i}@{fake.free_email_domain()}"),
        "phone": column(lambda i: fake.phone_number()),
        "street": column(lambda i: fake.street_address()),
        "city": column(lambda i: fake.city()),
        "uuid": column(lambda i: str(fake.uuid4())),
        "birth_date": column(lambda i: fake.date_of_birth(), pa.date32()),
        "created_at": column(lambda i: fake.date_time_between("-5y", "now", tzinfo=UTC), pa.timestamp("us", tz="UTC")),
        "balance": column(lambda i: Decimal(fake.pydecimal(5, 2, positive=True)), pa.decimal128(12, 2)),
        "quantity": column(lambda i: fake.random_int(1, 30_000), pa.int32()),
        "ratio": column(lambda i: fake.pyfloat(2, 4, positive=True), pa.float64()),
    }


def make(type_: str, columns: list[pa.Array], seed: int = 7, **options) -> Transformer:
    context = TransformContext(
        seed=seed, columns=tuple(ColumnContext(f"c{i}", column.type) for i, column in enumerate(columns))
    )
    return build(TransformerParams(type=type_, **options), context)


def run(type_: str, columns: list[pa.Array], seed: int = 7, **options) -> list[pa.Array]:
    return make(type_, columns, seed, **options).apply(columns)


# type, input columns, params: every masking transformer on the columns it is meant for.
MASKING_CASES = [
    ("format_preserving_hashing", ["email"], {}),
    ("format_preserving_hashing", ["phone"], {"filter": {"type": "last", "n": 4}}),
    ("unique_hashing", ["quantity"], {}),
    ("unique_hashing", ["email"], {}),
    ("unique_hashing", ["balance"], {}),
    (
        "person_generator",
        ["first_name", "last_name", "email", "phone"],
        {"column_templates": ["${first_name}", "${last_name}", "${email}", "${phone_national}"]},
    ),
    (
        "address_generator",
        ["street", "city"],
        {"column_templates": ["${street_address}", "${city}, ${state_abbr} ${postcode}"]},
    ),
    ("formatted_string_generator", ["phone"], {"pattern": r"\(\d{3}\) \d{3}-\d{4}"}),
    ("noising", ["balance", "quantity", "ratio", "birth_date", "created_at"], {}),
    ("noising", ["balance", "quantity"], {"noise_type": "ABSOLUTE", "scale": 5}),
    ("date_generator", ["birth_date", "created_at"], {"min": "1940-01-01", "max": "2010-12-31"}),
    ("uuid_generator", ["uuid"], {}),
    ("redaction", ["email"], {"keep_left": 2, "keep_right": 4}),
]


def _case_id(case: tuple) -> str:
    return f"{case[0]}-{'-'.join(case[1])}"


@pytest.mark.parametrize("case", MASKING_CASES, ids=_case_id)
def test_masking_transformers(case: tuple, people: dict[str, pa.Array]) -> None:
    type_, names, options = case
    columns = [people[name] for name in names]
    first = run(type_, columns, **options)
    again = run(type_, columns, **options)
    other_seed = run(type_, columns, seed=8, **options)
    for original, output, repeat, other in zip(columns, first, again, other_seed, strict=True):
        assert output.type == original.type and len(output) == ROWS
        # NULL stays NULL, and nothing else becomes NULL.
        assert output.is_null().to_pylist() == original.is_null().to_pylist()
        # Same seed: byte-identical; another seed: different values (redaction uses no randomness).
        assert output.equals(repeat)
        assert output.equals(other) if type_ == "redaction" else not output.equals(other)
        # No original value survives in its row.
        survivors = [
            a for a, b in zip(original.to_pylist(), output.to_pylist(), strict=True) if a is not None and a == b
        ]
        assert survivors == []


def test_masking_is_per_value_so_batches_and_tables_agree(people: dict[str, pa.Array]) -> None:
    emails = people["email"]
    whole = run("format_preserving_hashing", [emails])[0]
    halves = [run("format_preserving_hashing", [emails.slice(start, 5_000)])[0] for start in (0, 5_000)]
    assert pa.concat_arrays(halves).equals(whole)
    # A key of another integer width (an int32 parent, an int64 child) maps to the same values.
    keys = pa.array(np.arange(1, 5_000, dtype=np.int32))
    assert run("unique_hashing", [keys])[0].cast(pa.int64()).equals(run("unique_hashing", [keys.cast(pa.int64())])[0])


def test_hashes_are_the_same_in_another_process() -> None:
    values = ["alice@example.com", "", "Zoë", "x" * 300]
    here = hash_array(pa.array(values), 12345).tolist()
    code = (
        "import pyarrow as pa; from governor.engine.hashing import hash_array; "
        f"print(hash_array(pa.array({values!r}), 12345).tolist())"
    )
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert there.strip() == str(here)
    assert len(set(here)) == len(values)
    assert hash_array(pa.array(values), 12346).tolist() != here


def test_registry_has_every_tdk_transformer() -> None:
    parse_config("{}")  # loads the registry
    assert {
        "passthrough",
        "null_generator",
        "constant_string",
        "constant_numeric",
        "constant_date",
        "constant_boolean",
        "format_preserving_hashing",
        "unique_hashing",
        "person_generator",
        "address_generator",
        "categorical_generator",
        "formatted_string_generator",
        "noising",
        "date_generator",
        "uuid_generator",
        "redaction",
    } <= set(REGISTRY)


def test_constants_fill_every_row(people: dict[str, pa.Array]) -> None:
    assert run("passthrough", [people["email"]])[0] is people["email"]
    assert run("null_generator", [people["email"]])[0].null_count == ROWS
    assert set(run("constant_string", [people["city"]], value="Nowhere")[0].to_pylist()) == {"Nowhere"}
    assert set(run("constant_numeric", [people["balance"]], value="12.5")[0].to_pylist()) == {Decimal("12.50")}
    assert set(run("constant_numeric", [people["quantity"]], value=3)[0].to_pylist()) == {3}
    dates = run("constant_date", [people["birth_date"], people["created_at"]], value="2001-02-03")
    assert set(dates[0].to_pylist()) == {date(2001, 2, 3)}
    assert set(dates[1].to_pylist()) == {datetime(2001, 2, 3, tzinfo=UTC)}
    assert run("constant_boolean", [pa.array([True, None])], value=False)[0].to_pylist() == [False, False]


def test_constants_that_do_not_fit_the_column_fail_before_any_row() -> None:
    with pytest.raises(SchemaError, match=r"constant_numeric: value Decimal\('1.5'\) does not fit column 'c0'"):
        make("constant_numeric", [pa.array([1], pa.int16())], value=1.5)
    with pytest.raises(SchemaError, match="does not fit column 'c0'"):
        make("constant_numeric", [pa.array([1], pa.int16())], value=100_000)
    with pytest.raises(SchemaError, match="redaction works on text columns; column 'c0' is int64"):
        make("redaction", [pa.array([1])])
    with pytest.raises(SchemaError, match="NOT NULL"):
        build(
            TransformerParams(type="null_generator"),
            TransformContext(seed=1, columns=(ColumnContext("c0", pa.string(), nullable=False),)),
        )


@pytest.mark.parametrize("kind", [pa.int16(), pa.int32(), pa.int64()])
@pytest.mark.parametrize("count", [10_000, 100_000])
def test_unique_hashing_keeps_integers_unique_and_in_range(kind: pa.DataType, count: int) -> None:
    info = np.iinfo(kind.to_pandas_dtype())
    if count > info.max - info.min:
        values = np.arange(info.min, info.max + 1, dtype=np.int64)  # every int16
    else:
        rng = np.random.default_rng(count)
        edges = [info.min, info.max, 0, -1]
        pool = np.setdiff1d(np.unique(rng.integers(info.min, info.max, count * 2)), edges)
        values = np.concatenate([edges, rng.permutation(pool)[: count - len(edges)]])
    output = run("unique_hashing", [pa.array(values, kind)])[0].to_numpy().astype(np.int64)
    assert len(np.unique(output)) == len(values)
    assert output.min() >= info.min and output.max() <= info.max
    assert not (output == values).any()
    assert ((output < 0) == (values < 0)).all()


@pytest.mark.parametrize("count", [10_000, 100_000])
def test_unique_hashing_keeps_strings_unique(count: int) -> None:
    values = pa.array([f"user{i}@example.com" for i in range(count)])
    output = run("unique_hashing", [values])[0]
    assert len(output.unique()) == count
    assert all(re.fullmatch(r"[0-9A-Za-z]{11}", token) for token in output.to_pylist()[:1000])


def test_format_preserving_hashing_keeps_each_character_class(people: dict[str, pa.Array]) -> None:
    for name in ("email", "phone", "street"):
        original = people[name].to_pylist()
        masked = run("format_preserving_hashing", [people[name]])[0].to_pylist()
        for before, after in zip(original, masked, strict=True):
            if before is None:
                continue
            assert len(after) == len(before)
            for a, b in zip(before, after, strict=True):
                if a.isascii() and a.isdigit():
                    assert b.isdigit() and b != a
                elif a.isascii() and a.isupper():
                    assert b.isupper() and b.isascii() and b != a
                elif a.isascii() and a.islower():
                    assert b.islower() and b.isascii() and b != a
                else:
                    assert b == a  # punctuation, spaces, '@', '.' (non-ASCII: test_transformers_unicode.py)
    # Masked emails are unrelated to one another, not just to their originals.
    assert not (set(original) & set(masked)) - {None}


def test_format_preserving_hashing_filter_hashes_only_the_last_characters() -> None:
    masked = run("format_preserving_hashing", [pa.array(["+1 555-123-4567"])], filter={"type": "last", "n": 4})
    value = masked[0][0].as_py()
    assert value.startswith("+1 555-123-") and re.fullmatch(r"\d{4}", value[-4:]) and value[-4:] != "4567"


def test_person_generator_rows_are_coherent(people: dict[str, pa.Array]) -> None:
    columns = [people["first_name"], people["last_name"], people["email"], people["phone"]]
    templates = ["${first_name}", "${last_name}", "${email}", "${phone_international}"]
    first, last, email, phone = run("person_generator", columns, column_templates=templates)
    for f, surname, e, p in zip(first.to_pylist(), last.to_pylist(), email.to_pylist(), phone.to_pylist(), strict=True):
        if f is None:
            continue
        local = e.split("@")[0]
        simple_last = re.sub(r"[^a-z0-9]", "", surname.lower())
        assert re.fullmatch(r"[a-z0-9._]+@example\.(com|org|net)", e)
        assert simple_last in local and local[0] == re.sub(r"[^a-z0-9]", "", f.lower())[0]
        assert re.fullmatch(r"\+1 [2-9]\d\d-[2-9]\d\d-\d{4}", p)
    assert len(set(first.to_pylist())) > 300 and len(set(email.to_pylist())) > ROWS * 0.9


def test_person_generator_templates_mix_text_and_placeholders(people: dict[str, pa.Array]) -> None:
    (output,) = run(
        "person_generator", [people["email"]], column_templates=["${last_name}, ${first_name} <${username}@corp.test>"]
    )
    assert all(re.fullmatch(r"[^,]+, [^<]+ <[a-z0-9._]+@corp\.test>", v) for v in output.to_pylist() if v)


def test_address_generator_city_state_and_postcode_belong_together(people: dict[str, pa.Array]) -> None:
    from faker.providers.address.en_US import Provider as Address

    templates = ["${city}", "${state_abbr}", "${postcode}", "${full_address}"]
    columns = [people["city"], people["street"], people["phone"], people["email"]]
    city, state, postcode, full = (a.to_pylist() for a in run("address_generator", columns, column_templates=templates))
    for c, s, p, f in zip(city, state, postcode, full, strict=True):
        if c is None:
            continue
        low, high = Address.states_postcode[s]
        assert re.fullmatch(r"\d{5}", p) and low <= int(p) <= high
        assert f.endswith(f", {c}, {s} {p}") and re.match(r"\d+ \S", f)


def test_categorical_generator_respects_weights(people: dict[str, pa.Array]) -> None:
    (output,) = run(
        "categorical_generator",
        [people["city"]],
        categories={"value_source": "PROVIDED", "values": {"gold": 0.1, "silver": 0.3, "bronze": 0.6}},
    )
    counts = Counter(v for v in output.to_pylist() if v is not None)
    total = sum(counts.values())
    for category, weight in {"gold": 0.1, "silver": 0.3, "bronze": 0.6}.items():
        assert abs(counts[category] / total - weight) < 0.02
    assert output.null_count == people["city"].null_count
    (numbers,) = run("categorical_generator", [people["quantity"]], categories={"values": [1, 2]}, probabilities=[1, 3])
    assert numbers.type == pa.int32() and set(numbers.drop_null().to_pylist()) == {1, 2}


@pytest.mark.parametrize(
    "pattern",
    [
        r"\+44[0-9]{10}",
        r"[A-Z]{2}\d{2} ?[A-Z0-9]{4}",
        r"(ab|cd|ef)+-x{0,3}",
        r"[^a-z]{3,5}\.\w+",
        r"(?:[a-f0-9]{4}-){2}[a-f0-9]{4}",
        r"^INV-\d{6}$",
        r"é[ñü]{2}",
    ],
)
def test_formatted_string_generator_fully_matches(pattern: str, people: dict[str, pa.Array]) -> None:
    (output,) = run("formatted_string_generator", [people["email"]], pattern=pattern)
    values = [v for v in output.to_pylist() if v is not None]
    assert len(values) == ROWS - people["email"].null_count
    assert all(re.fullmatch(pattern, value) for value in values)
    assert len(set(values)) > (3 if pattern.startswith("é") else 100)


def test_formatted_string_generator_casts_to_numeric_columns(people: dict[str, pa.Array]) -> None:
    (output,) = run("formatted_string_generator", [people["quantity"]], pattern=r"[1-9]\d{3}")
    assert output.type == pa.int32() and all(1000 <= v <= 9999 for v in output.drop_null().to_pylist())


def test_noising_stays_within_its_range(people: dict[str, pa.Array]) -> None:
    balance, birth = run("noising", [people["balance"], people["birth_date"]], scale=0.1, max_shift_days=10)
    for before, after in zip(people["balance"].to_pylist(), balance.to_pylist(), strict=True):
        if before is not None:
            assert abs(after - before) <= abs(before) * Decimal("0.1") + Decimal("0.01")
    for before, after in zip(people["birth_date"].to_pylist(), birth.to_pylist(), strict=True):
        if before is not None:
            assert 1 <= abs((after - before).days) <= 10


def test_date_generator_stays_within_min_and_max(people: dict[str, pa.Array]) -> None:
    text = pa.array([f"2020-01-{d:02d}" for d in range(1, 29)] * 10)
    dates, stamps, texts = run(
        "date_generator", [people["birth_date"], people["created_at"], text], min="1990-01-01", max="1990-12-31"
    )
    assert all(date(1990, 1, 1) <= v <= date(1990, 12, 31) for v in dates.drop_null().to_pylist())
    low, high = datetime(1990, 1, 1, tzinfo=UTC), datetime(1990, 12, 31, tzinfo=UTC)
    assert all(low <= v <= high for v in stamps.drop_null().to_pylist())
    assert all(re.fullmatch(r"1990-\d\d-\d\d", v) for v in texts.to_pylist())


def test_uuid_generator_makes_valid_version_4_uuids(people: dict[str, pa.Array]) -> None:
    (output,) = run("uuid_generator", [people["uuid"]])
    pattern = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
    values = output.drop_null().to_pylist()
    assert all(re.fullmatch(pattern, v) for v in values) and len(set(values)) == len(values)
    (raw,) = run("uuid_generator", [pa.array([b"\x00" * 16, None], pa.binary())])
    assert len(raw[0].as_py()) == 16 and raw[1].as_py() is None


def test_redaction_keeps_the_ends_and_the_length() -> None:
    (output,) = run("redaction", [pa.array(["4111111111111111", "abc", None, "Zoë-Ann"])], keep_left=1, keep_right=4)
    assert output.to_pylist() == ["4xxxxxxxxxxx1111", "xxx", None, "Zxx-Ann"]


def _config(params: dict, columns: list[str]) -> dict:
    return {
        "tables": [{"table_name_with_schema": "public.t", "transformations": [{"columns": columns, "params": params}]}]
    }


@pytest.mark.parametrize(
    ("params", "columns", "expected"),
    [
        (
            {"type": "person_generator", "column_templates": ["${first_name}", "${last_name}"]},
            ["a", "b", "c"],
            "tables[0].transformations[0].params: column_templates has 2 entries but 3 columns are listed",
        ),
        (
            {"type": "person_generator", "column_templates": ["${first_name}", "${nickname}"]},
            ["a", "b"],
            "tables[0].transformations[0].params.column_templates[1]: unknown placeholder ${nickname}",
        ),
        (
            {"type": "person_generator", "column_templates": ["${first_name}"], "locale": "xx_YY"},
            ["a"],
            "tables[0].transformations[0].params.locale: unknown locale 'xx_YY'",
        ),
        ({"type": "redaction", "keep_left": -1}, ["a"], "tables[0].transformations[0].params.keep_left: "),
        ({"type": "redaction", "keep": 2}, ["a"], "tables[0].transformations[0].params.keep: unknown parameter"),
        ({"type": "constant_string"}, ["a"], "tables[0].transformations[0].params.value: Field required"),
        ({"type": "constant_numeric", "value": "ten"}, ["a"], "tables[0].transformations[0].params.value: "),
        (
            {"type": "formatted_string_generator", "pattern": "(a"},
            ["a"],
            "params.pattern: not a valid regular expression",
        ),
        ({"type": "formatted_string_generator", "pattern": r"(a)\1"}, ["a"], "params.pattern: cannot generate"),
        (
            {"type": "categorical_generator", "categories": {"values": ["a", "b"]}, "probabilities": [1]},
            ["a"],
            "params: probabilities has 1 entries but there are 2 categories",
        ),
        ({"type": "noising", "noise_type": "GAUSSIAN"}, ["a"], "tables[0].transformations[0].params.noise_type: "),
        ({"type": "date_generator", "min": "2020-01-01", "max": "2019-01-01"}, ["a"], "min must be before max"),
        ({"type": "format_preserving_hashing", "filter": {"type": "middle", "n": 2}}, ["a"], "params.filter.type: "),
        ({"type": "frobnicate"}, ["a"], "tables[0].transformations[0].params.type: unknown transformer 'frobnicate'"),
    ],
)
def test_bad_params_name_their_path(params: dict, columns: list[str], expected: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(_config(params, columns))
    assert any(expected in problem for problem in raised.value.problems), raised.value.problems


def test_good_tdk_style_config_parses() -> None:
    config = parse_config(
        """
tables:
  - table_name_with_schema: public.customers
    mode: MASKING
    transformations:
      - columns: [first_name, last_name, email, phone]
        params:
          type: person_generator
          column_templates: ["${first_name}", "${last_name}", "${email}", "${phone_national}"]
          locale: fr
      - columns: [status]
        params:
          type: categorical_generator
          categories:
            type: STRING
            value_source: PROVIDED
            values: {"Active": 0.65, "Closed": 0.35}
      - columns: [phone2]
        params: {type: format_preserving_hashing, filter: {type: last, n: 5}}
"""
    )
    assert len(config.tables[0].transformations) == 3


def test_timestamps_shift_by_microseconds_not_days() -> None:
    moment = datetime(2020, 5, 1, 12, tzinfo=UTC)
    (output,) = run("noising", [pa.array([moment] * 100, pa.timestamp("us", tz="UTC"))], max_shift_days=1)
    assert all(timedelta(0) < abs(v - moment) <= timedelta(days=1) for v in output.to_pylist())
