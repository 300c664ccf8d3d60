"""Numeric transformers on SQL numerics without a precision, which are read as their decimal text,
through whole runs against a real SQLite file and a real PostgreSQL server."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
import sqlalchemy as sa

from governor.engine.errors import ConfigError
from governor.engine.runner import run_workflow

ROWS = 500

MASK_PAYMENTS = """
default_config: {mode: KEEP, insert_batch_size: 128}
tables:
  - table_name_with_schema: payments
    mode: MASKING
    transformations:
      - columns: [amount]
        params: {type: noising, noise_type: RELATIVE, scale: 0.1}
      - columns: [fee]
        params: {type: constant_numeric, value: "2.50"}
"""


def amount(i: int) -> str | None:
    """Two decimals each (the last one never 0), either sign; every 10th is NULL."""
    return None if i % 10 == 0 else f"{'-' if i % 3 == 0 else ''}{i}.{i % 9}3"


def build_payments(url: str, numeric: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"CREATE TABLE payments (id INTEGER PRIMARY KEY, amount {numeric}, fee {numeric}, note VARCHAR(50))"
        )
        conn.execute(
            sa.text("INSERT INTO payments VALUES (:id, :amount, :fee, :note)"),
            [{"id": i, "amount": amount(i), "fee": amount(i + 1), "note": f"n{i}"} for i in range(1, ROWS + 1)],
        )
    engine.dispose()


def rows(url: str) -> list[tuple[int, Decimal | None, Decimal | None]]:
    """(id, amount, fee) as exact decimals (SQLite hands its NUMERIC values back as floats)."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        result = conn.exec_driver_sql("SELECT id, amount, fee FROM payments ORDER BY id").all()
    engine.dispose()
    return [tuple(None if v is None else Decimal(str(v)) for v in row) for row in result]


@pytest.mark.parametrize(("factory", "numeric"), [("pg_url_factory", "numeric"), ("sqlite_url_factory", "NUMERIC")])
def test_noising_and_constant_numeric_mask_numerics_without_precision(
    request: pytest.FixtureRequest, factory: str, numeric: str
) -> None:
    make: Callable[[], str] = request.getfixturevalue(factory)
    source, target = make(), make()
    build_payments(source, numeric)
    report = run_workflow(MASK_PAYMENTS, source, target)
    assert [t.rows_written for t in report.tables] == [ROWS]
    before, after = rows(source), rows(target)
    assert [row[0] for row in after] == list(range(1, ROWS + 1))
    for (_, old, _), (_, new, fee) in zip(before, after, strict=True):
        assert fee == Decimal("2.5")
        if old is None:
            assert new is None
            continue
        assert new != old
        assert abs(new - old) <= abs(old) * Decimal("0.1") + Decimal("0.005")  # rounded back to 2 decimals
        assert new.as_tuple().exponent >= -2


@pytest.mark.parametrize("params", ["{type: noising}", "{type: constant_numeric, value: 1}"])
def test_numeric_transformers_still_refuse_text_columns(sqlite_url_factory: Callable[[], str], params: str) -> None:
    source, target = sqlite_url_factory(), sqlite_url_factory()
    build_payments(source, "NUMERIC")
    config = f"""
default_config: {{mode: KEEP}}
tables:
  - table_name_with_schema: payments
    mode: MASKING
    transformations:
      - columns: [note]
        params: {params}
"""
    with pytest.raises(ConfigError, match=r"works on .* columns; column 'note' is string"):
        run_workflow(config, source, target)


MASK_INVOICE_NUMBERS = """
default_config: {mode: KEEP}
tables:
  - table_name_with_schema: invoices
    mode: MASKING
    transformations:
      - columns: [number]
        params: {type: unique_hashing}
"""


@pytest.mark.parametrize(("factory", "numeric"), [("pg_url_factory", "numeric"), ("sqlite_url_factory", "NUMERIC")])
def test_unique_hashing_maps_a_numeric_key_to_distinct_numbers_its_references_follow(
    request: pytest.FixtureRequest, factory: str, numeric: str
) -> None:
    make: Callable[[], str] = request.getfixturevalue(factory)
    source, target = make(), make()
    numbers = [f"{i}.{i % 7}5" if i % 2 else str(i) for i in range(1, ROWS + 1)]
    engine = sa.create_engine(source)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE invoices (number {numeric} PRIMARY KEY, label VARCHAR(20))")
        conn.exec_driver_sql(
            f"CREATE TABLE lines (id INTEGER PRIMARY KEY, invoice {numeric} REFERENCES invoices (number))"
        )
        conn.execute(sa.text("INSERT INTO invoices VALUES (:n, :label)"), [{"n": n, "label": n} for n in numbers])
        conn.execute(
            sa.text("INSERT INTO lines VALUES (:id, :invoice)"),
            [{"id": i, "invoice": None if i % 10 == 0 else numbers[(i * 7) % ROWS]} for i in range(ROWS)],
        )
    engine.dispose()
    run_workflow(MASK_INVOICE_NUMBERS, source, target)
    engine = sa.create_engine(target)
    with engine.connect() as conn:
        invoices = conn.exec_driver_sql("SELECT number, label FROM invoices").all()
        lines = conn.exec_driver_sql(
            "SELECT l.id, i.label FROM lines l LEFT JOIN invoices i ON i.number = l.invoice ORDER BY l.id"
        ).all()
    engine.dispose()
    assert len({Decimal(str(number)) for number, _ in invoices}) == ROWS
    for number, label in invoices:  # the label is the number it had
        assert Decimal(str(number)) != Decimal(label) and len(str(number)) == len(label)
    # Every line still belongs to the invoice it belonged to, found by its masked number.
    assert [label for _, label in lines] == [None if i % 10 == 0 else numbers[(i * 7) % ROWS] for i in range(ROWS)]
