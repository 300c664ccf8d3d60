"""The metadata store itself: settings, a fresh home, migrations, encryption, access keys."""

from __future__ import annotations

import multiprocessing
import stat
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from governor.engine.connectors.urls import mask_url
from governor.settings import Settings
from governor.store import crypto
from governor.store.db import MIGRATIONS, Store, open_store
from governor.store.errors import Conflict, Invalid
from governor.store.keys import LAST_USED_RESOLUTION, create_key, revoke_key, verify_key
from governor.store.models import AccessKey, User, utcnow
from governor.store.users import create_user, list_users


def test_settings_come_from_governor_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GOVERNOR_HOME", str(tmp_path / "h"))
    monkeypatch.setenv("GOVERNOR_PORT", "9000")
    monkeypatch.setenv("GOVERNOR_LOG_FORMAT", "json")
    monkeypatch.setenv("GOVERNOR_SECRET_KEY", "swordfish")
    monkeypatch.delenv("GOVERNOR_DATABASE_URL", raising=False)
    settings = Settings()
    assert settings.home == tmp_path / "h"
    assert (settings.port, settings.log_format, settings.workers, settings.host) == (9000, "json", 2, "127.0.0.1")
    assert settings.effective_database_url == f"sqlite:///{tmp_path / 'h' / 'governor.db'}"
    assert "swordfish" not in repr(settings)


def test_fresh_home_is_created_migrated_and_gets_a_private_key(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "new" / "home", database_url=None, secret_key=None)
    store = open_store(settings)
    try:
        assert (settings.home / "governor.db").is_file()
        mode = stat.S_IMODE(settings.secret_key_file.stat().st_mode)
        assert mode == 0o600
        assert len(settings.secret_key_file.read_text().strip()) >= 43  # 256 bits, base64
        with store.engine.connect() as connection:
            tables = set(sa.inspect(connection).get_table_names())
            assert {"users", "access_keys", "data_sources", "workflows", "workflow_runs"} <= tables
            head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
            assert connection.scalar(sa.text("SELECT version_num FROM alembic_version")) == head
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        store.dispose()
    key = settings.secret_key_file.read_text()
    open_store(settings).dispose()  # a second start changes nothing
    assert settings.secret_key_file.read_text() == key


def test_configured_secret_key_means_no_key_file(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", database_url=None, secret_key="configured")
    open_store(settings).dispose()
    assert not settings.secret_key_file.exists()
    token = crypto.encrypt("postgresql://u:pw@h/db", settings)
    assert crypto.decrypt(token, Settings(home=tmp_path / "other", secret_key="configured")) == "postgresql://u:pw@h/db"
    with pytest.raises(crypto.UndecryptableError):
        crypto.decrypt(token, Settings(home=tmp_path / "home", secret_key="another"))


def test_store_works_on_the_metadata_database_under_test(store: Store) -> None:
    store.migrate()  # idempotent
    with store.session() as session:
        create_user(session, "Ann@Example.org", "Ann")
    with pytest.raises(Conflict), store.session() as session:
        create_user(session, "ann@example.org", "Ann again")
    with pytest.raises(Invalid), store.session() as session:
        create_user(session, "not-an-email", "x")
    with store.session() as session:
        assert [u.email for u in list_users(session)] == ["ann@example.org"]


def test_failed_session_rolls_back(store: Store) -> None:
    with pytest.raises(RuntimeError), store.session() as session:
        create_user(session, "gone@example.org", "Gone")
        raise RuntimeError("boom")
    with store.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(User)) == 0


