"""Drive Debian's QGIS (``python3-qgis`` 3.22) headless, as a desktop user's QGIS would.

QGIS runs in a child process: its Qt, GDAL and PROJ are Debian's and must not meet the wheels
(rasterio, mapnik, pyproj) that the test process has loaded. The child is the project's
Python with Debian's ``dist-packages`` appended to ``sys.path`` (same CPython 3.11 ABI), or
Debian's ``/usr/bin/python3`` when that cannot import ``qgis``.

Parent side::

    results = run_qgis([{"op": "oapif", "base": url, "collection": "parcels"}, ...])

Child side (``python tests/api/qgis_client.py``): reads the list of operations as JSON on
stdin, runs each in one ``QgsApplication`` and prints one JSON result per operation. An
operation that raises reports ``{"error": "..."}`` instead of stopping the others.

Operations
----------
``oapif``        load a collection with the ``OAPIF`` provider; validity, provider count, the
                 features read (optionally through a bbox request), fields, CRS, geometry type
``wms_layers``   the layers the ``wms`` provider reads from GetCapabilities, with their CRSs
``render``       draw layers (``wms``, ``OAPIF``, ``xyzvectortiles`` sources) with
                 ``QgsMapRendererSequentialJob`` into a PNG
``identify``     GetFeatureInfo through the ``wms`` provider's ``identify``
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

DEBIAN_DIST_PACKAGES = "/usr/lib/python3/dist-packages"
HERE = Path(__file__).resolve()


# ------------------------------------------------------------------------------ parent side


@functools.cache
def qgis_python() -> str:
    """The interpreter that imports Debian's ``qgis``: this one if it can, else Debian's."""
    probe = f"import sys; sys.path.append({DEBIAN_DIST_PACKAGES!r}); import qgis.core"
    for exe in (sys.executable, "/usr/bin/python3"):
        if subprocess.run([exe, "-c", probe], capture_output=True, timeout=120,
                          env=_child_env()).returncode == 0:
            return exe
    raise RuntimeError("QGIS's Python bindings are missing: install python3-qgis and "
                       "qgis-providers (scripts/system-deps.sh, run by make test)")


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PROJ_", "GDAL_", "PYTHON"))}
    runtime = Path("/tmp") / f"qgis-runtime-{os.getuid()}"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env.update(QT_QPA_PLATFORM="offscreen", XDG_RUNTIME_DIR=str(runtime),
               QGIS_NO_OVERRIDE_IMPORT="1", CPL_DEBUG="OFF")
    return env


def run_qgis(ops: list[dict[str, Any]], timeout: float = 600) -> list[dict[str, Any]]:
    """Run ``ops`` in one headless QGIS; one result per operation, in order."""
    proc = subprocess.run([qgis_python(), str(HERE)], input=json.dumps(ops),
                          capture_output=True, text=True, timeout=timeout, env=_child_env())
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or len(lines) != len(ops):
        raise RuntimeError(f"QGIS exited with {proc.returncode} after {len(lines)} of "
                           f"{len(ops)} operations:\n{proc.stderr[-4000:]}")
    return [json.loads(ln) for ln in lines]


# ------------------------------------------------------------------------------- child side


def _value(v: Any) -> Any:
    """A QGIS attribute value as JSON (NULL → None, QDate/QDateTime → ISO text)."""
    from qgis.PyQt.QtCore import QDate, QDateTime, QVariant

    if v is None or (isinstance(v, QVariant) and v.isNull()):
        return None
    if isinstance(v, QDateTime):
        return v.toString("yyyy-MM-ddTHH:mm:ss")
    if isinstance(v, QDate):
        return v.toString("yyyy-MM-dd")
    if isinstance(v, (str, int, float, bool)):
        return v
    return str(v)


LOG: list[str] = []


def _why(layer) -> str:
    """Why QGIS refused a layer: its error (``QgsError.summary()`` crashes when empty in 3.22)
    or else the message log of the operation."""
    err = layer.error()
    return (err.message() if not err.isEmpty() else "") or " | ".join(LOG[-5:]) or "invalid"


def oapif_uri(base: str, collection: str) -> str:
    """An ``OAPIF`` provider URI: the landing page and the collection id."""
    return f"url='{base}' typename='{collection}'"


def _layer(spec: dict[str, Any]):
    from qgis.core import QgsRasterLayer, QgsVectorLayer, QgsVectorTileLayer

    provider, uri, name = spec["provider"], spec["uri"], spec.get("name", "layer")
    if provider == "wms":
        layer = QgsRasterLayer(uri, name, "wms")
    elif provider == "xyzvectortiles":
        layer = QgsVectorTileLayer(uri, name)
        if layer.isValid() and "styleUrl=" in uri:
            # The MapLibre style named in the URI, converted by QGIS's style converter.
            error, ok = layer.loadDefaultStyle()
            if not ok:
                raise RuntimeError(f"QGIS could not convert the style of {uri}: {error}")
    else:
        layer = QgsVectorLayer(uri, name, provider)
    if not layer.isValid():
        raise RuntimeError(f"QGIS could not load {provider} layer {uri}: {_why(layer)}")
    if spec.get("style"):
        _style(layer, spec["style"])
    return layer


def _style(layer, style: dict[str, Any]) -> None:
    """A simple QGIS-side style: categorised fill colours, or one marker."""
    from qgis.core import QgsCategorizedSymbolRenderer, QgsRendererCategory, QgsSymbol
    from qgis.PyQt.QtGui import QColor

    if "categories" in style:
        cats = []
        for value, colour in style["categories"].items():
            sym = QgsSymbol.defaultSymbol(layer.geometryType())
            sym.setColor(QColor(colour))
            if style.get("stroke"):
                sym.symbolLayer(0).setStrokeColor(QColor(style["stroke"]))
                sym.symbolLayer(0).setStrokeWidth(style.get("stroke_width", 0.1))
            cats.append(QgsRendererCategory(value, sym, value))
        layer.setRenderer(QgsCategorizedSymbolRenderer(style["field"], cats))
    else:
        sym = QgsSymbol.defaultSymbol(layer.geometryType())
        sym.setColor(QColor(style["colour"]))
        if "size" in style:
            sym.setSize(style["size"])
        layer.renderer().setSymbol(sym)


def op_oapif(base: str, collection: str, bbox: list[float] | None = None,
             exact: bool = False, key: list[str] | None = None) -> dict[str, Any]:
    """Load ``collection`` through the OAPIF provider and read its features."""
    from qgis.core import QgsFeatureRequest, QgsRectangle, QgsVectorLayer, QgsWkbTypes

    uri = oapif_uri(base, collection)
    if bbox:
        # "Only request features overlapping the view extent": QGIS then asks the server with
        # ``bbox=`` instead of downloading the whole collection and filtering it itself.
        uri += " restrictToRequestBBOX='1'"
    layer = QgsVectorLayer(uri, collection, "OAPIF")
    if not layer.isValid():
        return {"valid": False, "error": _why(layer)}
    request = QgsFeatureRequest()
    if bbox:
        request.setFilterRect(QgsRectangle(*bbox))
        if exact:
            request.setFlags(QgsFeatureRequest.ExactIntersect)
    names = [f.name() for f in layer.fields()]
    keys, points = [], []
    n = 0
    for feat in layer.getFeatures(request):
        n += 1
        if key:
            keys.append([_value(feat[k]) for k in key])
            p = feat.geometry().pointOnSurface().asPoint()
            points.append([p.x(), p.y()])
    ext = layer.extent()
    return {"valid": True, "provider_count": layer.featureCount(), "count": n,
            "fields": names, "crs": layer.crs().authid(),
            "geometry": QgsWkbTypes.displayString(layer.wkbType()),
            "extent": [ext.xMinimum(), ext.yMinimum(), ext.xMaximum(), ext.yMaximum()],
            "keys": keys, "points": points}


def wms_uri(base: str, layers: list[str], crs: str, fmt: str = "image/png") -> str:
    """A ``wms`` provider URI, as QGIS's WMS dialog writes it."""
    parts = ["contextualWMSLegend=0", f"crs={crs}", "dpiMode=7", f"format={fmt}"]
    parts += [f"layers={name}" for name in layers] + ["styles=" for _ in layers]
    return "&".join(parts + [f"url={base}/wms"])


