"""One error shape for every failure: ``{"code": ..., "description": ...}`` with its status."""

from __future__ import annotations

import logging

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gis import errors

log = logging.getLogger("huegis.api")

def status_for(exc: errors.HueGISError) -> int:
    """The HTTP status of a domain error (declared on its class in :mod:`gis.errors`)."""
    return exc.status


def error_response(status: int, code: str, description: str) -> JSONResponse:
    return JSONResponse({"code": code, "description": description}, status_code=status)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every failure into the one error shape."""

    @app.exception_handler(errors.HueGISError)
    async def _domain(_: Request, exc: errors.HueGISError) -> JSONResponse:
        response = error_response(status_for(exc), exc.code, exc.description)
        if isinstance(exc, errors.Unauthorized):  # RFC 9110: a 401 names its scheme
            response.headers["WWW-Authenticate"] = exc.challenge
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for e in exc.errors():
            where = ".".join(str(x) for x in e.get("loc", ()) if x not in ("query", "path"))
            parts.append(f"{where}: {e.get('msg')}")
        return error_response(400, "InvalidParameterValue", "; ".join(parts))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "NotFound", 405: "MethodNotAllowed"}.get(exc.status_code, "HTTPError")
        return error_response(exc.status_code, code, str(exc.detail))

    @app.exception_handler(asyncpg.QueryCanceledError)
    async def _timeout(_: Request, exc: asyncpg.QueryCanceledError) -> JSONResponse:
        return error_response(503, "QueryTimeout",
                              "the query took too long and was cancelled; narrow it down")

    @app.exception_handler(OSError)
    async def _db_down(_: Request, exc: OSError) -> JSONResponse:
        log.error("database unavailable: %s", exc)
        return error_response(503, "DatabaseUnavailable", "the database is unavailable")

    @app.exception_handler(asyncpg.InterfaceError)
    @app.exception_handler(asyncpg.exceptions.InternalClientError)
    async def _client_state(_: Request, exc: Exception) -> JSONResponse:
        log.error("database connection in a bad state: %s", exc)
        return error_response(503, "DatabaseUnavailable",
                              "the database connection failed; try again")

    @app.exception_handler(asyncpg.UndefinedTableError)
    async def _not_migrated(_: Request, exc: asyncpg.UndefinedTableError) -> JSONResponse:
        log.error("database schema missing: %s", exc)
        return error_response(503, "DatabaseNotMigrated",
                              "the database has no Huế GIS schema yet; run `huegis db migrate`")

    @app.exception_handler(asyncpg.PostgresError)
    async def _pg(_: Request, exc: asyncpg.PostgresError) -> JSONResponse:
        log.exception("database error", exc_info=exc)
        return error_response(500, "InternalError", "a database error occurred")
