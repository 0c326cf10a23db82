"""Domain errors. Each carries a stable machine-readable ``code`` and the HTTP ``status`` the
API answers with; a new error is one class here (the API needs no change)."""

from __future__ import annotations


class HueGISError(Exception):
    """Base class: ``code`` is machine-readable, ``str(err)`` is for people."""

    code = "HueGISError"
    status = 500

    def __init__(self, description: str, **details: object) -> None:
        super().__init__(description)
        self.description = description
        self.details = details


class LayerNotFound(HueGISError):
    code = "LayerNotFound"
    status = 404


class FeatureNotFound(HueGISError):
    code = "FeatureNotFound"
    status = 404


class NotFound(HueGISError):
    """Any other resource that does not exist (a style, a raster, an incident, a token…)."""

    code = "NotFound"
    status = 404


class InvalidParameter(HueGISError):
    code = "InvalidParameterValue"
    status = 400


class InvalidBBox(InvalidParameter):
    code = "InvalidBBox"


class InvalidTile(InvalidParameter):
    code = "InvalidTile"
    status = 404


class ImageTooLarge(InvalidParameter):
    """A map image whose width × height is over the renderer's limit (400)."""

    code = "ImageTooLarge"


class TileMatrixSetNotFound(HueGISError):
    code = "TileMatrixSetNotFound"
    status = 404


class UnknownCRS(InvalidParameter):
    code = "UnknownCRS"


class InvalidGeometry(InvalidParameter):
    code = "InvalidGeometry"


class OutsideHue(InvalidParameter):
    """A location outside Huế City (and farther than the tolerance from every ward)."""

    code = "OutsideHue"


class Unauthorized(HueGISError):
    """No credentials, or credentials that are not valid (401). ``challenge`` is the
    ``WWW-Authenticate`` value the API sends with it."""

    code = "Unauthorized"
    status = 401
    challenge = 'Bearer realm="huegis"'


class Forbidden(HueGISError):
    """Valid credentials without the role or ward the operation needs (403)."""

    code = "Forbidden"
    status = 403


class Conflict(HueGISError):
    code = "Conflict"
    status = 409


class PreconditionFailed(HueGISError):
    """``If-Match`` does not match the current ETag (412)."""

    code = "PreconditionFailed"
    status = 412


class PreconditionRequired(HueGISError):
    """A write that must carry ``If-Match`` does not (428)."""

    code = "PreconditionRequired"
    status = 428


class PayloadTooLarge(HueGISError):
    code = "PayloadTooLarge"
    status = 413


class UnsupportedMediaType(HueGISError):
    code = "UnsupportedMediaType"
    status = 415


class ImportRejected(HueGISError):
    """An import was refused; nothing was written."""

    code = "ImportRejected"
    status = 400


class DataMissing(HueGISError):
    """Something the operation builds on is not loaded yet."""

    code = "DataMissing"
    status = 503


class DatabaseUnavailable(HueGISError):
    code = "DatabaseUnavailable"
    status = 503


class QueryTimeout(HueGISError):
    code = "QueryTimeout"
    status = 503


class ClusterError(HueGISError):
    code = "ClusterError"


class PortInUse(HueGISError):
    """A server cannot listen on its TCP port: it is taken (the message names the holder)."""

    code = "PortInUse"