def op_wms_layers(base: str) -> dict[str, Any]:
    """The layers of the server's GetCapabilities as QGIS's WMS provider parsed them (its
    metadata page: the same table the layer properties dialog shows)."""
    import html
    import re

    from qgis.core import (
        QgsCoordinateReferenceSystem,
        QgsCoordinateTransform,
        QgsProject,
        QgsRasterLayer,
    )

    layer = QgsRasterLayer(wms_uri(base, ["parcels"], "EPSG:4326"), "caps", "wms")
    if not layer.isValid():
        return {"valid": False, "error": _why(layer)}
    page = layer.dataProvider().htmlMetadata()
    rows = re.findall(r"<tr><td>((?:(?!<t[dr]).)*?)</td><td>((?:(?!<t[dr]).)*?)</td>", page,
                      flags=re.S)
    layers: dict[str, dict[str, Any]] = {}
    current = None
    for prop, value in ((p, html.unescape(re.sub(r"<[^>]+>", "", v)).strip()) for p, v in rows):
        if prop == "Name" and value and value != "default":
            current = layers.setdefault(value, {"crs": []})
        elif current is not None and prop == "Title" and "title" not in current:
            current["title"] = value
        elif current is not None and prop == "Available in CRS":
            current["crs"].append(value)
    count = re.search(r"<td>Layer Count</td><td>(\d+)</td>", page)
    # The layer's extent, from the capabilities' bounding boxes, in WGS 84 lon/lat.
    ext = layer.extent()
    to_wgs84 = QgsCoordinateTransform(layer.crs(), QgsCoordinateReferenceSystem("EPSG:4326"),
                                      QgsProject.instance())
    ext = to_wgs84.transformBoundingBox(ext)
    return {"valid": True, "layers": layers, "layer_count": int(count.group(1)) if count else None,
            "parcels_extent": [ext.xMinimum(), ext.yMinimum(), ext.xMaximum(), ext.yMaximum()],
            "crs": layer.crs().authid()}


