"""``huegis users`` and ``huegis apikey``: accounts, roles and API keys."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from api.cli.common import _errors, _ready_dsn, _settings, app, console

users_app = typer.Typer(help="Accounts (username, argon2 password, role, wards).",
                        no_args_is_help=True)
apikey_app = typer.Typer(help="API keys (X-API-Key), stored hashed.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(apikey_app, name="apikey")

RoleOpt = Annotated[str, typer.Option("--role", help="citizen, inspector, planner or admin")]
WardOpt = Annotated[list[str] | None, typer.Option(
    "--ward", help="GSO code of an inspector's ward (repeat for several)")]


def _connect():
    import psycopg

    return psycopg.connect(_ready_dsn(_settings()))


@users_app.command("create")
def users_create(
    username: Annotated[str, typer.Argument(help="Login name")],
    role: RoleOpt,
    ward: WardOpt = None,
    password: Annotated[str | None, typer.Option(
        help="Password (prompted, hidden, when not given)")] = None,
) -> None:
    """Create an account (the password is prompted for unless given)."""
    from gis.auth.accounts import create_user

    if password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    with _errors(), _connect() as conn:
        user_id = create_user(conn, username, password, role, ward or ())
        console.print(f"[green]created[/] user {username!r} (id {user_id}, role {role})")


@users_app.command("list")
def users_list() -> None:
    """List the accounts."""
    from gis.auth.accounts import list_users

    with _errors(), _connect() as conn:
        table = Table("id", "username", "role", "wards", "disabled", "created")
        for u in list_users(conn):
            table.add_row(str(u["id"]), u["username"], u["role"], " ".join(u["wards"]),
                          "yes" if u["disabled"] else "", f"{u['created_at']:%Y-%m-%d %H:%M}")
        console.print(table)


@apikey_app.command("create")
def apikey_create(
    role: RoleOpt,
    name: Annotated[str, typer.Option(help="What the key is for")] = "",
    ward: WardOpt = None,
) -> None:
    """Create an API key and print it (the only time it is shown: only its hash is kept)."""
    from gis.auth.accounts import create_api_key

    with _errors(), _connect() as conn:
        key = create_api_key(conn, role, name, ward or ())
    # The bare key on stdout, so scripts can capture it.
    print(key)


@apikey_app.command("list")
def apikey_list() -> None:
    """List the API keys by their public prefix."""
    from gis.auth.accounts import list_api_keys

    with _errors(), _connect() as conn:
        table = Table("prefix", "name", "role", "wards", "created", "revoked")
        for k in list_api_keys(conn):
            table.add_row(k["prefix"], k["name"], k["role"], " ".join(k["wards"]),
                          f"{k['created_at']:%Y-%m-%d %H:%M}",
                          f"{k['revoked_at']:%Y-%m-%d %H:%M}" if k["revoked_at"] else "")
        console.print(table)


@apikey_app.command("revoke")
def apikey_revoke(key: Annotated[str, typer.Argument(help="The key or its prefix")]) -> None:
    """Revoke an API key at once."""
    from gis.auth.accounts import revoke_api_key

    with _errors(), _connect() as conn:
        if not revoke_api_key(conn, key):
            from gis.errors import NotFound

            raise NotFound(f"no live API key {key!r}")
        console.print("[green]revoked[/]")
