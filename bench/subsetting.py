"""Subsetting benchmark: ``governor transform`` at target_ratio 0.1 on a six-table PostgreSQL schema.

A throwaway server (started here) holds regions <- customers <- accounts <- transactions, with
products and transaction lines (transactions x products, 1,000,000 rows, the largest table); the
schema is filled in SQL, then subset at 0.1 into a second database of the same server. Printed:
the rows of each table before and after, the seconds of the run and its rows per second (rows
read from the source), and the number of orphans an anti-join finds per foreign key (must be 0):

    python bench/subsetting.py [--lines 1000000] [--ratio 0.1]

It exits 0 when every foreign key holds, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from governor.engine.runner import run_workflow  # the repository root is importable from here on
from tests.servers import PostgresServer

SCHEMA = """
CREATE TABLE regions (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE customers (id bigint PRIMARY KEY, region_id int NOT NULL REFERENCES regions(id), name text NOT NULL);
CREATE TABLE accounts (id bigint PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers(id), opened date);
CREATE TABLE products (id int PRIMARY KEY, name text NOT NULL, price numeric(10, 2));
CREATE TABLE transactions (
    id bigint PRIMARY KEY, account_id bigint NOT NULL REFERENCES accounts(id), at timestamptz NOT NULL
);
CREATE TABLE transaction_lines (
    id bigint PRIMARY KEY,
    transaction_id bigint NOT NULL REFERENCES transactions(id),
    product_id int NOT NULL REFERENCES products(id),
    quantity int NOT NULL
);
"""

# Sizes relative to the lines: 4 lines per transaction, 5 transactions per account, 2 accounts per customer.
FILL = """
INSERT INTO regions SELECT g, 'region ' || g FROM generate_series(1, 20) g;
INSERT INTO customers SELECT g, 1 + mod(g, 20), 'customer ' || g FROM generate_series(1, {customers}) g;
INSERT INTO accounts SELECT g, 1 + mod(g, {customers}), DATE '2020-01-01' + mod(g, 1500)
    FROM generate_series(1, {accounts}) g;
INSERT INTO products SELECT g, 'product ' || g, mod(g * 7, 10000) / 100.0 FROM generate_series(1, 500) g;
INSERT INTO transactions SELECT g, 1 + mod(g * 7919, {accounts}), TIMESTAMPTZ '2024-01-01' + g * INTERVAL '1 minute'
    FROM generate_series(1, {transactions}) g;
INSERT INTO transaction_lines SELECT g, 1 + (g - 1) / 4, 1 + mod(g * 31, 500), 1 + mod(g, 5)
    FROM generate_series(1, {lines}) g;
ANALYZE;
"""

TABLES = ("regions", "customers", "accounts", "products", "transactions", "transaction_lines")
FOREIGN_KEYS = (
    ("customers", "region_id", "regions"),
    ("accounts", "customer_id", "customers"),
    ("transactions", "account_id", "accounts"),
    ("transaction_lines", "transaction_id", "transactions"),
    ("transaction_lines", "product_id", "products"),
)


def counts(conninfo: str) -> dict[str, int]:
    with psycopg.connect(conninfo) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}  # type: ignore[index]


def orphans(conninfo: str) -> dict[str, int]:
    with psycopg.connect(conninfo) as conn:
        return {
            f"{child}.{column}": conn.execute(
                f"SELECT count(*) FROM {child} c LEFT JOIN {parent} p ON p.id = c.{column} WHERE p.id IS NULL"
            ).fetchone()[0]  # type: ignore[index]
            for child, column, parent in FOREIGN_KEYS
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000, help="rows of the largest table")
    parser.add_argument("--ratio", type=float, default=0.1)
    args = parser.parse_args()
    transactions = args.lines // 4
    accounts = max(1, transactions // 5)
    customers = max(1, accounts // 2)

    with PostgresServer() as server:
        source, target = server.create_database("source"), server.create_database("target")
        started = time.perf_counter()
        with psycopg.connect(server.conninfo("source"), autocommit=True) as conn:
            conn.execute(SCHEMA)
            conn.execute(
                FILL.format(customers=customers, accounts=accounts, transactions=transactions, lines=args.lines)
            )
        print(f"filled the source in {time.perf_counter() - started:.1f} s")
        before = counts(server.conninfo("source"))

        config = f"global_seed: 1\ndefault_config:\n  target_ratio: {args.ratio}\ntable_truncation_mode: TRUNCATE\n"
        started = time.perf_counter()
        report = run_workflow(config, source, target)
        seconds = time.perf_counter() - started
        after = counts(server.conninfo("target"))
        found = orphans(server.conninfo("target"))

    read = sum(t.rows_read for t in report.tables)
    print(f"{'table':<20}{'source':>12}{'target':>12}{'ratio':>8}")
    for table in TABLES:
        print(f"{table:<20}{before[table]:>12,}{after[table]:>12,}{after[table] / before[table]:>8.3f}")
    written = sum(after.values())
    print(f"subset at {args.ratio} in {seconds:.2f} s: {read / seconds:,.0f} source rows/s, {written:,} rows written")
    print(f"orphans per foreign key: {found}")
    return 0 if not any(found.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
