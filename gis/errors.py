"""Domain errors. Each carries a stable machine-readable ``code``; the API maps them to HTTP."""

from __future__ import annotations


class HueGISError(Exception):
    """Base class: ``code`` is machine-readable, ``str(err)`` is for people."""

    code = "HueGISError"

    def __init__(self, description: str, **details: object) -> None:
        super().__init__(description)
        self.description = description
        self.details = details


class LayerNotFound(HueGISError):
    code = "LayerNotFound"


class FeatureNotFound(HueGISError):
    code = "FeatureNotFound"


class InvalidParameter(HueGISError):
    code = "InvalidParameterValue"


class InvalidBBox(InvalidParameter):
    code = "InvalidBBox"


class InvalidTile(InvalidParameter):
    code = "InvalidTile"


class TileMatrixSetNotFound(HueGISError):
    code = "TileMatrixSetNotFound"


class UnknownCRS(InvalidParameter):
    code = "UnknownCRS"


class ImportRejected(HueGISError):
    """An import was refused; nothing was written."""

    code = "ImportRejected"


class DataMissing(HueGISError):
    """Something the operation builds on is not loaded yet."""

    code = "DataMissing"


class DatabaseUnavailable(HueGISError):
    code = "DatabaseUnavailable"


class QueryTimeout(HueGISError):
    code = "QueryTimeout"


class ClusterError(HueGISError):
    code = "ClusterError"
