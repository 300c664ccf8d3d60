"""Masking benchmark: ``governor transform`` against a plain COPY of the same PostgreSQL table.

The engine's performance target (ARCHITECTURE §4) is that masking a table PostgreSQL ->
PostgreSQL costs at most twice a plain ``COPY ... TO STDOUT`` piped into ``COPY ... FROM STDIN``.
This script measures exactly that, on a throwaway server it starts itself, so that the number is
reproducible on any machine with the PostgreSQL binaries:

    python bench/masking.py [--rows 1000000] [--repeat 3]

It exits 0 when the ratio meets the target, 2 when it does not, 1 when a run fails or leaves
unmasked values behind.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from faker.providers.address.en_US import Provider as AddressProvider
from faker.providers.person.en_US import Provider as PersonProvider

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.servers import PostgresServer  # the repository root is importable only from here on

TABLE = "people"
TARGET_RATIO = 2.0
SAMPLE_ROWS = 1_000

CREATE_TABLE = f"""
CREATE TABLE {TABLE} (
    id bigint NOT NULL,
    first_name text NOT NULL,
    last_name text NOT NULL,
    email text NOT NULL,
    phone text,
    street text,
    city text,
    birth_date date,
    balance numeric(12, 2),
    created_at timestamptz NOT NULL
)
"""
ADD_PRIMARY_KEY = f"ALTER TABLE {TABLE} ADD PRIMARY KEY (id)"


def _random(salt: int, below: int | str) -> str:
    """SQL for a pseudo-random integer in [0, below) per row ``g``, one stream per salt.

    ``mod`` rather than ``%``: the statement goes through psycopg, where ``%`` starts a placeholder.
    """
    return f"mod(hashint8extended(g, {salt}) & 9223372036854775807, {below})"


def _pick(array: str, salt: int) -> str:
    return f"{array}[1 + {_random(salt, f'array_length({array}, 1)')}]"


# Rows are computed by the server from generate_series: the fill takes seconds, not minutes, and
# the same row count always gives the same table.
FILL = f"""
WITH w AS (
    SELECT %(first)s::text[] AS first, %(last)s::text[] AS last, %(suffixes)s::text[] AS suffixes,
           %(cities)s::text[] AS cities, %(domains)s::text[] AS domains
)
INSERT INTO {TABLE}
SELECT g, first_name, last_name,
       lower(first_name) || '.' || lower(last_name) || g || '@' || {_pick("w.domains", 3)},
       '(' || (200 + {_random(4, 800)}) || ') ' || (200 + {_random(5, 800)}) || '-'
           || lpad({_random(6, 10000)}::text, 4, '0'),
       (1 + {_random(7, 9999)}) || ' ' || {_pick("w.last", 8)} || ' ' || {_pick("w.suffixes", 9)},
       {_pick("w.cities", 10)},
       date '1940-01-01' + {_random(11, 24000)}::int,
       {_random(12, 100000000)}::numeric / 100,
       timestamptz '2018-01-01 00:00:00+00' + make_interval(secs => {_random(13, 220000000)})
FROM w, (
    SELECT g, {_pick("w.first", 1)} AS first_name, {_pick("w.last", 2)} AS last_name
    FROM w, generate_series(1::bigint, %(rows)s::bigint) AS g
) AS people
"""

MASKING_CONFIG = f"""\
default_config:
  mode: KEEP
table_truncation_mode: TRUNCATE
safety_mode: RELAXED
global_seed: 2024
tables:
  - table_name_with_schema: public.{TABLE}
    mode: MASKING
    transformations:
      - columns: [first_name, last_name, email, phone]
        params:
          type: person_generator
          column_templates: ["${{first_name}}", "${{last_name}}", "${{email}}", "${{phone_national}}"]
      - columns: [street]
        params:
          type: address_generator
          column_templates: ["${{street_address}}"]
"""


def _words() -> dict[str, list[str]]:
    last, suffixes = list(PersonProvider.last_names), AddressProvider.city_suffixes
    return {
        "first": list(PersonProvider.first_names),
        "last": last,
        "suffixes": list(AddressProvider.street_suffixes),
        "cities": [f"{name}{suffixes[i % len(suffixes)]}" for i, name in enumerate(last[:400])],
        "domains": ["gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "example.org"],
    }


def fill_source(conninfo: str, rows: int) -> None:
    with psycopg.connect(conninfo) as connection:
        connection.execute(CREATE_TABLE)
        connection.execute(FILL, {"rows": rows, **_words()})
        connection.execute(ADD_PRIMARY_KEY)  # indexing after the load is faster
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(f"VACUUM ANALYZE {TABLE}")


def prepare_target(conninfo: str) -> None:
    """Empty target table, and a checkpoint so that no repetition pays for the previous one's writes."""
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(f"TRUNCATE {TABLE}")
        connection.execute("CHECKPOINT")


