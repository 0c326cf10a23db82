"""``huegis db``: the managed PostGIS cluster and migrations."""

from __future__ import annotations

import os
import shutil
from typing import Annotated

import typer
from rich.table import Table

from api.cli.common import (
    _errors,
    _ready_dsn,
    _settings,
    app,
    console,
)
from gis.errors import HueGISError

db_app = typer.Typer(help="The database: managed local PostGIS cluster and migrations.",
                     no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("up")
def db_up() -> None:
    """Start the managed PostGIS cluster (./var/pg, port 5439); a no-op when it is up."""
    from gis.cluster import Cluster

    with _errors():
        settings = _settings()
        started = Cluster(settings).up()
        console.print(("[green]started[/]" if started else "already running") +
                      f": {settings.managed_url()}")


@db_app.command("down")
def db_down() -> None:
    """Stop the managed cluster."""
    from gis.cluster import Cluster

    with _errors():
        stopped = Cluster(_settings()).down()
        console.print("[green]stopped[/]" if stopped else "not running")


@db_app.command("status")
def db_status() -> None:
    """Show whether the managed cluster is initialised and running, and the schema revision."""
    from gis import db
    from gis.cluster import Cluster

    with _errors():
        settings = _settings()
        table = Table(show_header=False, box=None)
        if settings.uses_managed_cluster:
            for k, v in Cluster(settings).status().items():
                table.add_row(k, str(v))
        else:
            table.add_row("url", db.redact(settings.dsn))
        try:
            table.add_row("schema", str(db.current_revision(settings.dsn)))
        except Exception as exc:  # noqa: BLE001 - status reports, never fails
            table.add_row("schema", f"unreachable ({type(exc).__name__})")
        console.print(table)


@db_app.command("migrate")
def db_migrate(revision: Annotated[str, typer.Argument(help="Target revision")] = "head",
               ) -> None:
    """Upgrade the schema with Alembic (starts the managed cluster if needed)."""
    from gis import db

    with _errors():
        dsn = _ready_dsn(_settings())
        db.migrate(dsn, revision)
        console.print(f"schema at [bold]{db.current_revision(dsn)}[/]")


@db_app.command("psql", context_settings={"allow_extra_args": True,
                                          "ignore_unknown_options": True})
def db_psql(ctx: typer.Context) -> None:
    """Open psql on the database (extra arguments are passed to psql)."""
    with _errors():
        dsn = _ready_dsn(_settings())
        psql = shutil.which("psql")
        if not psql:
            raise HueGISError("psql not found: apt-get install postgresql-client")
        os.execv(psql, [psql, dsn, *ctx.args])
