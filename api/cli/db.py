"""``huegis db``: the managed PostGIS cluster and migrations."""

from __future__ import annotations

import os
import shutil
from typing import Annotated

import typer
from rich.markup import escape

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
    """Start the managed PostGIS cluster (./var/pg, Unix socket in ./var); a no-op when up."""
    from gis.cluster import Cluster

    with _errors():
        cluster = Cluster(_settings())
        started = cluster.up()
        for note in cluster.notes:
            console.print(f"[yellow]note[/]: {escape(note)}")
        status = cluster.status()
        console.print(("[green]started[/]" if started else "already running") +
                      f": {escape(str(status['url']))}", soft_wrap=True)
        if status["tcp_url"]:
            console.print(f"TCP: {escape(str(status['tcp_url']))}", soft_wrap=True)


@db_app.command("down")
def db_down() -> None:
    """Stop the managed cluster."""
    from gis.cluster import Cluster

    with _errors():
        stopped = Cluster(_settings()).down()
        console.print("[green]stopped[/]" if stopped else "not running")


@db_app.command("status")
def db_status() -> None:
    """Whether the managed cluster runs, the URLs to connect with (psql, QGIS, DBeaver), and
    the schema revision."""
    from gis import db
    from gis.cluster import Cluster

    with _errors():
        settings = _settings()
        rows: list[tuple[str, str]] = []
        dsn = settings.dsn
        if settings.uses_managed_cluster:
            status = Cluster(settings).status()
            rows += [(key, str(status[key]))
                     for key in ("initialized", "running", "pid", "datadir", "socket")]
            rows.append(("url", f"{status['url']}  (psql, QGIS, libpq)"))
            tcp = status["tcp_url"]
            rows.append(("tcp url", f"{tcp}  (DBeaver: jdbc:{str(tcp).replace('postgres@', '')}"
                         ", user postgres)" if tcp else
                         "off (for DBeaver/JDBC: set HUEGIS_PG_PORT=<port>, then "
                         "huegis db down && huegis db up)"))
            dsn = str(status["url"])
        else:
            rows.append(("url", db.redact(settings.dsn)))
        try:
            rows.append(("schema", str(db.current_revision(dsn))))
        except Exception as exc:  # noqa: BLE001 - status reports, never fails
            rows.append(("schema", f"unreachable ({type(exc).__name__})"))
        for key, value in rows:
            console.print(f"{key:<12} {escape(value)}", soft_wrap=True)


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
