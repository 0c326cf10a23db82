"""What every ``huegis`` command group shares: the typer app, consoles, errors, progress."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from gis.errors import HueGISError
from gis.settings import Settings

app = typer.Typer(help="Huế GIS: spatial service and map platform for Huế City.",
                  no_args_is_help=True, pretty_exceptions_enable=False)

console = Console()
err = Console(stderr=True)


@contextmanager
def _errors() -> Iterator[None]:
    """Turn domain errors into a clear message and a non-zero exit (status 2).

    The message is escaped: server log lines such as ``[1234] LOG:`` are not rich markup.
    """
    try:
        yield
    except HueGISError as exc:
        err.print(f"[bold red]error[/] ({exc.code}): {escape(exc.description)}", soft_wrap=True)
        raise typer.Exit(2) from None


def _progress() -> Progress:
    return Progress(SpinnerColumn(), TextColumn("[bold]{task.description:<13}"), BarColumn(),
                    MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=err, transient=False)


def _settings() -> Settings:
    return Settings()


def _ready_dsn(settings: Settings) -> str:
    from gis.db import ensure_ready

    return ensure_ready(settings)


def _vector_layer(layer_id: str):
    from gis.catalog import vector_layer

    return vector_layer(layer_id)
