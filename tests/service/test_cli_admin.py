"""The admin CLI on the configured home: bootstrap, keys, data sources, workflows, one-line errors."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from governor.cli.main import app
from governor.settings import Settings
from governor.store.db import Store
from governor.store.keys import verify_key
from tests.servers import free_port

KEEP_CONFIG = "tables:\n  - table_name_with_schema: customers\n    mode: KEEP\n"


@pytest.fixture
def governor(tmp_path: Path, metadata_url: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Run ``governor ARGS...`` against a fresh home; returns (exit code, stdout, stderr)."""
    monkeypatch.setenv("GOVERNOR_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GOVERNOR_DATABASE_URL", metadata_url)
    monkeypatch.delenv("GOVERNOR_SECRET_KEY", raising=False)
    runner = CliRunner()

    def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
        result = runner.invoke(app, list(args), input=input)
        assert "Traceback" not in result.stdout + result.stderr
        return result.exit_code, result.stdout, result.stderr

    return run


def test_bootstrap_and_keys(governor, metadata_url: str) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = governor("users", "create", "root@example.org", "--admin", "--json")
    assert code == 0
    user = json.loads(out)
    assert user["role"] == "admin" and user["email"] == "root@example.org"

    code, out, _ = governor("keys", "create", "--user", "root@example.org", "--name", "ci", "--json")
    assert code == 0
    created = json.loads(out)
    store = Store(metadata_url)
    with store.session() as session:
        assert verify_key(session, created["key"]).user_id == user["id"]

    code, out, _ = governor("keys", "list", "--json")
    assert code == 0 and created["key"].split(":")[1] not in out
    assert [k["key_id"] for k in json.loads(out)] == [created["key_id"]]

    code, out, _ = governor("keys", "revoke", created["key_id"])
    assert code == 0
    with store.session() as session:
        assert verify_key(session, created["key"]) is None
    store.dispose()

    code, _, err = governor("keys", "revoke", created["key_id"])
    assert code == 1 and "already revoked" in err and len(err.strip().splitlines()) == 1
    code, _, err = governor("users", "create", "root@example.org")
    assert code == 1 and "already exists" in err
    code, _, err = governor("keys", "create", "--user", "ghost@example.org")
    assert code == 1 and "user 'ghost@example.org' not found" in err
    code, _, err = governor("keys", "create", "--user", "root@example.org", "--expires-in-days", "9999999")
    assert code == 1 and "beyond year 9999" in err


