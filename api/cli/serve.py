"""``huegis serve``: the HTTP API and map."""

from __future__ import annotations

from typing import Annotated

import typer

from api.cli.common import (
    _errors,
    _ready_dsn,
    _settings,
    app,
    console,
)


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 1,
    access_log: Annotated[bool | None, typer.Option(
        "--access-log/--no-access-log",
        help="One log line per request (default: HUEGIS_ACCESS_LOG, on)")] = None,
) -> None:
    """Serve the API and map (starts the managed database when it is the target)."""
    import uvicorn

    from gis.cluster import free_port_after, tcp_port_problem
    from gis.errors import PortInUse

    with _errors():
        problem = tcp_port_problem(host, port)
        if problem:
            other = free_port_after(host, port)
            raise PortInUse(f"cannot serve on http://{host}:{port}: {problem}\n"
                            f"  what to do: choose another port: make run PORT={other} "
                            f"(or huegis serve --port {other})")
        settings = _settings()
        _ready_dsn(settings)
    console.print(f"Huế GIS on [bold]http://{host}:{port}[/]")
    uvicorn.run("api.app:create_app", factory=True, host=host, port=port, workers=workers,
                log_level="info",
                access_log=settings.access_log if access_log is None else access_log)
