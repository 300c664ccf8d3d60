"""The test harness itself: the PostgreSQL server fixture hands out real, separate databases."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa


def test_each_pg_url_is_a_fresh_database(pg_url_factory: Callable[[], str]) -> None:
    first, second = pg_url_factory(), pg_url_factory()
    assert first != second
    engine = sa.create_engine(first)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (x int)"))
        assert conn.execute(sa.text("SHOW listen_addresses")).scalar() == "127.0.0.1"
    engine.dispose()
    other = sa.create_engine(second)
    assert sa.inspect(other).get_table_names() == []
    other.dispose()


def test_sqlite_urls_are_files_under_tmp_path(sqlite_url_factory: Callable[[], str]) -> None:
    url = sqlite_url_factory()
    assert url != sqlite_url_factory()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (x int)"))
    assert sa.inspect(engine).get_table_names() == ["t"]
    engine.dispose()