def plain_copy(source: str, target: str) -> float:
    """The baseline, in seconds: what ``psql -c 'COPY t TO STDOUT' | psql -c 'COPY t FROM STDIN'`` does."""
    started = time.perf_counter()
    with (
        psycopg.connect(source) as src,
        psycopg.connect(target) as dst,
        src.cursor().copy(f"COPY {TABLE} TO STDOUT") as out,
        dst.cursor().copy(f"COPY {TABLE} FROM STDIN") as into,
    ):
        for chunk in out:
            into.write(chunk)
    return time.perf_counter() - started


@dataclass
class GovernorRun:
    seconds: float
    peak_rss_bytes: int


def governor_transform(config: Path, source_url: str, target_url: str, log: Path) -> GovernorRun:
    """Run ``governor transform`` as a user would, timing it and reading its peak RSS from wait4."""
    executable = shutil.which("governor")
    if executable is None:
        raise SystemExit("the governor command is not installed: pip install -e .")
    argv = [executable, "transform", "--config", str(config), "--source", source_url, "--target", target_url]
    with log.open("wb") as output:
        started = time.perf_counter()
        process = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        raise SystemExit("governor transform failed:\n  " + "\n  ".join(tail))
    return GovernorRun(seconds=seconds, peak_rss_bytes=usage.ru_maxrss * 1024)  # ru_maxrss is in KiB on Linux


def unmasked_values(source: str, target: str, rows: int) -> dict[str, int]:
    """Per masked column, how many of a sample of rows kept their source value (fake names can
    coincide with real ones by chance; emails and streets should practically never)."""
    columns = ("first_name", "last_name", "email", "phone", "street")
    ids = list(range(1, rows + 1, max(1, rows // SAMPLE_ROWS)))
    select = f"SELECT id, {', '.join(columns)} FROM {TABLE} WHERE id = ANY(%s) ORDER BY id"
    with psycopg.connect(source) as src, psycopg.connect(target) as dst:
        before = src.execute(select, [ids]).fetchall()
        after = dst.execute(select, [ids]).fetchall()
    if [row[0] for row in after] != [row[0] for row in before]:
        raise SystemExit("the masked table lost or reordered rows")
    return {
        column: sum(old[i] == new[i] for old, new in zip(before, after, strict=True))
        for i, column in enumerate(columns, start=1)
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the benchmark table")
    parser.add_argument("--repeat", type=int, default=3, help="timed repetitions of each contender")
    args = parser.parse_args()
    if args.rows < 1 or args.repeat < 1:
        parser.error("--rows and --repeat must be positive")

    with PostgresServer() as server, tempfile.TemporaryDirectory(prefix="governor-bench-") as work:
        source_url, target_url = server.create_database("bench_source"), server.create_database("bench_target")
        source, target = server.conninfo("bench_source"), server.conninfo("bench_target")
        with psycopg.connect(source) as connection:
            version = connection.execute("SHOW server_version").fetchone()[0]
        print(f"PostgreSQL {version} on 127.0.0.1:{server.port}, {os.cpu_count()} CPUs, {args.rows:,} rows")

        started = time.perf_counter()
        fill_source(source, args.rows)
        with psycopg.connect(target) as connection:
            connection.execute(CREATE_TABLE)
            connection.execute(ADD_PRIMARY_KEY)
        print(f"fill source table: {time.perf_counter() - started:.1f} s")

        config = Path(work) / "masking.yaml"
        config.write_text(MASKING_CONFIG)
        copy_seconds: list[float] = []
        governor_runs: list[GovernorRun] = []
        for _ in range(args.repeat):
            # Alternating the contenders spreads any change in the machine's load over both.
            prepare_target(target)
            copy_seconds.append(plain_copy(source, target))
            prepare_target(target)
            governor_runs.append(governor_transform(config, source_url, target_url, Path(work) / "run.log"))
        governor_seconds = [run.seconds for run in governor_runs]
        peak_rss = max(run.peak_rss_bytes for run in governor_runs)
        print(f"plain COPY        : {_runs(copy_seconds)}")
        print(f"governor transform: {_runs(governor_seconds)}, peak RSS {peak_rss / 2**20:.0f} MiB")

        ratio = statistics.median(governor_seconds) / statistics.median(copy_seconds)
        verdict = "meets" if ratio <= TARGET_RATIO else "MISSES"
        print(f"ratio governor / COPY: {ratio:.2f} ({verdict} the target <= {TARGET_RATIO})")

        kept = unmasked_values(source, target, args.rows)
        print("sampled rows whose masked column kept its value: " + ", ".join(f"{c} {n}" for c, n in kept.items()))
        if kept["email"] or kept["street"]:
            return 1
    return 0 if ratio <= TARGET_RATIO else 2


def _runs(seconds: list[float]) -> str:
    return f"median {statistics.median(seconds):.2f} s (runs {', '.join(f'{s:.2f}' for s in seconds)})"


if __name__ == "__main__":
    sys.exit(main())
