"""Administration commands: users, access keys, data sources and workflows.

They work directly on the store of the configured home (``GOVERNOR_HOME``,
``GOVERNOR_DATABASE_URL``), no server and no key needed: whoever can read the home is already
its administrator. That is also how the first admin of an empty installation is made.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from governor.api.management.schemas import DataSourceOut, KeyCreated, KeyOut, UserOut, VersionOut, WorkflowOut
from governor.cli.common import console, fail, load_settings, open_store_or_fail
from governor.engine.config import parse_config
from governor.engine.errors import ConfigError
from governor.settings import Settings
from governor.store.datasources import create_data_source, find_data_source, list_data_sources, test_connection
from governor.store.errors import StoreError
from governor.store.keys import create_key, list_keys, revoke_key
from governor.store.models import MAX_ID, Access, Role, User, utcnow
from governor.store.users import create_user, find_user, list_users
from governor.store.workflows import create_workflow, get_version, get_workflow, list_workflows, update_workflow

users_app = typer.Typer(help="Users and their roles.", no_args_is_help=True)
keys_app = typer.Typer(help="Access keys (X-Access-Key) of users.", no_args_is_help=True)
datasources_app = typer.Typer(help="Databases workflows read and write.", no_args_is_help=True)
workflows_app = typer.Typer(help="Workflows and their versions.", no_args_is_help=True)

JSON_OPTION = typer.Option(False, "--json", help="Print the result as JSON, for scripts.")


@contextmanager
def _session() -> Iterator[tuple[Settings, Session]]:
    """The configured store's session; store and config problems end the command with one line."""
    settings = load_settings()
    store = open_store_or_fail(settings)
    try:
        with store.session() as session:
            yield settings, session
    except StoreError as exc:
        raise fail(str(exc)) from None
    except ConfigError as exc:
        raise fail(f"invalid config: {'; '.join(exc.problems)}") from None
    finally:
        store.dispose()


def _print_json(data: BaseModel | Sequence[BaseModel]) -> None:
    if isinstance(data, BaseModel):
        typer.echo(data.model_dump_json(indent=2))
    else:
        typer.echo(json.dumps([item.model_dump(mode="json") for item in data], indent=2))


def _print_table(title: str, rows: Sequence[BaseModel], columns: Sequence[str]) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        values = row.model_dump(mode="json")
        table.add_row(*("-" if values[c] is None else str(values[c]) for c in columns))
    Console().print(table)


