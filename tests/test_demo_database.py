"""The demo database: sizes, referential integrity, a real hierarchy, determinism and idempotence.

Everything is checked by querying the built database (SQLite file and real PostgreSQL), with the
foreign keys reflected from the database itself rather than taken from the generator's metadata.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from faker.providers.person.en_US import Provider as PersonProvider
from sqlalchemy import create_engine, inspect, select, text

from governor.demo import DEMO_MASKING_CONFIG, DEMO_TABLES, build_demo_database
from governor.engine.config import parse_config
from governor.engine.errors import ConnectionFailed
from governor.engine.runner import run_workflow
from tests.servers import free_port

EXPECTED_FOREIGN_KEYS = {
    ("addresses", ("customer_id",), "customers", ("id",)),
    ("orders", ("customer_id",), "customers", ("id",)),
    ("orders", ("shipping_address_id",), "addresses", ("id",)),
    ("order_items", ("order_id",), "orders", ("id",)),
    ("order_items", ("product_id",), "products", ("id",)),
    ("payments", ("order_id",), "orders", ("id",)),
    ("employees", ("manager_id",), "employees", ("id",)),
}


@pytest.fixture(params=["sqlite", "postgresql"])
def url_factory(request: pytest.FixtureRequest) -> Callable[[], str]:
    """A factory of new empty database URLs, once for SQLite and once for PostgreSQL."""
    return request.getfixturevalue("sqlite_url_factory" if request.param == "sqlite" else "pg_url_factory")


@pytest.fixture
def demo_url(url_factory: Callable[[], str]) -> str:
    url = url_factory()
    build_demo_database(url)
    return url


def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql))]
    finally:
        engine.dispose()


def execute(url: str, sql: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text(sql))
    finally:
        engine.dispose()


def dump(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every demo row, read through the typed tables so that SQLite and PostgreSQL compare equal."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return {
                table.name: [tuple(row) for row in connection.execute(select(table).order_by(table.c.id))]
                for table in DEMO_TABLES
            }
    finally:
        engine.dispose()


def test_counts_are_real_and_scale(url_factory: Callable[[], str]) -> None:
    url = url_factory()
    counts = build_demo_database(url)
    assert set(counts) == {table.name for table in DEMO_TABLES}
    for table, rows in counts.items():
        assert query(url, f"SELECT count(*) FROM {table}") == [(rows,)]
    assert sum(counts.values()) >= 10_000
    assert counts["customers"] == 1_000

    small = build_demo_database(url_factory(), scale=0.5)
    assert small["customers"] == 500
    assert small["orders"] == 1_500
    assert 0.4 < sum(small.values()) / sum(counts.values()) < 0.6


def test_every_foreign_key_resolves(demo_url: str) -> None:
    engine = create_engine(demo_url)
    try:
        inspector = inspect(engine)
        reflected = {
            (table, tuple(fk["constrained_columns"]), fk["referred_table"], tuple(fk["referred_columns"]))
            for table in inspector.get_table_names()
            for fk in inspector.get_foreign_keys(table)
        }
    finally:
        engine.dispose()
    assert reflected == EXPECTED_FOREIGN_KEYS
    for table, (column,), parent, (parent_column,) in sorted(reflected):
        orphans = query(
            demo_url,
            f"SELECT count(*) FROM {table} c LEFT JOIN {parent} p ON c.{column} = p.{parent_column} "
            f"WHERE c.{column} IS NOT NULL AND p.{parent_column} IS NULL",
        )
        assert orphans == [(0,)], f"{table}.{column} -> {parent}.{parent_column}"


def test_rows_tell_a_consistent_story(demo_url: str) -> None:
    def count(sql: str) -> int:
        return query(demo_url, f"SELECT count(*) FROM {sql}")[0][0]

    # Orders ship to one of their customer's own addresses, after the customer signed up.
    assert (
        count(
            "orders o JOIN addresses a ON a.id = o.shipping_address_id JOIN customers c ON c.id = o.customer_id "
            "WHERE a.customer_id <> o.customer_id OR o.ordered_at < c.created_at"
        )
        == 0
    )
    # A payment pays its order's items to the cent (SQLite keeps numerics as floats, hence no
    # exact comparison); pending and cancelled orders are unpaid; only cards have last digits.
    assert (
        count(
            "payments p JOIN (SELECT order_id, sum(quantity * unit_price) AS total FROM order_items "
            "GROUP BY order_id) t ON t.order_id = p.order_id WHERE abs(t.total - p.amount) > 0.001"
        )
        == 0
    )
    assert count("payments p JOIN orders o ON o.id = p.order_id WHERE o.status IN ('pending', 'cancelled')") == 0
    assert count("payments WHERE (method = 'card') <> (card_last4 IS NOT NULL)") == 0
    # Every order has items, and no order lists a product twice.
    assert count("orders WHERE id NOT IN (SELECT order_id FROM order_items)") == 0
    assert count("(SELECT DISTINCT order_id, product_id FROM order_items) d") == count("order_items")


def test_people_look_real(demo_url: str) -> None:
    customers = query(demo_url, "SELECT first_name, last_name, email, phone FROM customers")
    assert len({email for _, _, email, _ in customers}) == len(customers)
    first_names, last_names = set(PersonProvider.first_names), set(PersonProvider.last_names)
    phone = re.compile(r"(\+1-)?\(?\d{3}\)?[ .-]\d{3}[.-]\d{4}")
    for first, last, email, number in customers:
        assert first in first_names and last in last_names
        assert re.fullmatch(r"[a-z]+\.?[a-z]+\d+@[a-z.]+", email) and last.lower() in email
        assert phone.fullmatch(number), number
    assert len({first for first, *_ in customers}) > 200
    assert all(re.fullmatch(r"\d{5}", code) for (code,) in query(demo_url, "SELECT postcode FROM addresses"))
    streets = query(demo_url, "SELECT street FROM addresses")
    assert all(re.fullmatch(r"\d+ [A-Z][a-z]+ [A-Z][a-z]+", street) for (street,) in streets)
    # Categories are skewed: the most frequent is several times as frequent as the rarest.
    frequencies = [n for _, n in query(demo_url, "SELECT category, count(*) FROM products GROUP BY category")]
    assert len(frequencies) >= 5 and max(frequencies) >= 3 * min(frequencies)


def test_employees_form_one_tree(demo_url: str) -> None:
    managers = dict(query(demo_url, "SELECT id, manager_id FROM employees"))
    roots = [employee for employee, manager in managers.items() if manager is None]
    assert len(roots) == 1
    depth_of = {}
    for employee in managers:
        seen, current = [], employee
        while current is not None:
            assert current in managers, f"dangling manager {current}"
            assert current not in seen, f"cycle through {seen}"
            seen.append(current)
            current = managers[current]
        depth_of[employee] = len(seen) - 1
    assert max(depth_of.values()) >= 3
    reports = [m for m in managers.values() if m is not None]
    assert len(set(reports)) > 10  # many managers, not a star around the root


def test_same_seed_same_data_on_every_database(
    url_factory: Callable[[], str], sqlite_url_factory: Callable[[], str]
) -> None:
    first, second, other_seed = url_factory(), sqlite_url_factory(), url_factory()
    build_demo_database(first, seed=11)
    build_demo_database(second, seed=11)
    build_demo_database(other_seed, seed=12)
    assert dump(first) == dump(second)
    different = dump(other_seed)
    assert different["customers"] != dump(first)["customers"]


def test_existing_demo_is_reused_unless_replaced(url_factory: Callable[[], str]) -> None:
    url = url_factory()
    counts = build_demo_database(url)
    execute(url, "UPDATE customers SET first_name = 'Kept' WHERE id = 1")

    assert build_demo_database(url) == counts
    assert query(url, "SELECT first_name FROM customers WHERE id = 1") == [("Kept",)]

    assert build_demo_database(url, replace=True) == counts
    assert query(url, "SELECT first_name FROM customers WHERE id = 1") != [("Kept",)]


def test_half_built_demo_is_rebuilt(url_factory: Callable[[], str]) -> None:
    url = url_factory()
    counts = build_demo_database(url)
    execute(url, "DELETE FROM payments")
    assert build_demo_database(url) == counts
    assert query(url, "SELECT count(*) FROM payments") == [(counts["payments"],)]


def test_bad_scale_is_refused_before_touching_the_database(sqlite_url_factory: Callable[[], str]) -> None:
    url = sqlite_url_factory()
    counts = build_demo_database(url)
    with pytest.raises(ValueError, match="scale must be positive"):
        build_demo_database(url, scale=0, replace=True)
    assert build_demo_database(url) == counts


def test_unreachable_database_gives_one_line_without_password() -> None:
    url = f"postgresql://governor:s3cret@127.0.0.1:{free_port()}/demo"
    with pytest.raises(ConnectionFailed) as failure:
        build_demo_database(url)
    message = str(failure.value)
    assert "s3cret" not in message and "\n" not in message
    assert message.startswith("cannot build the demo database at postgresql+psycopg://governor:***@127.0.0.1:")
    with pytest.raises(ConnectionFailed, match="not a database URL"):
        build_demo_database("demo.db")


# Masked columns whose every value must change; addresses.state is masked too, but with some fifty
# states a fake address often lies in the real one's state.
MASKED_COLUMNS = {
    "customers": ("first_name", "last_name", "email", "phone", "birth_date"),
    "addresses": ("street", "city", "state", "postcode"),
    "payments": ("card_last4",),
    "employees": ("first_name", "last_name", "email", "phone", "salary"),
}


def test_demo_masking_config_masks_people_and_keeps_the_rest(demo_url: str, url_factory: Callable[[], str]) -> None:
    config = parse_config(DEMO_MASKING_CONFIG)
    assert {table.table_name_with_schema for table in config.tables} == set(MASKED_COLUMNS)
    target = url_factory()
    run_workflow(config, demo_url, target)

    before, after = dump(demo_url), dump(target)
    for table in DEMO_TABLES:
        columns = [column.name for column in table.columns]
        masked = MASKED_COLUMNS.get(table.name, ())
        assert len(after[table.name]) == len(before[table.name])
        for name in columns:
            i = columns.index(name)
            pairs = [(old[i], new[i]) for old, new in zip(before[table.name], after[table.name], strict=True)]
            if name not in masked:
                assert all(old == new for old, new in pairs), f"{table.name}.{name} changed"
            elif (table.name, name) != ("addresses", "state"):
                kept = sum(old == new for old, new in pairs if old is not None)
                assert kept == 0, f"{kept} values of {table.name}.{name} survived masking"
    for table, (column,), parent, (parent_column,) in EXPECTED_FOREIGN_KEYS:
        orphans = query(
            target,
            f"SELECT count(*) FROM {table} c LEFT JOIN {parent} p ON c.{column} = p.{parent_column} "
            f"WHERE c.{column} IS NOT NULL AND p.{parent_column} IS NULL",
        )
        assert orphans == [(0,)]