def op_render(layers: list[dict[str, Any]], crs: str, extent: list[float], size: list[int],
              out: str, background: str | None = None) -> dict[str, Any]:
    """Draw ``layers`` (first on top) into ``out`` (PNG) as QGIS's map canvas would."""
    from qgis.core import (
        QgsCoordinateReferenceSystem,
        QgsMapRendererSequentialJob,
        QgsMapSettings,
        QgsRectangle,
    )
    from qgis.PyQt.QtCore import QSize, Qt
    from qgis.PyQt.QtGui import QColor

    loaded = [_layer(spec) for spec in layers]
    settings = QgsMapSettings()
    settings.setLayers(loaded)
    settings.setDestinationCrs(QgsCoordinateReferenceSystem(crs))
    settings.setOutputSize(QSize(*size))
    settings.setOutputDpi(96)
    settings.setExtent(QgsRectangle(*extent))
    settings.setBackgroundColor(QColor(background) if background else QColor(Qt.transparent))
    job = QgsMapRendererSequentialJob(settings)
    job.start()
    job.waitForFinished()
    image = job.renderedImage()
    image.save(out, "PNG")
    errors = [f"{e.layerID}: {e.message}" for e in job.errors()]
    styles = {lyr.name(): [(s.styleName(), s.layerName()) for s in lyr.renderer().styles()]
              for lyr in loaded if hasattr(lyr.renderer(), "styles")}
    visible = settings.visibleExtent()
    return {"errors": errors, "styles": styles, "width": image.width(), "height": image.height(),
            "visible_extent": [visible.xMinimum(), visible.yMinimum(), visible.xMaximum(),
                               visible.yMaximum()],
            "crs_valid": settings.destinationCrs().isValid()}


def op_identify(base: str, layer: str, crs: str, extent: list[float], size: list[int],
                point: list[float], fmt: str = "feature") -> dict[str, Any]:
    """GetFeatureInfo at ``point`` (map coordinates of ``crs``) through the WMS provider."""
    from qgis.core import QgsPointXY, QgsRaster, QgsRasterLayer, QgsRectangle

    rl = QgsRasterLayer(wms_uri(base, [layer], crs), layer, "wms")
    if not rl.isValid():
        return {"valid": False, "error": _why(rl)}
    formats = {"feature": QgsRaster.IdentifyFormatFeature, "text": QgsRaster.IdentifyFormatText,
               "html": QgsRaster.IdentifyFormatHtml}
    provider = rl.dataProvider()
    result = provider.identify(QgsPointXY(*point), formats[fmt], QgsRectangle(*extent),
                               size[0], size[1])
    if not result.isValid():
        return {"valid": False, "error": result.error().message() or "identify failed"}
    out: list[Any] = []
    for value in result.results().values():
        if fmt != "feature":
            out.append(str(value))
            continue
        for store in value or []:
            for feat in store.features():
                out.append({name: _value(feat[name]) for name in feat.fields().names()})
    return {"valid": True, "results": out}


OPS = {"oapif": op_oapif, "wms_layers": op_wms_layers, "render": op_render,
       "identify": op_identify}


def main() -> None:
    sys.path.append(DEBIAN_DIST_PACKAGES)
    from qgis.core import QgsApplication

    ops = json.load(sys.stdin)
    QgsApplication.setPrefixPath("/usr", True)
    app = QgsApplication([], False)
    app.initQgis()
    app.messageLog().messageReceived.connect(
        lambda message, tag, level: LOG.append(f"{tag}: {message}"))
    try:
        for spec in ops:
            LOG.clear()
            args = {k: v for k, v in spec.items() if k != "op"}
            try:
                result = OPS[spec["op"]](**args)
            except Exception as exc:  # reported to the parent, which decides
                result = {"error": f"{type(exc).__name__}: {exc}"}
            print(json.dumps(result), flush=True)
    finally:
        app.exitQgis()


if __name__ == "__main__":
    main()