def test_secret_key_is_generated_into_the_home(governor, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert governor("users", "list")[0] == 0
    key_file = Settings(home=tmp_path / "home").secret_key_file
    assert key_file.stat().st_mode & 0o777 == 0o600


def test_datasources_and_workflows(governor, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source_file = tmp_path / "source.sqlite"
    sqlite3.connect(source_file).close()
    code, out, _ = governor(
        "datasources", "add", "src", "--url", f"sqlite:///{source_file}", "--access", "read-only", "--json"
    )
    assert code == 0 and json.loads(out)["kind"] == "sqlite"
    # The URL can be typed at a hidden prompt, out of the shell's history.
    code, out, _ = governor("datasources", "add", "dst", "--json", input=f"sqlite:///{tmp_path / 'dst.sqlite'}\n")
    assert code == 0 and json.loads(out)["access"] == "read-write"
    code, out, err = governor("datasources", "add", "pg", "--url", "postgresql://u:hunter2@127.0.0.1:1/db")
    assert code == 0 and "hunter2" not in out + err
    code, out, _ = governor("datasources", "list", "--json")
    assert [s["name"] for s in json.loads(out)] == ["src", "dst", "pg"] and "hunter2" not in out
    assert governor("datasources", "test", "src")[0] == 0
    code, _, err = governor("datasources", "test", "pg")
    assert code == 1 and "hunter2" not in err and len(err.strip().splitlines()) == 1
    code, _, err = governor("datasources", "add", "bad", "--url", "postgresql://u:hunter2@h:notaport/db")
    assert code == 1 and "url: not a database URL" in err and "hunter2" not in err
    code, out, err = governor("datasources", "add", "pgq", "--url", "postgresql://u@127.0.0.1:1/db?password=S3cretPW")
    assert code == 0 and "S3cretPW" not in out + err and "password=***" in err
    code, _, err = governor("datasources", "test", "pgq")
    assert code == 1 and "S3cretPW" not in err and "password=***" in err

    config = tmp_path / "workflow.yaml"
    config.write_text(KEEP_CONFIG)
    assert governor("workflows", "validate", str(config))[0] == 0
    code, out, _ = governor(
        "workflows", "create", "copy", "--source", "src", "--target", "dst", "-c", str(config), "--json"
    )
    assert code == 0
    workflow = json.loads(out)
    assert workflow["version"] == 1

    config.write_text(KEEP_CONFIG + "global_seed: 3\n")
    code, out, _ = governor("workflows", "update", str(workflow["id"]), "-c", str(config), "--json")
    assert code == 0 and json.loads(out)["version"] == 2
    code, out, _ = governor("workflows", "show", str(workflow["id"]), "--json")
    shown = json.loads(out)
    assert [v["summary"] for v in shown["versions"]] == ["created", "config"]
    assert "global_seed: 3" in shown["config_yaml"]
    code, out, _ = governor("workflows", "show", str(workflow["id"]), "--version", "1")
    assert code == 0 and "global_seed" not in out and "table_name_with_schema: customers" in out
    code, out, _ = governor("workflows", "list", "--json")
    assert [w["name"] for w in json.loads(out)] == ["copy"]

    code, _, err = governor("workflows", "create", "bad", "--source", "dst", "--target", "src", "-c", str(config))
    assert code == 1 and "read-only" in err
    config.write_text("tables:\n  - table_name_with_schema: t\n    mode: SHRED\n")
    code, _, err = governor("workflows", "validate", str(config))
    assert code == 1 and "tables[0].mode" in err
    code, _, err = governor("workflows", "update", str(workflow["id"]), "-c", str(config))
    assert code == 1 and "invalid config: tables[0].mode" in err
    code, _, err = governor("workflows", "show", "99")
    assert code == 1 and "workflow 99 not found" in err
    code, _, err = governor("workflows", "validate", str(tmp_path / "missing.yaml"))
    assert code == 1 and "cannot read config" in err


def test_ids_beyond_int64_are_one_line_errors(governor, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    beyond = str(2**63)
    config = tmp_path / "workflow.yaml"
    config.write_text(KEEP_CONFIG)
    assert governor("users", "create", "root@example.org", "--admin")[0] == 0
    for command in (("workflows", "show", beyond), ("workflows", "update", beyond, "--name", "x")):
        code, _, err = governor(*command)
        assert code == 2 and "9223372036854775807" in err
    for command, message in (
        (("datasources", "test", beyond), f"data source '{beyond}' not found"),
        (("datasources", "test", "²"), "data source '²' not found"),
        (("keys", "create", "--user", beyond), f"user '{beyond}' not found"),
        (("workflows", "create", "w", "--source", beyond, "--target", "1", "-c", str(config)), "not found"),
    ):
        code, _, err = governor(*command)
        assert code == 1 and message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://u:hunter2@127.0.0.1:notaport/db", "GOVERNOR_DATABASE_URL: not a database URL"),
        ("postgresql://u:hunter2@[::1/db", "GOVERNOR_DATABASE_URL: not a database URL"),
        ("mysql://u:hunter2@127.0.0.1/db", "kept in sqlite or postgresql, not 'mysql'"),
        ("postgresql+psycopg2://u:hunter2@127.0.0.1/db", "no driver installed for 'postgresql+psycopg2'"),
    ],
)
def test_an_unusable_metadata_url_is_one_line_from_admin_commands_and_serve(  # type: ignore[no-untyped-def]
    governor, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str, message: str
) -> None:
    monkeypatch.setenv("GOVERNOR_DATABASE_URL", url)
    code, _, err = governor("users", "list")
    assert code == 1 and message in err and "hunter2" not in err and len(err.strip().splitlines()) == 1
    # serve in a process of its own: it configures the logging of the whole process.
    serve = subprocess.run(
        [sys.executable, "-m", "governor", "serve", "--port", str(free_port())],
        env={**os.environ, "GOVERNOR_HOME": str(tmp_path / "serve-home")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert serve.returncode == 1 and message in serve.stderr and "hunter2" not in serve.stderr
    assert "Traceback" not in serve.stderr and len(serve.stderr.strip().splitlines()) == 1
