"""A demo e-commerce database with realistic fake people, for the demo, the tests and benchmarks.

The schema has what masking and subsetting must get right in practice: personal data spread over
several tables, a unique email, foreign keys several levels deep (order items -> orders ->
addresses -> customers), categorical columns with skewed frequencies, money in numeric columns,
and a self-referencing manager hierarchy. It is written through SQLAlchemy Core so that the same
code fills SQLite, PostgreSQL and any other database SQLAlchemy reaches.

Values come from Faker's provider word lists, loaded once, and are drawn with numpy in whole
columns: calling Faker per value would make a scale-10 database take minutes. Everything is drawn
from one seeded generator and a fixed reference date, so a seed always gives the same database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Any

import numpy as np
from faker.providers.address.en_US import Provider as AddressProvider
from faker.providers.person.en_US import Provider as PersonProvider
from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    UniqueConstraint,
    create_engine,
    func,
    inspect,
    select,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, InterfaceError, OperationalError

from governor.engine.errors import ConnectionFailed

METADATA = MetaData()

CUSTOMERS = Table(
    "customers",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("first_name", String(50), nullable=False),
    Column("last_name", String(50), nullable=False),
    Column("email", String(120), nullable=False, unique=True),
    Column("phone", String(30)),
    Column("birth_date", Date),
    Column("loyalty_tier", String(20), nullable=False),
    Column("marketing_opt_in", Boolean, nullable=False),
    Column("created_at", DateTime, nullable=False),
)

ADDRESSES = Table(
    "addresses",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("customer_id", Integer, ForeignKey("customers.id"), nullable=False, index=True),
    Column("street", String(120), nullable=False),
    Column("city", String(80), nullable=False),
    Column("state", String(2), nullable=False),
    Column("postcode", String(10), nullable=False),
    Column("country", String(60), nullable=False),
)

PRODUCTS = Table(
    "products",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("sku", String(20), nullable=False, unique=True),
    Column("name", String(120), nullable=False),
    Column("category", String(40), nullable=False),
    Column("price", Numeric(10, 2), nullable=False),
)

ORDERS = Table(
    "orders",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("customer_id", Integer, ForeignKey("customers.id"), nullable=False, index=True),
    Column("shipping_address_id", Integer, ForeignKey("addresses.id"), nullable=False),
    Column("status", String(20), nullable=False),
    Column("ordered_at", DateTime, nullable=False),
)

ORDER_ITEMS = Table(
    "order_items",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("order_id", Integer, ForeignKey("orders.id"), nullable=False),
    Column("product_id", Integer, ForeignKey("products.id"), nullable=False, index=True),
    Column("quantity", Integer, nullable=False),
    Column("unit_price", Numeric(10, 2), nullable=False),
    UniqueConstraint("order_id", "product_id"),
)

PAYMENTS = Table(
    "payments",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("order_id", Integer, ForeignKey("orders.id"), nullable=False, index=True),
    Column("amount", Numeric(10, 2), nullable=False),
    Column("method", String(20), nullable=False),
    Column("card_last4", String(4)),
    Column("paid_at", DateTime, nullable=False),
)

EMPLOYEES = Table(
    "employees",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("first_name", String(50), nullable=False),
    Column("last_name", String(50), nullable=False),
    Column("email", String(120), nullable=False, unique=True),
    Column("phone", String(30)),
    Column("job_title", String(60), nullable=False),
    Column("department", String(40), nullable=False),
    Column("hire_date", Date, nullable=False),
    Column("salary", Numeric(10, 2), nullable=False),
    Column("manager_id", Integer, ForeignKey("employees.id"), index=True),
)

DEMO_TABLES: tuple[Table, ...] = (CUSTOMERS, ADDRESSES, PRODUCTS, ORDERS, ORDER_ITEMS, PAYMENTS, EMPLOYEES)

# Rows at scale 1 of the tables whose size is chosen; the others follow from them
# (about 1.5 addresses per customer, 2.5 items per order, a payment per paid order): ~16,000 rows.
BASE_ROWS = {"customers": 1_000, "products": 200, "orders": 3_000, "employees": 100}

REFERENCE_TIME = dt.datetime(2025, 6, 30, 18, 0, 0)
FIRST_SIGN_UP = dt.datetime(2019, 1, 1)
INSERT_BATCH = 5_000

# Categorical columns: (values, weights). Skewed on purpose, so that frequency-preserving
# generators and subsetting reports have something to show.
LOYALTY_TIERS = (("bronze", "silver", "gold", "platinum"), (0.60, 0.25, 0.12, 0.03))
ORDER_STATUSES = (
    ("delivered", "shipped", "processing", "pending", "cancelled", "returned"),
    (0.70, 0.10, 0.07, 0.05, 0.06, 0.02),
)
UNPAID_STATUSES = ("pending", "cancelled")
PAYMENT_METHODS = (("card", "paypal", "bank_transfer", "gift_card"), (0.65, 0.20, 0.10, 0.05))
EMAIL_DOMAINS = (
    ("gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "icloud.com", "aol.com", "proton.me"),
    (0.42, 0.18, 0.12, 0.12, 0.08, 0.05, 0.03),
)
PHONE_FORMATS = ("({a}) {e}-{l}", "{a}-{e}-{l}", "+1-{a}-{e}-{l}", "{a}.{e}.{l}")
COMPANY_DOMAIN = "northwind-goods.example"
DEPARTMENTS = (
    ("Operations", "Customer Service", "Engineering", "Sales", "Marketing", "Finance", "People"),
    (0.28, 0.22, 0.16, 0.14, 0.09, 0.07, 0.04),
)
# Title and salary band (median, in dollars) by depth in the hierarchy; deeper levels reuse the last.
RANKS = (
    ("Chief Executive Officer", 310_000),
    ("Vice President", 210_000),
    ("Director", 150_000),
    ("Manager", 105_000),
    ("Team Lead", 82_000),
    ("Associate", 58_000),
)
REPORTS_PER_MANAGER = 4


@dataclass(frozen=True)
class Category:
    name: str
    weight: float
    median_price: float
    nouns: tuple[str, ...]


CATEGORIES = (
    Category("Electronics", 0.24, 89.0, ("Headphones", "Charger", "Speaker", "Keyboard", "Webcam", "Monitor")),
    Category("Home & Kitchen", 0.20, 34.0, ("Skillet", "Kettle", "Blender", "Cutting Board", "Knife Set")),
    Category("Clothing", 0.18, 29.0, ("T-Shirt", "Hoodie", "Jacket", "Sneakers", "Scarf", "Jeans")),
    Category("Books", 0.12, 16.0, ("Cookbook", "Novel", "Field Guide", "Atlas", "Journal")),
    Category("Sports & Outdoors", 0.10, 45.0, ("Yoga Mat", "Water Bottle", "Tent", "Backpack", "Dumbbell")),
    Category("Toys & Games", 0.07, 24.0, ("Puzzle", "Board Game", "Building Set", "Plush Bear", "Kite")),
    Category("Beauty", 0.05, 19.0, ("Face Cream", "Shampoo", "Lip Balm", "Perfume", "Hair Dryer")),
    Category("Garden", 0.04, 38.0, ("Hose", "Planter", "Pruner", "Bird Feeder", "Seed Kit")),
)
PRODUCT_ADJECTIVES = (
    "Classic", "Compact", "Deluxe", "Eco", "Essential", "Everyday", "Premium", "Signature",
    "Travel", "Vintage", "Family", "Rugged", "Lightweight", "Organic", "Mini",
)  # fmt: skip


@dataclass(frozen=True)
class _Pools:
    """Faker's en_US word lists as arrays, with the frequency weights Faker ships for names."""

    first_names: np.ndarray
    first_name_weights: np.ndarray
    last_names: np.ndarray
    last_name_weights: np.ndarray
    street_suffixes: np.ndarray
    city_prefixes: np.ndarray
    city_suffixes: np.ndarray
    states: np.ndarray
    state_zip_low: np.ndarray
    state_zip_high: np.ndarray


