"""The canonical Arrow types every connector reads columns as, and how they map back to SQL.

Transformers and targets see the same Arrow type for a column whichever database it came from:

===============================================  ==========================================
SQL type                                         Arrow type
===============================================  ==========================================
smallint / integer / bigint                      int16 / int32 / int64 (SQLite integers: int64)
numeric(p, s), decimal(p, s), p <= 38            decimal128(p, s)
numeric without precision (or p > 38)            string (the database's text form, exact)
real / double precision                          float32 / float64 (SQLite REAL: float64)
text, varchar(n), char(n)                        string
boolean                                          bool
date                                             date32
time (without time zone)                         time64('us')
timestamp                                        timestamp('us')
timestamp with time zone                         timestamp('us', tz='UTC')
bytea, blob                                      binary
uuid, json, jsonb, arrays, enums, anything else  string, in PostgreSQL's text form
===============================================  ==========================================

MySQL and MariaDB add their own integer widths and time types:

===============================================  ==========================================
tinyint(1) (what BOOLEAN is in MySQL)            bool
tinyint / year                                   int16
smallint / mediumint / int / bigint unsigned     int32 / int32 / int64 / decimal128(20, 0)
float / double                                   float32 / float64
timestamp (stored in UTC)                        timestamp('us', tz='UTC')
bit(n)                                           int64
===============================================  ==========================================

NULL is allowed everywhere. Carrying PostgreSQL's own text form for the types Arrow has no
equivalent of means PostgreSQL -> PostgreSQL copies them exactly, and other databases still
receive a readable value. A PostgreSQL domain has the type of its base type. A PostgreSQL
column holding values its type's Arrow type cannot (``infinity``, BC dates, time ``24:00:00``,
numeric ``NaN``) is read as string instead, by the PostgreSQL connector.
"""

from __future__ import annotations

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql

MAX_DECIMAL128_PRECISION = 38
MYSQL_DIALECTS = ("mysql", "mariadb")


def arrow_type(sql_type: sa.types.TypeEngine, dialect: str) -> pa.DataType:
    """The canonical Arrow type of a reflected column type of the given dialect."""
    if isinstance(sql_type, postgresql.DOMAIN):
        return arrow_type(sql_type.data_type, dialect)
    if dialect in MYSQL_DIALECTS:
        special = _mysql_arrow_type(sql_type)
        if special is not None:
            return special
    wide_integers = dialect == "sqlite"  # SQLite stores every INTEGER in 64 bits
    if isinstance(sql_type, sa.Boolean):
        return pa.bool_()
    if isinstance(sql_type, sa.SmallInteger):
        return pa.int64() if wide_integers else pa.int16()
    if isinstance(sql_type, sa.BigInteger):
        return pa.int64()
    if isinstance(sql_type, sa.Integer):
        return pa.int64() if wide_integers else pa.int32()
    if isinstance(sql_type, sa.Float):
        single = dialect != "sqlite" and (
            isinstance(sql_type, sa.REAL) or (sql_type.precision is not None and sql_type.precision <= 24)
        )
        return pa.float32() if single else pa.float64()
    if isinstance(sql_type, sa.Numeric):
        precision, scale = sql_type.precision, sql_type.scale
        if precision is None or precision > MAX_DECIMAL128_PRECISION:
            return pa.string()
        return pa.decimal128(precision, scale or 0)
    if isinstance(sql_type, sa.DateTime):
        return pa.timestamp("us", tz="UTC" if sql_type.timezone else None)
    if isinstance(sql_type, sa.Date):
        return pa.date32()
    if isinstance(sql_type, sa.Time):
        return pa.string() if sql_type.timezone else pa.time64("us")
    if isinstance(sql_type, sa.types._Binary):  # LargeBinary, BYTEA, BLOB, VARBINARY
        return pa.binary()
    return pa.string()