def _read_config(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise fail(f"cannot read config {path}: {exc.strerror}") from None


def _author(session: Session, author: str | None) -> User | None:
    return find_user(session, author) if author else None


# ---- users -------------------------------------------------------------------------------------


@users_app.command("create")
def users_create(
    email: str = typer.Argument(..., help="The user's email, their login."),
    name: str = typer.Option("", "--name", help="Display name (default: the email)."),
    role: Role = typer.Option(Role.MEMBER, "--role", help="Global role."),
    admin: bool = typer.Option(False, "--admin", help="Shorthand for --role admin."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a user (the first admin of an empty installation too)."""
    with _session() as (_, session):
        user = UserOut.model_validate(create_user(session, email, name, Role.ADMIN if admin else role))
    if as_json:
        _print_json(user)
    else:
        console.print(f"created user {user.id} <{user.email}> ({user.role})", highlight=False)


@users_app.command("list")
def users_list(as_json: bool = JSON_OPTION) -> None:
    """List users."""
    with _session() as (_, session):
        users = [UserOut.model_validate(user) for user in list_users(session)]
    if as_json:
        _print_json(users)
    else:
        _print_table("Users", users, ["id", "email", "name", "role", "active"])


# ---- keys --------------------------------------------------------------------------------------


@keys_app.command("create")
def keys_create(
    user: str = typer.Option(..., "--user", help="Owner of the key: email or id."),
    name: str = typer.Option("cli", "--name", help="What the key is for."),
    expires_in_days: int | None = typer.Option(None, "--expires-in-days", min=1, help="Default: never."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create an access key; its secret is printed this once."""
    try:
        expires_at = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
    except OverflowError:
        raise fail(f"--expires-in-days: {expires_in_days} days is beyond year 9999") from None
    with _session() as (_, session):
        key, presented = create_key(session, find_user(session, user), name, expires_at)
        created = KeyCreated.of(key, presented)
    if as_json:
        _print_json(created)
    else:
        console.print(f"created key {created.key_id} for user {created.user_id}; it is shown only now:")
        typer.echo(created.key)


@keys_app.command("list")
def keys_list(
    user: str | None = typer.Option(None, "--user", help="Only this user's keys (email or id)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List keys (never their secrets)."""
    with _session() as (_, session):
        user_id = find_user(session, user).id if user else None
        keys = [KeyOut.model_validate(key) for key in list_keys(session, user_id)]
    if as_json:
        _print_json(keys)
    else:
        _print_table("Access keys", keys, ["key_id", "name", "user_id", "expires_at", "last_used_at", "revoked"])


@keys_app.command("revoke")
def keys_revoke(
    key_id: str = typer.Argument(..., help="The key's id (before the ':')."), as_json: bool = JSON_OPTION
) -> None:
    """Revoke a key for good."""
    with _session() as (_, session):
        key = KeyOut.model_validate(revoke_key(session, key_id.partition(":")[0]))
    if as_json:
        _print_json(key)
    else:
        console.print(f"revoked key {key.key_id}")


# ---- data sources ------------------------------------------------------------------------------


@datasources_app.command("add")
def datasources_add(
    name: str = typer.Argument(..., help="A unique name."),
    url: str | None = typer.Option(
        None, "--url", help="Database URL; asked for (hidden, on stderr) when not given, out of shell history."
    ),
    access: Access = typer.Option(Access.READ_WRITE, "--access", help="Only read-write sources can be targets."),
    worker_group: str = typer.Option("default", "--worker-group", help="Workers that may run workflows on it."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Add a data source; its URL is stored encrypted and shown with the password masked."""
    if url is None:
        url = typer.prompt("URL", hide_input=True, err=True)
    with _session() as (settings, session):
        source = DataSourceOut.of(create_data_source(session, settings, name, url, access, worker_group))
    if as_json:
        _print_json(source)
    else:
        console.print(f"added data source {source.id} {source.name!r}: {source.url}", highlight=False)


@datasources_app.command("list")
def datasources_list(as_json: bool = JSON_OPTION) -> None:
    """List data sources, passwords masked."""
    with _session() as (_, session):
        sources = [DataSourceOut.of(source) for source in list_data_sources(session)]
    if as_json:
        _print_json(sources)
    else:
        _print_table("Data sources", sources, ["id", "name", "kind", "url", "access", "worker_group"])


@datasources_app.command("test")
def datasources_test(source: str = typer.Argument(..., help="Name or id.")) -> None:
    """Connect to a data source once; exit 1 if that fails."""
    with _session() as (settings, session):
        found = find_data_source(session, source)
        problem = test_connection(found, settings)
    if problem is not None:
        raise fail(f"{found.name}: {problem}")
    console.print(f"{found.name}: connected")


# ---- workflows ---------------------------------------------------------------------------------


@workflows_app.command("create")
def workflows_create(
    name: str = typer.Argument(..., help="The workflow's name."),
    source: str = typer.Option(..., "--source", help="Source data source (name or id)."),
    target: str = typer.Option(..., "--target", help="Target data source (name or id), read-write."),
    config: Path = typer.Option(..., "--config", "-c", help="Workflow config (TDK-style YAML)."),
    author: str | None = typer.Option(None, "--author", help="User recorded as the author (email or id)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a workflow from a config file (validated first)."""
    text = _read_config(config)
    with _session() as (_, session):
        source_id = find_data_source(session, source).id
        target_id = find_data_source(session, target).id
        workflow = create_workflow(session, name, source_id, target_id, text, _author(session, author))
        created = WorkflowOut.of(workflow)
    if as_json:
        _print_json(created)
    else:
        console.print(f"created workflow {created.id} {created.name!r} (version {created.version})", highlight=False)


@workflows_app.command("update")
def workflows_update(
    workflow_id: int = typer.Argument(..., min=1, max=MAX_ID, help="The workflow's id."),
    name: str | None = typer.Option(None, "--name"),
    source: str | None = typer.Option(None, "--source", help="New source (name or id)."),
    target: str | None = typer.Option(None, "--target", help="New target (name or id)."),
    config: Path | None = typer.Option(None, "--config", "-c", help="New config file."),
    author: str | None = typer.Option(None, "--author", help="User recorded as the author (email or id)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Change a workflow; every change is saved as a new version."""
    text = _read_config(config) if config else None
    with _session() as (_, session):
        workflow = get_workflow(session, workflow_id)
        before = workflow.current.version
        update_workflow(
            session,
            workflow,
            _author(session, author),
            name=name,
            source_id=find_data_source(session, source).id if source else None,
            target_id=find_data_source(session, target).id if target else None,
            config_yaml=text,
        )
        updated = WorkflowOut.of(workflow)
    if as_json:
        _print_json(updated)
    elif updated.version == before:
        console.print(f"workflow {updated.id}: nothing changed (version {updated.version})")
    else:
        console.print(f"workflow {updated.id}: saved version {updated.version}")


@workflows_app.command("list")
def workflows_list(as_json: bool = JSON_OPTION) -> None:
    """List workflows."""
    with _session() as (_, session):
        workflows = [WorkflowOut.of(workflow) for workflow in list_workflows(session)]
    if as_json:
        _print_json(workflows)
    else:
        _print_table("Workflows", workflows, ["id", "name", "source_id", "target_id", "version", "updated_at"])


@workflows_app.command("show")
def workflows_show(
    workflow_id: int = typer.Argument(..., min=1, max=MAX_ID),
    version: int | None = typer.Option(None, "--version", min=1, help="An older version (default: current)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show a workflow's config and its version history."""
    with _session() as (_, session):
        workflow = get_workflow(session, workflow_id)
        shown = WorkflowOut.of(workflow)
        chosen = VersionOut.model_validate(get_version(workflow, version or workflow.current.version))
        history = [VersionOut.model_validate(v) for v in workflow.versions]
    if as_json:
        typer.echo(
            json.dumps(
                {
                    **shown.model_dump(mode="json"),
                    "shown_version": chosen.model_dump(mode="json"),
                    "versions": [v.model_dump(mode="json", exclude={"config_yaml"}) for v in history],
                },
                indent=2,
            )
        )
        return
    console.print(
        f"workflow {shown.id} {shown.name!r}: source {shown.source_id} -> target {shown.target_id}", highlight=False
    )
    _print_table("Versions", history, ["version", "summary", "author_id", "created_at"])
    console.print(f"config of version {chosen.version}:")
    typer.echo(chosen.config_yaml)


@workflows_app.command("validate")
def workflows_validate(config: Path = typer.Argument(..., help="Workflow config (TDK-style YAML).")) -> None:
    """Check a config file without saving it; exit 1 with every problem if it is invalid."""
    try:
        parsed = parse_config(_read_config(config))
    except ConfigError as exc:
        for problem in exc.problems:
            console.print(f"[red]{problem}[/]", highlight=False)
        raise fail(f"{config}: invalid config ({len(exc.problems)} problems)") from None
    console.print(f"{config}: valid ({len(parsed.tables)} tables configured)")


def register(app: typer.Typer) -> None:
    app.add_typer(users_app, name="users")
    app.add_typer(keys_app, name="keys")
    app.add_typer(datasources_app, name="datasources")
    app.add_typer(workflows_app, name="workflows")