def test_display_url_and_redact_hide_passwords() -> None:
    shown = crypto.display_url("postgresql://bob:hunter2@db.example:5432/prod?sslpassword=pem-secret&sslmode=require")
    assert "hunter2" not in shown and "pem-secret" not in shown
    assert shown.startswith("postgresql://bob:***@db.example:5432/prod")
    assert "sslmode=require" in shown
    assert crypto.display_url("sqlite:////data/x.db") == "sqlite:////data/x.db"
    with pytest.raises(ValueError):
        crypto.display_url("not a url")
    text = "could not connect to postgresql+psycopg://bob:hunter2@db/prod: refused"
    assert crypto.redact(text) == "could not connect to postgresql+psycopg://bob:***@db/prod: refused"


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://alice@127.0.0.1:1/db?password=S3cretPW", "postgresql://alice@127.0.0.1:1/db?password=***"),
        (
            "postgresql://alice@h/db?sslmode=require&sslpassword=S3cretPW&api_Token=S3cretPW",
            "postgresql://alice@h/db?sslmode=require&sslpassword=***&api_Token=***",
        ),
        ("postgresql://bob:S3cret PW@h/db", "postgresql://bob:***@h/db"),
        ("postgresql://bob:S3c@retPW@h:5432/db", "postgresql://bob:***@h:5432/db"),
        ("postgresql://admin@server:S3cretPW@h/db", "postgresql://admin@server:***@h/db"),
        ("postgresql://bob:S3cretPW@h:notaport/db", "postgresql://bob:***@h:notaport/db"),
    ],
)
def test_one_masking_rule_for_urls_display_and_logs(url: str, masked: str) -> None:
    """mask_url (connector errors), display_url (stored) and redact (logs) hide the same secrets."""
    assert mask_url(url) == masked
    assert (
        crypto.redact(f"cannot connect to {url}: refused\nnext line")
        == f"cannot connect to {masked}: refused\nnext line"
    )
    if not url.endswith("notaport/db"):
        assert crypto.display_url(url) == masked


def _open_and_add_users(url: str, home: str, worker: int) -> None:
    store = open_store(Settings(home=Path(home), database_url=url, secret_key="k"))
    for number in range(10):
        with store.session() as session:
            create_user(session, f"u{worker}-{number}@example.org", "u")
            session.flush()
            list_users(session)  # a read then more writes in one transaction: no upgrade deadlock
    store.dispose()


def test_several_processes_migrate_and_write_at_once(metadata_url: str, tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_open_and_add_users, args=(metadata_url, str(tmp_path / "h"), worker))
        for worker in range(4)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
    assert [p.exitcode for p in processes] == [0, 0, 0, 0]
    store = Store(metadata_url)
    with store.session() as session:
        assert len(list_users(session)) == 40
    store.dispose()


def test_access_key_life_cycle(store: Store) -> None:
    with store.session() as session:
        user = create_user(session, "k@example.org", "K")
        key, presented = create_key(session, user, "ci")
        key_id, secret = presented.split(":")
        assert key_id == key.key_id
        assert len(secret) >= 43  # 32 random bytes
        assert secret not in key.secret_hash and key.secret_hash != secret
    with store.session() as session:
        found = verify_key(session, presented)
        assert found is not None and found.user.email == "k@example.org"
        first_use = found.last_used_at
        assert first_use is not None
    with store.session() as session:
        assert verify_key(session, presented).last_used_at == first_use  # within the resolution
        assert verify_key(session, f"{key_id}:{'A' * len(secret)}") is None
        assert verify_key(session, f"unknown:{secret}") is None
        assert verify_key(session, key_id) is None
        assert verify_key(session, "") is None
    with store.session() as session:
        stored = session.scalar(sa.select(AccessKey).where(AccessKey.key_id == key_id))
        stored.last_used_at = utcnow() - LAST_USED_RESOLUTION * 2
    with store.session() as session:
        assert verify_key(session, presented).last_used_at > first_use
        revoke_key(session, key_id)
    with store.session() as session:
        assert verify_key(session, presented) is None
        with pytest.raises(Conflict):
            revoke_key(session, key_id)


def test_expired_keys_and_inactive_users_fail(store: Store) -> None:
    with store.session() as session:
        user = create_user(session, "e@example.org", "E")
        expiring, expiring_secret = create_key(session, user, "short", utcnow() + timedelta(hours=1))
        _, other_secret = create_key(session, user, "other")
        with pytest.raises(Invalid):
            create_key(session, user, "past", utcnow() - timedelta(seconds=1))
    with store.session() as session:
        assert verify_key(session, expiring_secret) is not None
        session.get(AccessKey, expiring.id).expires_at = utcnow() - timedelta(seconds=1)
    with store.session() as session:
        assert verify_key(session, expiring_secret) is None
        assert verify_key(session, other_secret) is not None
        session.get(User, user.id).active = False
    with store.session() as session:
        assert verify_key(session, other_secret) is None