def _mysql_arrow_type(sql_type: sa.types.TypeEngine) -> pa.DataType | None:
    """MySQL's own integer, float and time types; None where the generic mapping is right.

    Unsigned integers take the next wider type, so every value fits (bigint unsigned in a
    decimal). ``tinyint(1)`` is read as boolean, as MySQL's BOOLEAN is stored: a tinyint(1)
    holding another number reads as true.
    """
    if isinstance(sql_type, mysql.TINYINT):
        return pa.bool_() if sql_type.display_width == 1 else pa.int16()
    if isinstance(sql_type, mysql.YEAR):
        return pa.int16()
    if isinstance(sql_type, mysql.BIT):
        return pa.int64()
    if isinstance(sql_type, mysql.TIMESTAMP):
        return pa.timestamp("us", tz="UTC")
    if isinstance(sql_type, mysql.FLOAT):
        return pa.float32()
    if getattr(sql_type, "unsigned", False):
        if isinstance(sql_type, mysql.BIGINT):
            return pa.decimal128(20, 0)
        if isinstance(sql_type, mysql.INTEGER):
            return pa.int64()
        if isinstance(sql_type, mysql.SMALLINT | mysql.MEDIUMINT):
            return pa.int32()
    return None


def arrow_schema(table: sa.Table, dialect: str) -> pa.Schema:
    return pa.schema(
        [pa.field(column.name, arrow_type(column.type, dialect), nullable=True) for column in table.columns]
    )


def wire_type(data_type: pa.DataType) -> sa.types.TypeEngine:
    """The SQLAlchemy type that binds and reads values of an Arrow type with no extra conversion.

    Statement-based connectors bind through it (so the dialect formats dates for SQLite, say)
    instead of through the column's own type, which may expect other Python values (a JSON
    column would serialize an already serialized string again).
    """
    if pa.types.is_boolean(data_type):
        return sa.Boolean()
    if pa.types.is_integer(data_type):
        return sa.BigInteger()
    if pa.types.is_floating(data_type):
        return sa.Double()
    if pa.types.is_decimal(data_type):
        return sa.Numeric(data_type.precision, data_type.scale, asdecimal=True)
    if pa.types.is_timestamp(data_type):
        return sa.DateTime(timezone=data_type.tz is not None)
    if pa.types.is_date(data_type):
        return sa.Date()
    if pa.types.is_time(data_type):
        return sa.Time()
    if pa.types.is_binary(data_type) or pa.types.is_large_binary(data_type):
        return sa.LargeBinary()
    return sa.Text()


def target_type(sql_type: sa.types.TypeEngine, source_dialect: str, target: sa.engine.Dialect) -> sa.types.TypeEngine:
    """The type a target of another dialect creates a source column with.

    The generic form keeps lengths and precisions; where the target cannot render it (a
    PostgreSQL array in SQLite, say), or where it cannot hold the canonical values (MySQL's
    tinyint(1) booleans, unsigned integers, UTC timestamps), the column falls back to the type
    its canonical Arrow values bind as. A PostgreSQL domain becomes its base type there: its
    checks are PostgreSQL's SQL.
    """
    if isinstance(sql_type, postgresql.DOMAIN):
        return target_type(sql_type.data_type, source_dialect, target)
    canonical = arrow_type(sql_type, source_dialect)
    if pa.types.is_float32(canonical):
        return sa.REAL()  # MySQL's FLOAT is generically a Float, which databases make a double
    try:
        generic = _portable(sql_type.as_generic(), sql_type)
        generic.compile(dialect=target)
    except (NotImplementedError, sa.exc.CompileError):
        return wire_type(canonical)
    if not _holds(arrow_type(generic, source_dialect), canonical):
        return wire_type(canonical)
    return generic


def _portable(generic: sa.types.TypeEngine, sql_type: sa.types.TypeEngine) -> sa.types.TypeEngine:
    """Enums, sets, uuids, JSON, intervals and zoned times as the text every database can hold them in.

    Intervals and zoned times are read as PostgreSQL's text ('1 year 2 mons', '12:00:00+05:30'),
    which the date and time types other databases render them as would refuse or cut.
    """
    if isinstance(sql_type, mysql.SET):
        return sa.String(len(",".join(sql_type.values)) or 1)
    if isinstance(generic, sa.Enum):
        return sa.String(max((len(label) for label in generic.enums), default=1))
    if isinstance(generic, sa.Uuid | sa.JSON | sa.Interval) or (isinstance(generic, sa.Time) and generic.timezone):
        return sa.Text()
    return generic


def _holds(generic: pa.DataType, canonical: pa.DataType) -> bool:
    """Whether a column read as ``generic`` holds every value of ``canonical`` as it is."""
    if generic == canonical:
        return True
    same_kind = (pa.types.is_integer(generic) and pa.types.is_integer(canonical)) or (
        pa.types.is_floating(generic) and pa.types.is_floating(canonical)
    )
    return same_kind and generic.bit_width >= canonical.bit_width