@cache
def _pools() -> _Pools:
    def weighted(names: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
        weights = np.array(list(names.values()), dtype=np.float64)
        return np.array(list(names), dtype=object), weights / weights.sum()

    first_names, first_weights = weighted(PersonProvider.first_names)
    last_names, last_weights = weighted(PersonProvider.last_names)
    states = list(AddressProvider.states_postcode)
    return _Pools(
        first_names=first_names,
        first_name_weights=first_weights,
        last_names=last_names,
        last_name_weights=last_weights,
        street_suffixes=np.array(AddressProvider.street_suffixes, dtype=object),
        city_prefixes=np.array(AddressProvider.city_prefixes, dtype=object),
        city_suffixes=np.array(AddressProvider.city_suffixes, dtype=object),
        states=np.array(states, dtype=object),
        state_zip_low=np.array([AddressProvider.states_postcode[s][0] for s in states]),
        state_zip_high=np.array([AddressProvider.states_postcode[s][1] for s in states]),
    )


Columns = dict[str, list[Any]]


def _pick(rng: np.random.Generator, choices: tuple[Sequence[str], Sequence[float]], n: int) -> np.ndarray:
    values, weights = choices
    return rng.choice(np.array(values, dtype=object), size=n, p=np.array(weights) / sum(weights))


def _money(cents: np.ndarray) -> list[Decimal]:
    return [Decimal(int(c)).scaleb(-2) for c in cents]


def _timestamps(start: np.ndarray, end: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A uniform instant between each start and end, to the second."""
    span = (end - start).astype("timedelta64[s]").astype(np.int64)
    return start + (rng.random(len(span)) * span).astype("timedelta64[s]")


def _people(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """First names, last names and phone numbers of n people."""
    pools = _pools()
    first = rng.choice(pools.first_names, size=n, p=pools.first_name_weights)
    last = rng.choice(pools.last_names, size=n, p=pools.last_name_weights)
    area = rng.integers(201, 990, size=n).tolist()
    exchange = rng.integers(200, 1000, size=n).tolist()
    line = rng.integers(0, 10_000, size=n).tolist()
    fmt = rng.integers(0, len(PHONE_FORMATS), size=n).tolist()
    phones = [
        PHONE_FORMATS[f].format(a=a, e=e, l=f"{ln:04d}") for f, a, e, ln in zip(fmt, area, exchange, line, strict=True)
    ]
    return first, last, phones


def _customers(rng: np.random.Generator, n: int) -> Columns:
    ids = np.arange(1, n + 1)
    first, last, phones = _people(rng, n)
    # The id in the local part keeps emails unique: names hold letters only, so the digits are the id.
    patterns = rng.integers(0, 3, size=n).tolist()
    domains = _pick(rng, EMAIL_DOMAINS, n)
    emails = []
    for i, f, la, p, d in zip(ids.tolist(), first, last, patterns, domains, strict=True):
        f, la = f.lower(), la.lower()
        local = (f"{f}.{la}", f"{f[0]}{la}", f"{la}.{f}")[p]
        emails.append(f"{local}{i}@{d}")
    age_days = rng.integers(18 * 365, 85 * 365, size=n)
    birth = np.datetime64(REFERENCE_TIME.date()) - age_days.astype("timedelta64[D]")
    created = _timestamps(
        np.full(n, np.datetime64(FIRST_SIGN_UP, "s")),
        np.full(n, np.datetime64(REFERENCE_TIME - dt.timedelta(days=30), "s")),
        rng,
    )
    return {
        "id": ids.tolist(),
        "first_name": first.tolist(),
        "last_name": last.tolist(),
        "email": emails,
        "phone": phones,
        "birth_date": birth.tolist(),
        "loyalty_tier": _pick(rng, LOYALTY_TIERS, n).tolist(),
        "marketing_opt_in": (rng.random(n) < 0.35).tolist(),
        "created_at": created.tolist(),
    }


def _addresses(rng: np.random.Generator, customer_ids: np.ndarray) -> Columns:
    pools = _pools()
    per_customer = 1 + (rng.random(len(customer_ids)) < 0.4) + (rng.random(len(customer_ids)) < 0.1)
    owners = np.repeat(customer_ids, per_customer)
    n = len(owners)
    building = rng.integers(1, 10_000, size=n).tolist()
    street_names = np.where(
        rng.random(n) < 0.5,
        rng.choice(pools.first_names, size=n, p=pools.first_name_weights),
        rng.choice(pools.last_names, size=n, p=pools.last_name_weights),
    )
    suffixes = rng.choice(pools.street_suffixes, size=n)
    town = rng.choice(pools.last_names, size=n, p=pools.last_name_weights)
    city_suffix = rng.choice(pools.city_suffixes, size=n)
    city_prefix = rng.choice(pools.city_prefixes, size=n)
    prefixed = (rng.random(n) < 0.3).tolist()
    state_index = rng.integers(0, len(pools.states), size=n)
    zips = rng.integers(pools.state_zip_low[state_index], pools.state_zip_high[state_index] + 1)
    return {
        "id": list(range(1, n + 1)),
        "customer_id": owners.tolist(),
        "street": [f"{b} {s} {x}" for b, s, x in zip(building, street_names, suffixes, strict=True)],
        "city": [
            f"{p} {t}{s}" if use_prefix else f"{t}{s}"
            for p, t, s, use_prefix in zip(city_prefix, town, city_suffix, prefixed, strict=True)
        ],
        "state": pools.states[state_index].tolist(),
        "postcode": [f"{z:05d}" for z in zips.tolist()],
        "country": ["United States"] * n,
    }


def _products(rng: np.random.Generator, n: int) -> tuple[Columns, np.ndarray]:
    """The products, and their prices in cents for the order items."""
    category_index = rng.choice(len(CATEGORIES), size=n, p=[c.weight for c in CATEGORIES])
    medians = np.array([c.median_price for c in CATEGORIES])[category_index]
    # Log-normal prices ending in .99, as shops price them.
    cents = np.maximum(np.round(medians * rng.lognormal(0.0, 0.5, size=n)), 1).astype(np.int64) * 100 - 1
    adjectives = rng.choice(np.array(PRODUCT_ADJECTIVES, dtype=object), size=n)
    noun_draw = rng.random(n)
    names = []
    for adjective, c, u in zip(adjectives, category_index.tolist(), noun_draw.tolist(), strict=True):
        nouns = CATEGORIES[c].nouns
        names.append(f"{adjective} {nouns[int(u * len(nouns))]}")
    columns = {
        "id": list(range(1, n + 1)),
        "sku": [f"SKU-{i:07d}" for i in range(1, n + 1)],
        "name": names,
        "category": [CATEGORIES[c].name for c in category_index.tolist()],
        "price": _money(cents),
    }
    return columns, cents


def _orders(rng: np.random.Generator, n: int, customers: Columns, addresses: Columns) -> tuple[Columns, np.ndarray]:
    """The orders, and their statuses for the payments."""
    customer_count = len(customers["id"])
    # A few customers order a lot and many rarely, as in real shops.
    activity = rng.gamma(0.8, size=customer_count)
    owner_index = rng.choice(customer_count, size=n, p=activity / activity.sum())
    # Ship to one of the customer's own addresses: addresses are stored grouped by customer.
    address_owner = np.array(addresses["customer_id"])
    first_address = np.searchsorted(address_owner, np.arange(1, customer_count + 1))
    address_count = np.bincount(address_owner, minlength=customer_count + 1)[1:]
    address_index = first_address[owner_index] + (rng.random(n) * address_count[owner_index]).astype(np.int64)
    signed_up = np.array(customers["created_at"], dtype="datetime64[s]")[owner_index]
    ordered_at = _timestamps(signed_up, np.full(n, np.datetime64(REFERENCE_TIME, "s")), rng)
    # Order ids follow time, as a sequence would have numbered them.
    chronological = np.argsort(ordered_at, kind="stable")
    owner_index, address_index, ordered_at = (
        owner_index[chronological],
        address_index[chronological],
        ordered_at[chronological],
    )
    statuses = _pick(rng, ORDER_STATUSES, n)
    columns = {
        "id": list(range(1, n + 1)),
        "customer_id": (owner_index + 1).tolist(),
        "shipping_address_id": np.array(addresses["id"])[address_index].tolist(),
        "status": statuses.tolist(),
        "ordered_at": ordered_at.tolist(),
    }
    return columns, statuses


def _order_items(rng: np.random.Generator, order_count: int, product_cents: np.ndarray) -> tuple[Columns, np.ndarray]:
    """The order items, and each order's total in cents for its payment."""
    product_count = len(product_cents)
    max_items = min(4, product_count)
    per_order = rng.choice(np.arange(1, 5), size=order_count, p=[0.4, 0.3, 0.2, 0.1])
    per_order = np.minimum(per_order, max_items)
    order_ids = np.repeat(np.arange(1, order_count + 1), per_order)
    position = np.arange(len(order_ids)) - np.repeat(np.cumsum(per_order) - per_order, per_order)
    # Popular products sell more (Zipf-like). Items of one order are first + k * stride with
    # k < max_items and stride * (max_items - 1) < product_count, so they never repeat a product.
    popularity = 1.0 / np.arange(1, product_count + 1) ** 0.8
    first = rng.choice(product_count, size=order_count, p=popularity / popularity.sum())
    stride = rng.integers(1, max(2, product_count // max_items + 1), size=order_count)
    product_index = (np.repeat(first, per_order) + position * np.repeat(stride, per_order)) % product_count
    quantity = rng.choice(np.arange(1, 6), size=len(order_ids), p=[0.62, 0.22, 0.09, 0.04, 0.03])
    discounted = rng.random(len(order_ids)) < 0.15
    unit_cents = np.where(discounted, np.round(product_cents[product_index] * 0.8), product_cents[product_index])
    unit_cents = unit_cents.astype(np.int64)
    totals = np.bincount(order_ids, weights=quantity * unit_cents, minlength=order_count + 1)[1:]
    columns = {
        "id": list(range(1, len(order_ids) + 1)),
        "order_id": order_ids.tolist(),
        "product_id": (product_index + 1).tolist(),
        "quantity": quantity.tolist(),
        "unit_price": _money(unit_cents),
    }
    return columns, np.round(totals).astype(np.int64)


def _payments(rng: np.random.Generator, orders: Columns, statuses: np.ndarray, totals: np.ndarray) -> Columns:
    paid = ~np.isin(statuses, UNPAID_STATUSES)
    order_index = np.flatnonzero(paid)
    n = len(order_index)
    methods = _pick(rng, PAYMENT_METHODS, n)
    last4 = rng.integers(0, 10_000, size=n).tolist()
    ordered_at = np.array(orders["ordered_at"], dtype="datetime64[s]")[order_index]
    delay = rng.integers(5, 2 * 3600, size=n).astype("timedelta64[s]")
    return {
        "id": list(range(1, n + 1)),
        "order_id": (order_index + 1).tolist(),
        "amount": _money(totals[order_index]),
        "method": methods.tolist(),
        "card_last4": [f"{d:04d}" if m == "card" else None for m, d in zip(methods, last4, strict=True)],
        "paid_at": (ordered_at + delay).tolist(),
    }


def _employees(rng: np.random.Generator, n: int) -> Columns:
    """A company tree: employee 1 is the root, everyone else reports to an earlier employee."""
    ids = np.arange(1, n + 1)
    managers = np.where(ids > 1, (ids - 2) // REPORTS_PER_MANAGER + 1, 0)
    depth = np.zeros(n, dtype=np.int64)
    for i in range(1, n):  # managers come first, so their depth is known
        depth[i] = depth[managers[i] - 1] + 1
    rank = np.minimum(depth, len(RANKS) - 1)
    first, last, phones = _people(rng, n)
    median_salary = np.array([salary for _, salary in RANKS])[rank]
    salary_cents = np.round(median_salary * rng.lognormal(0.0, 0.12, size=n)).astype(np.int64) * 100
    tenure_days = rng.integers(30, 20 * 365, size=n)
    departments = _pick(rng, DEPARTMENTS, n)
    departments[0] = "Executive"
    return {
        "id": ids.tolist(),
        "first_name": first.tolist(),
        "last_name": last.tolist(),
        "email": [
            f"{f.lower()}.{la.lower()}{i}@{COMPANY_DOMAIN}" for i, f, la in zip(ids.tolist(), first, last, strict=True)
        ],
        "phone": phones,
        "job_title": [RANKS[r][0] for r in rank.tolist()],
        "department": departments.tolist(),
        "hire_date": (np.datetime64(REFERENCE_TIME.date()) - tenure_days.astype("timedelta64[D]")).tolist(),
        "salary": _money(salary_cents),
        "manager_id": [None, *managers[1:].tolist()],
    }


def _sizes(scale: float) -> dict[str, int]:
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}")
    return {table: max(1, round(rows * scale)) for table, rows in BASE_ROWS.items()}


def generate_demo_rows(*, scale: float = 1.0, seed: int = 7) -> dict[str, Columns]:
    """Every demo table's rows as columns, in insert order (parents first)."""
    size = _sizes(scale)
    rng = np.random.default_rng(seed)
    customers = _customers(rng, size["customers"])
    addresses = _addresses(rng, np.array(customers["id"]))
    products, product_cents = _products(rng, size["products"])
    orders, statuses = _orders(rng, size["orders"], customers, addresses)
    order_items, totals = _order_items(rng, size["orders"], product_cents)
    payments = _payments(rng, orders, statuses, totals)
    employees = _employees(rng, size["employees"])
    return {
        "customers": customers,
        "addresses": addresses,
        "products": products,
        "orders": orders,
        "order_items": order_items,
        "payments": payments,
        "employees": employees,
    }


def _row_batches(columns: Columns) -> Iterator[list[dict[str, Any]]]:
    names = list(columns)
    rows = [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]
    for start in range(0, len(rows), INSERT_BATCH):
        yield rows[start : start + INSERT_BATCH]


def _existing_counts(connection: Connection) -> dict[str, int] | None:
    """Row counts when every demo table exists and has rows, else None."""
    present = set(inspect(connection).get_table_names())
    if not all(table.name in present for table in DEMO_TABLES):
        return None
    counts = {
        table.name: connection.execute(select(func.count()).select_from(table)).scalar_one() for table in DEMO_TABLES
    }
    return counts if all(counts.values()) else None


def engine_url(url: str) -> str:
    """SQLAlchemy URL for a user's URL: plain ``postgresql://`` means psycopg 3, the driver we ship."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConnectionFailed("not a database URL (expected e.g. sqlite:///demo.db or postgresql://...)") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def build_demo_database(url: str, *, scale: float = 1.0, seed: int = 7, replace: bool = False) -> dict[str, int]:
    """Create and fill the demo tables at ``url``; return the rows per table.

    A database that already holds every demo table with rows is left alone (unless ``replace``),
    so that ``governor demo`` can be run again cheaply; a half-built one is dropped and rebuilt.
    The whole build is one transaction where the database allows it. A database that cannot be
    reached or written raises ``ConnectionFailed`` with a one-line reason and no password.
    """
    _sizes(scale)  # refuse a bad scale before touching the database
    engine = create_engine(engine_url(url))
    try:
        with engine.begin() as connection:
            if not replace:
                counts = _existing_counts(connection)
                if counts is not None:
                    return counts
            METADATA.drop_all(connection, checkfirst=True)
            METADATA.create_all(connection)
            counts = {}
            for table_name, columns in generate_demo_rows(scale=scale, seed=seed).items():
                table = METADATA.tables[table_name]
                for batch in _row_batches(columns):
                    connection.execute(table.insert(), batch)
                counts[table_name] = len(columns["id"])
            return counts
    except (OperationalError, InterfaceError) as exc:
        where = engine.url.render_as_string(hide_password=True)
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        raise ConnectionFailed(f"cannot build the demo database at {where}: {reason}") from None
    finally:
        engine.dispose()
